//! The smallest batch that turns one compiled table into another when only
//! chains' rules differ: what a change of a Service's backends or a
//! rollout's weights is. Re-creating the whole table costs `nft` tens of
//! milliseconds of parsing for a table of many Services; this sends the
//! changed chains only, still in one transaction.

use std::collections::BTreeMap;

use super::{Chain, Command, Object, Rule, Ruleset, Table};

/// The batch that turns the table `old` builds into the one `new` builds,
/// flushing and refilling only the chains whose rules differ, adding new
/// chains and deleting gone ones. `None` when anything else differs (the
/// table, a set, a map, a base chain): that needs the whole table rebuilt.
///
/// Order within the batch: new chains first (rules may jump to them), then
/// changed and gone chains flushed, the new rules added, and gone chains
/// deleted last, when no rule refers to them any more.
pub fn changes(old: &Ruleset, new: &Ruleset) -> Option<Ruleset> {
    let (a, b) = (Parts::of(old)?, Parts::of(new)?);
    if a.table != b.table || a.others != b.others || a.base != b.base {
        return None;
    }
    let table = b.table.clone();
    let mut out = vec![Command::Add(Object::Table(table))];
    let plain = |c: &Chain| Chain { base: None, ..c.clone() };
    for (name, chain) in &b.chains {
        if !a.chains.contains_key(name) {
            out.push(Command::Add(Object::Chain(plain(chain))));
        }
    }
    let changed: Vec<&String> = b
        .chains
        .keys()
        .filter(|name| a.chains.contains_key(*name) && a.rules.get(*name) != b.rules.get(*name))
        .collect();
    let gone: Vec<(&String, &Chain)> = a.chains.iter().filter(|(name, _)| !b.chains.contains_key(*name)).collect();
    for name in &changed {
        out.push(Command::Flush(Object::Chain(plain(&b.chains[*name]))));
    }
    for (_, chain) in &gone {
        out.push(Command::Flush(Object::Chain(plain(chain))));
    }
    for rule in &b.order {
        if changed.contains(&&rule.chain) || !a.chains.contains_key(&rule.chain) {
            out.push(Command::Add(Object::Rule(rule.clone())));
        }
    }
    for (_, chain) in &gone {
        out.push(Command::Delete(Object::Chain(plain(chain))));
    }
    Some(Ruleset::new(out))
}

/// A compiled table taken apart.
struct Parts {
    table: Table,
    /// Base chains (attached to hooks), in order.
    base: Vec<Chain>,
    /// Chains by name (base chains too, for their rules).
    chains: BTreeMap<String, Chain>,
    rules: BTreeMap<String, Vec<Rule>>,
    /// Every rule in batch order.
    order: Vec<Rule>,
    /// Sets and maps.
    others: Vec<Object>,
}

impl Parts {
    /// `None` for a batch that is not one whole compiled table.
    fn of(rs: &Ruleset) -> Option<Parts> {
        let mut table = None;
        let mut p = Parts {
            table: Table { family: super::Family::Ip, name: String::new() },
            base: Vec::new(),
            chains: BTreeMap::new(),
            rules: BTreeMap::new(),
            order: Vec::new(),
            others: Vec::new(),
        };
        let mut deleted_table = false;
        for c in rs.commands() {
            match c {
                Command::Add(Object::Table(t)) => {
                    table.get_or_insert_with(|| t.clone());
                }
                Command::Delete(Object::Table(_)) => deleted_table = true,
                Command::Add(Object::Chain(ch)) => {
                    if ch.base.is_some() {
                        p.base.push(ch.clone());
                    }
                    p.chains.insert(ch.name.clone(), ch.clone());
                }
                Command::Add(Object::Rule(r)) => {
                    p.rules.entry(r.chain.clone()).or_default().push(r.clone());
                    p.order.push(r.clone());
                }
                Command::Add(o @ (Object::Set(_) | Object::Map(_))) => p.others.push(o.clone()),
                Command::Delete(_) | Command::Flush(_) => return None,
            }
        }
        // Only a batch that re-creates its table describes all of it.
        if !deleted_table {
            return None;
        }
        p.table = table?;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use berth_core::net::{Protocol, Weights};

    use super::*;
    use crate::desired::{Desired, Vip};
    use crate::ruleset::{compile, Shape};

    fn desired(backends: &[&str]) -> Desired {
        let vip = Vip {
            name: "web".into(),
            ip: Ipv4Addr::new(10, 96, 0, 1),
            port: 80,
            protocol: Protocol::Tcp,
            backends: Weights::parse(backends.iter().copied()).unwrap(),
            node_port: None,
        };
        Desired::try_new("bt", vec![], vec![], vec![vip]).unwrap()
    }

    /// Applies a batch to a shape as the kernel would.
    fn apply(shape: &mut Shape, batch: &Ruleset) {
        for c in batch.commands() {
            match c {
                Command::Flush(Object::Chain(ch)) => {
                    shape.chains.insert(ch.name.clone(), 0);
                }
                Command::Delete(Object::Chain(ch)) => {
                    assert_eq!(shape.chains.remove(&ch.name), Some(0), "a chain is flushed before it goes");
                }
                Command::Add(Object::Chain(ch)) => {
                    shape.chains.entry(ch.name.clone()).or_insert(0);
                }
                Command::Add(Object::Rule(r)) => {
                    *shape.chains.get_mut(&r.chain).expect("rules go into chains that exist") += 1;
                }
                Command::Add(Object::Table(_)) => {}
                other => panic!("unexpected in a change batch: {other:?}"),
            }
        }
    }

    #[test]
    fn changed_backends_touch_only_their_chains_and_end_where_a_rebuild_would() {
        let cases: [&[&str]; 5] = [
            &["10.88.0.2:80=50", "10.88.0.3:80=50"],
            &["10.88.0.2:80=50", "10.88.0.4:80=50"],
            &["10.88.0.2:80=100"],
            &["10.88.0.5:80=33", "10.88.0.6:80=33", "10.88.0.7:80=34"],
            &["10.88.0.2:80=1", "10.88.0.3:80=99"],
        ];
        for from in cases {
            for to in cases {
                let (old, new) = (compile(&desired(from)), compile(&desired(to)));
                let batch = changes(&old, &new).expect("only chains differ");
                let mut shape = old.shape();
                apply(&mut shape, &batch);
                assert_eq!(shape, new.shape(), "{from:?} -> {to:?}");
                if from == to {
                    assert_eq!(batch.commands().len(), 1, "nothing to change but the table's no-op add");
                }
                assert!(batch.to_json().len() < new.to_json().len(), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn anything_but_chains_needs_a_rebuild() {
        let old = compile(&desired(&["10.88.0.2:80=100"]));
        let no_vip = Desired::try_new("bt", vec![], vec![], vec![]).unwrap();
        assert!(changes(&old, &compile(&no_vip)).is_none(), "the VIP address set changed");
        let other_table = Desired::try_new("bu", vec![], vec![], vec![]).unwrap();
        assert!(changes(&old, &compile(&other_table)).is_none());
        // A change batch is not a whole table and cannot be diffed again.
        let batch = changes(&old, &compile(&desired(&["10.88.0.3:80=100"]))).unwrap();
        assert!(changes(&batch, &old).is_none());
    }
}
