//! A coarse summary of a table: its chains with their rule counts and its
//! sets and maps with their element counts.
//!
//! Comparing the shape of what Berth applied with the shape of what
//! `nft -j list table` shows catches the ways a table gets lost in practice
//! (`nft flush ruleset`, a deleted table or chain, a flushed chain, removed
//! set elements) without comparing expressions, which nft normalises on
//! output (it drops implied protocol matches, for one). It does not catch a
//! rule edited in place into another rule; nothing short of owning the
//! netlink socket would.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Command, Object, Ruleset};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Chain name → number of rules.
    pub chains: BTreeMap<String, usize>,
    /// Set or map name → number of elements.
    pub collections: BTreeMap<String, usize>,
}

impl Shape {
    pub fn of_ruleset(ruleset: &Ruleset) -> Self {
        let mut shape = Shape::default();
        for command in ruleset.commands() {
            match command {
                Command::Add(Object::Chain(c)) => {
                    shape.chains.entry(c.name.clone()).or_insert(0);
                }
                Command::Add(Object::Rule(r)) => *shape.chains.entry(r.chain.clone()).or_insert(0) += 1,
                Command::Add(Object::Set(s)) => {
                    *shape.collections.entry(s.name.clone()).or_insert(0) += s.elem.len();
                }
                Command::Add(Object::Map(m)) => {
                    *shape.collections.entry(m.name.clone()).or_insert(0) += m.elem.len();
                }
                Command::Add(Object::Table(_)) => {}
                Command::Delete(Object::Table(_)) => shape = Shape::default(),
                Command::Delete(Object::Chain(c)) => {
                    shape.chains.remove(&c.name);
                }
                Command::Flush(Object::Chain(c)) => {
                    shape.chains.insert(c.name.clone(), 0);
                }
                Command::Delete(_) | Command::Flush(_) => {}
            }
        }
        shape
    }

    /// The shape of an `nft -j list table FAMILY NAME` answer.
    pub fn of_listing(listing: &Value) -> Self {
        let mut shape = Shape::default();
        let items = listing.get("nftables").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let name = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        for item in items {
            if let Some(chain) = item.get("chain").and_then(|c| name(c, "name")) {
                shape.chains.entry(chain).or_insert(0);
            } else if let Some(chain) = item.get("rule").and_then(|r| name(r, "chain")) {
                *shape.chains.entry(chain).or_insert(0) += 1;
            } else if let Some(c) = item.get("set").or_else(|| item.get("map")) {
                if let Some(n) = name(c, "name") {
                    let count = c.get("elem").and_then(Value::as_array).map_or(0, Vec::len);
                    *shape.collections.entry(n).or_insert(0) += count;
                }
            }
        }
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listing_shape_counts_rules_and_elements() {
        let listing = json!({ "nftables": [
            { "metainfo": { "version": "1.0.6" } },
            { "table": { "family": "ip", "name": "t" } },
            { "chain": { "family": "ip", "table": "t", "name": "a" } },
            { "chain": { "family": "ip", "table": "t", "name": "empty" } },
            { "map": { "name": "m", "elem": [[1, 2], [3, 4]] } },
            { "set": { "name": "s" } },
            { "rule": { "chain": "a", "expr": [] } },
            { "rule": { "chain": "a", "expr": [] } },
        ]});
        let shape = Shape::of_listing(&listing);
        assert_eq!(shape.chains, [("a".to_string(), 2), ("empty".to_string(), 0)].into());
        assert_eq!(shape.collections, [("m".to_string(), 2), ("s".to_string(), 0)].into());
        assert_eq!(Shape::of_listing(&json!({})), Shape::default());
    }
}
