//! `Desired` → `Ruleset`, pure; the layout is described in the parent
//! module's docs.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use berth_core::net::Protocol;
use serde_json::{json, Value};

use super::expr::{self, eq, ne};
use super::names::{endpoint_chain, vip_chain};
use super::{BaseChain, Chain, Command, Family, Map, Object, Rule, Ruleset, Set, Table};
use crate::desired::{Desired, Network, PublishedPort, Vip};

/// The packet-mark bit that asks `nat-postrouting` to masquerade (set for
/// hairpin connections, cleared again before masquerading). Other bits of
/// the mark are left alone. The same bit kube-proxy uses; a host running
/// both only masquerades what either asked for.
pub const MASQUERADE_MARK: u32 = 0x4000;

const PRIO_DSTNAT: i32 = -100;
const PRIO_FILTER: i32 = 0;
const PRIO_SRCNAT: i32 = 100;
const COMMENT_MAX: usize = 128;

const SERVICES: &str = "services";
const PUBLISHED: &str = "published";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
const REJECT_VIP: &str = "reject-vip";
const SERVICE_IPS: &str = "service-ips";
const VIP_ADDRESSES: &str = "vip-addresses";

struct Builder<'a> {
    table: &'a str,
    commands: Vec<Command>,
}

fn comment(text: &str) -> String {
    let mut s: String = text.chars().map(|c| if c.is_control() || c == '"' { '\'' } else { c }).collect();
    if s.len() > COMMENT_MAX {
        let mut end = COMMENT_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl<'a> Builder<'a> {
    fn table(&self) -> Table {
        Table { family: Family::Ip, name: self.table.to_string() }
    }

    fn chain(&mut self, name: &str, hook: Option<(&str, &str, i32)>) {
        let base = hook.map(|(kind, hook, prio)| BaseChain {
            kind: kind.into(),
            hook: hook.into(),
            prio,
            policy: "accept".into(),
        });
        let chain = Chain { family: Family::Ip, table: self.table.into(), name: name.into(), base };
        self.commands.push(Command::Add(Object::Chain(chain)));
    }

    fn rule(&mut self, chain: &str, expr: Vec<Value>, note: Option<&str>) {
        let rule = Rule {
            family: Family::Ip,
            table: self.table.into(),
            chain: chain.into(),
            expr,
            comment: note.map(comment),
        };
        self.commands.push(Command::Add(Object::Rule(rule)));
    }
}

/// Compiles a desired state into one self-contained batch: it creates the
/// table if missing, deletes it (with everything in it), and builds it anew,
/// so applying it is idempotent and touches nothing outside the table.
pub fn compile(desired: &Desired) -> Ruleset {
    let mut b = Builder { table: desired.table(), commands: Vec::new() };
    for cmd in [Command::Add, Command::Delete, Command::Add] {
        b.commands.push(cmd(Object::Table(b.table())));
    }

    b.chain("nat-prerouting", Some(("nat", "prerouting", PRIO_DSTNAT)));
    b.chain("nat-output", Some(("nat", "output", PRIO_DSTNAT)));
    b.chain("nat-postrouting", Some(("nat", "postrouting", PRIO_SRCNAT)));
    b.chain("filter-forward", Some(("filter", "forward", PRIO_FILTER)));
    b.chain("filter-output", Some(("filter", "output", PRIO_FILTER)));
    for name in [SERVICES, PUBLISHED, MARK_FOR_MASQUERADE, REJECT_VIP] {
        b.chain(name, None);
    }
    let ready: Vec<&Vip> = desired.vips().iter().filter(|v| v.backends.has_ready_backend()).collect();
    for vip in &ready {
        b.chain(&vip_chain(&vip.name), None);
        for r in vip.backends.ranges() {
            let be = vip.backends.backends()[r.backend];
            b.chain(&endpoint_chain(&vip.name, be.addr, be.port), None);
        }
    }

    let vip_addresses: BTreeSet<Ipv4Addr> = desired.vips().iter().map(|v| v.ip).collect();
    let set = Set {
        family: Family::Ip,
        table: b.table.into(),
        name: VIP_ADDRESSES.into(),
        kind: json!("ipv4_addr"),
        elem: vip_addresses.iter().map(|ip| json!(ip.to_string())).collect(),
    };
    b.commands.push(Command::Add(Object::Set(set)));
    let map = Map {
        family: Family::Ip,
        table: b.table.into(),
        name: SERVICE_IPS.into(),
        kind: json!(["ipv4_addr", "inet_proto", "inet_service"]),
        map: "verdict".into(),
        elem: ready
            .iter()
            .map(|v| {
                let key = expr::concat(vec![json!(v.ip.to_string()), json!(v.protocol.as_str()), json!(v.port)]);
                json!([key, expr::goto(&vip_chain(&v.name))])
            })
            .collect(),
    };
    b.commands.push(Command::Add(Object::Map(map)));

    for hook_chain in ["nat-prerouting", "nat-output"] {
        b.rule(hook_chain, vec![expr::jump(SERVICES)], None);
        b.rule(hook_chain, vec![expr::jump(PUBLISHED)], None);
    }
    let key = expr::concat(vec![expr::payload("ip", "daddr"), expr::meta("l4proto"), expr::payload("th", "dport")]);
    b.rule(SERVICES, vec![expr::vmap(key, json!(expr::set_ref(SERVICE_IPS)))], None);
    for vip in &ready {
        vip_rules(&mut b, vip);
    }
    for port in desired.ports() {
        published_rule(&mut b, port);
    }
    for vip in &ready {
        if let Some(np) = vip.node_port {
            let rule = vec![
                eq(expr::fib_daddr_type(), "local"),
                expr::dport(vip.protocol, np),
                expr::goto(&vip_chain(&vip.name)),
            ];
            let note = format!("VIP {} node port {np}/{}", vip.name, vip.protocol);
            b.rule(PUBLISHED, rule, Some(&note));
        }
    }
    b.rule(MARK_FOR_MASQUERADE, vec![expr::mark_set_bits(MASQUERADE_MARK)], None);
    postrouting_rules(&mut b, desired.networks());
    filter_rules(&mut b, desired.networks());
    Ruleset::new(b.commands)
}

fn vip_rules(b: &mut Builder<'_>, vip: &Vip) {
    let label = format!("VIP {} {}:{}/{}", vip.name, vip.ip, vip.port, vip.protocol);
    let backends = vip.backends.backends();
    let slices = vip
        .backends
        .ranges()
        .iter()
        .map(|r| {
            let be = backends[r.backend];
            json!([expr::range_elem(r.first, r.last), expr::goto(&endpoint_chain(&vip.name, be.addr, be.port))])
        })
        .collect();
    let pick = expr::vmap(expr::numgen_random(100), expr::anon_set(slices));
    b.rule(&vip_chain(&vip.name), vec![pick], Some(&label));
    for r in vip.backends.ranges() {
        let be = backends[r.backend];
        let chain = endpoint_chain(&vip.name, be.addr, be.port);
        let hairpin = vec![eq(expr::payload("ip", "saddr"), be.addr.to_string()), expr::jump(MARK_FOR_MASQUERADE)];
        b.rule(&chain, hairpin, Some(&format!("{label}: backend {} reaching itself", be.socket())));
        let dnat = vec![expr::l4proto(vip.protocol), expr::dnat(be.addr, be.port)];
        b.rule(&chain, dnat, Some(&format!("{label}: backend {} weight {}", be.socket(), be.weight)));
    }
}

fn published_rule(b: &mut Builder<'_>, p: &PublishedPort) {
    let destination = match p.host_ip.filter(|ip| !ip.is_unspecified()) {
        Some(ip) => eq(expr::payload("ip", "daddr"), ip.to_string()),
        None => eq(expr::fib_daddr_type(), "local"),
    };
    let host = p.host_ip.map_or_else(|| "*".to_string(), |ip| ip.to_string());
    let note = format!("{}: {host}:{}/{} -> {}:{}", p.owner, p.host_port, p.protocol, p.container_ip, p.container_port);
    let hairpin = vec![
        destination.clone(),
        expr::dport(p.protocol, p.host_port),
        eq(expr::payload("ip", "saddr"), p.container_ip.to_string()),
        expr::jump(MARK_FOR_MASQUERADE),
    ];
    b.rule(PUBLISHED, hairpin, Some(&format!("{note} (container reaching itself)")));
    let dnat = vec![destination, expr::dport(p.protocol, p.host_port), expr::dnat(p.container_ip, p.container_port)];
    b.rule(PUBLISHED, dnat, Some(&note));
}

fn postrouting_rules(b: &mut Builder<'_>, networks: &[Network]) {
    let chain = "nat-postrouting";
    let hairpin = vec![expr::mark_has_bits(MASQUERADE_MARK), expr::mark_flip_bits(MASQUERADE_MARK), expr::masquerade()];
    b.rule(chain, hairpin, Some("hairpin: a VIP backend connected to itself"));
    for n in networks {
        let br = n.bridge.as_str();
        let same_bridge = vec![
            eq(expr::meta("iifname"), br),
            eq(expr::meta("oifname"), br),
            expr::has_flag(expr::ct("status"), "dnat"),
            expr::masquerade(),
        ];
        let note = format!("network {}: DNAT back into its own bridge (hairpin)", n.name);
        b.rule(chain, same_bridge, Some(&note));
        if n.internal {
            continue;
        }
        let loopback = vec![
            eq(expr::meta("oifname"), br),
            eq(expr::payload("ip", "saddr"), expr::prefix("127.0.0.0/8".parse().expect("valid"))),
            expr::masquerade(),
        ];
        let note = format!("network {}: published port reached on 127.0.0.1 (route_localnet=1 on {br})", n.name);
        b.rule(chain, loopback, Some(&note));
        let egress = vec![
            eq(expr::payload("ip", "saddr"), expr::prefix(n.subnet)),
            ne(expr::meta("oifname"), br),
            expr::masquerade(),
        ];
        b.rule(chain, egress, Some(&format!("network {}: egress", n.name)));
    }
}

fn filter_rules(b: &mut Builder<'_>, networks: &[Network]) {
    let to_vip = || vec![eq(expr::payload("ip", "daddr"), expr::set_ref(VIP_ADDRESSES)), expr::jump(REJECT_VIP)];
    let note = Some("VIP without a ready backend, or a port it does not serve");
    b.rule("filter-forward", to_vip(), note);
    for n in networks.iter().filter(|n| n.internal) {
        let br = n.bridge.as_str();
        let out = vec![eq(expr::meta("iifname"), br), ne(expr::meta("oifname"), br), expr::drop()];
        b.rule("filter-forward", out, Some(&format!("network {} is internal: nothing leaves it", n.name)));
        let inbound = vec![eq(expr::meta("oifname"), br), ne(expr::meta("iifname"), br), expr::drop()];
        b.rule("filter-forward", inbound, Some(&format!("network {} is internal: nothing enters it", n.name)));
    }
    b.rule("filter-output", to_vip(), note);
    b.rule(REJECT_VIP, vec![expr::l4proto(Protocol::Tcp), expr::reject_tcp_reset()], None);
    b.rule(REJECT_VIP, vec![expr::reject_port_unreachable()], None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Vip;
    use crate::ruleset::Shape;
    use berth_core::net::{Ipv4Cidr, Weights};

    fn vip(name: &str, ip: &str, port: u16, backends: &[&str]) -> Vip {
        Vip {
            name: name.into(),
            ip: ip.parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
            backends: Weights::parse(backends.iter().copied()).unwrap(),
            node_port: None,
        }
    }

    fn sample() -> Desired {
        let subnet: Ipv4Cidr = "10.88.0.0/24".parse().unwrap();
        let n1 = Network {
            name: "n1".into(),
            bridge: "br-n1".into(),
            subnet,
            gateway: subnet.first_host(),
            internal: false,
        };
        Desired::try_new(
            "berth",
            vec![n1],
            vec![],
            vec![
                vip("web", "10.96.0.10", 80, &["10.88.0.2:80=0", "10.88.0.3:80=100"]),
                vip("idle", "10.96.0.11", 80, &[]),
            ],
        )
        .unwrap()
    }

    fn chains(rs: &Ruleset) -> Vec<String> {
        rs.commands()
            .iter()
            .filter_map(|c| match c {
                Command::Add(Object::Chain(ch)) => Some(ch.name.clone()),
                _ => None,
            })
            .collect()
    }

    fn targets(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, inner) in m {
                    if k == "jump" || k == "goto" {
                        out.push(inner["target"].as_str().unwrap().to_string());
                    } else {
                        targets(inner, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| targets(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_batch_recreates_only_its_own_table_first() {
        let rs = compile(&sample());
        let head: Vec<String> = rs.commands()[..3].iter().map(|c| serde_json::to_string(c).unwrap()).collect();
        let t = r#"{"table":{"family":"ip","name":"berth"}}"#;
        assert_eq!(head, [format!(r#"{{"add":{t}}}"#), format!(r#"{{"delete":{t}}}"#), format!(r#"{{"add":{t}}}"#)]);
        for c in &rs.commands()[3..] {
            let json = serde_json::to_value(c).unwrap();
            let obj = json["add"].as_object().expect("only adds after the reset");
            let inner = obj.values().next().unwrap();
            assert_eq!(inner["table"], "berth", "{json}");
        }
        assert_eq!(rs.table(), Some("berth"));
    }

    #[test]
    fn every_jump_and_goto_target_is_a_chain_of_the_table() {
        let rs = compile(&sample());
        let defined = chains(&rs);
        let mut used = Vec::new();
        targets(&serde_json::to_value(&rs).unwrap(), &mut used);
        assert!(!used.is_empty());
        for t in used {
            assert!(defined.contains(&t), "{t} is used but not defined");
        }
    }

    #[test]
    fn only_ready_vips_are_in_the_service_map_and_weight_zero_gets_no_chain() {
        let rs = compile(&sample());
        let json = serde_json::to_value(&rs).unwrap();
        let find = |kind: &str, name: &str| {
            json["nftables"].as_array().unwrap().iter().find(|c| c["add"][kind]["name"] == name).unwrap()["add"][kind]
                .clone()
        };
        let map = find("map", SERVICE_IPS);
        assert_eq!(map["elem"].as_array().unwrap().len(), 1, "{map}");
        assert_eq!(map["elem"][0][0]["concat"], json!(["10.96.0.10", "tcp", 80]));
        let set = find("set", VIP_ADDRESSES);
        assert_eq!(set["elem"], json!(["10.96.0.10", "10.96.0.11"]), "every VIP is rejected when not DNATed");
        let names = chains(&rs);
        assert!(names.contains(&endpoint_chain("web", "10.88.0.3".parse().unwrap(), 80)));
        assert!(!names.contains(&endpoint_chain("web", "10.88.0.2".parse().unwrap(), 80)));
        assert!(!names.contains(&vip_chain("idle")));
    }

    #[test]
    fn compiling_is_deterministic() {
        assert_eq!(compile(&sample()).to_json(), compile(&sample()).to_json());
        assert_eq!(compile(&sample()).shape(), Shape::of_ruleset(&compile(&sample())));
    }

    #[test]
    fn internal_networks_get_no_masquerade_but_isolation() {
        let subnet: Ipv4Cidr = "10.88.1.0/24".parse().unwrap();
        let db =
            Network { name: "db".into(), bridge: "br-db".into(), subnet, gateway: subnet.first_host(), internal: true };
        let rs = compile(&Desired::try_new("berth", vec![db], vec![], vec![]).unwrap());
        let shape = rs.shape();
        assert_eq!(shape.chains["nat-postrouting"], 2, "mark hairpin + bridge hairpin, no egress or loopback");
        assert_eq!(shape.chains["filter-forward"], 3, "VIP reject + two isolation drops");
    }

    #[test]
    fn comments_are_bounded_and_quote_free() {
        assert_eq!(comment("a \"b\"\n"), "a 'b''");
        let long = "é".repeat(100);
        let c = comment(&long);
        assert!(c.len() <= COMMENT_MAX && c.chars().all(|ch| ch == 'é'));
    }
}
