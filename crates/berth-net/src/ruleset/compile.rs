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

const PRIO_RAW: i32 = -300;
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
const INTO_NETWORKS: &str = "into-networks";
const OUT_OF_NETWORKS: &str = "out-of-networks";
const BRIDGES: &str = "bridges";
const INTERNAL_BRIDGES: &str = "internal-bridges";
const SAME_BRIDGE: &str = "same-bridge";
const LOOPBACK_NET: &str = "127.0.0.0/8";

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

    b.chain("filter-prerouting", Some(("filter", "prerouting", PRIO_RAW)));
    b.chain("nat-prerouting", Some(("nat", "prerouting", PRIO_DSTNAT)));
    b.chain("nat-output", Some(("nat", "output", PRIO_DSTNAT)));
    b.chain("nat-postrouting", Some(("nat", "postrouting", PRIO_SRCNAT)));
    b.chain("filter-forward", Some(("filter", "forward", PRIO_FILTER)));
    b.chain("filter-output", Some(("filter", "output", PRIO_FILTER)));
    for name in [SERVICES, PUBLISHED, MARK_FOR_MASQUERADE, REJECT_VIP, INTO_NETWORKS, OUT_OF_NETWORKS] {
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
    bridge_sets(&mut b, desired.networks());
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
    loopback_rules(&mut b);
    filter_rules(&mut b);
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

/// The named sets the filter rules look interfaces up in: every network's
/// bridge, the internal ones, and `bridge . bridge` pairs (nft cannot
/// compare `iifname` with `oifname` directly).
fn bridge_sets(b: &mut Builder<'_>, networks: &[Network]) {
    let set = |name: &str, kind: Value, elem: Vec<Value>| Set {
        family: Family::Ip,
        table: b.table.into(),
        name: name.into(),
        kind,
        elem,
    };
    let all = networks.iter().map(|n| json!(n.bridge)).collect();
    let internal = networks.iter().filter(|n| n.internal).map(|n| json!(n.bridge)).collect();
    let pairs = networks.iter().map(|n| expr::concat(vec![json!(n.bridge), json!(n.bridge)])).collect();
    let sets = [
        set(BRIDGES, json!("ifname"), all),
        set(INTERNAL_BRIDGES, json!("ifname"), internal),
        set(SAME_BRIDGE, json!(["ifname", "ifname"]), pairs),
    ];
    for s in sets {
        b.commands.push(Command::Add(Object::Set(s)));
    }
}

/// 127.0.0.0/8 exists only on the loopback interface. Berth sets
/// `route_localnet=1` on its bridges (published ports on 127.0.0.1), which
/// stops the kernel from dropping such packets there as martians, and its
/// own DNAT rules run before the routing decision on every interface. So a
/// container (or a LAN neighbour) could otherwise reach the host's
/// loopback-only services and 127.0.0.1-only published ports by sending to
/// 127.0.0.1 through its gateway (kube-proxy's CVE-2020-8558).
///
/// The rules run at raw priority, before conntrack and before any DNAT,
/// where no legitimate packet has a loopback destination on another
/// interface: the replies of the host's own connections to a published
/// port on 127.0.0.1 arrive addressed to the bridge address they were
/// masqueraded to, and only nat-prerouting turns that back into 127.0.0.1.
/// So the drop needs no conntrack exception (kube-proxy's rule sits after
/// NAT in the input hook and must exempt DNATed replies instead).
fn loopback_rules(b: &mut Builder<'_>) {
    let loopback = || expr::prefix(LOOPBACK_NET.parse().expect("valid"));
    let to_loopback = vec![ne(expr::meta("iifname"), "lo"), eq(expr::payload("ip", "daddr"), loopback()), expr::drop()];
    b.rule("filter-prerouting", to_loopback, Some("127.0.0.0/8 is reached only on lo (CVE-2020-8558)"));
    let from_loopback = vec![
        eq(expr::meta("iifname"), expr::set_ref(BRIDGES)),
        eq(expr::payload("ip", "saddr"), loopback()),
        expr::drop(),
    ];
    b.rule("filter-prerouting", from_loopback, Some("a container forging a loopback source (route_localnet=1)"));
}

/// Forwarding: only traffic into or out of Berth's bridges is judged here;
/// everything else leaves the chain without a verdict (policy accept), so
/// the host's own routing is untouched.
///
/// `into-networks` is where per-endpoint policy will go (before the
/// accepts); `out-of-networks` likewise for egress policy.
fn filter_rules(b: &mut Builder<'_>) {
    let to_vip = || vec![eq(expr::payload("ip", "daddr"), expr::set_ref(VIP_ADDRESSES)), expr::jump(REJECT_VIP)];
    let note = Some("VIP without a ready backend, or a port it does not serve");
    let fwd = "filter-forward";
    let iif = || expr::meta("iifname");
    let oif = || expr::meta("oifname");
    b.rule(fwd, to_vip(), note);
    let established = vec![expr::ct_state_in(&["established", "related"]), expr::accept()];
    b.rule(fwd, established, Some("replies and related traffic of allowed connections"));
    b.rule(fwd, vec![eq(oif(), expr::set_ref(BRIDGES)), expr::goto(INTO_NETWORKS)], None);
    b.rule(fwd, vec![eq(iif(), expr::set_ref(BRIDGES)), expr::goto(OUT_OF_NETWORKS)], None);

    let same = vec![eq(expr::concat(vec![iif(), oif()]), expr::set_ref(SAME_BRIDGE)), expr::accept()];
    b.rule(INTO_NETWORKS, same, Some("containers on one network reach each other"));
    let from_internal = || vec![eq(iif(), expr::set_ref(INTERNAL_BRIDGES)), expr::drop()];
    b.rule(INTO_NETWORKS, from_internal(), Some("internal network: nothing leaves it"));
    let to_internal = vec![eq(oif(), expr::set_ref(INTERNAL_BRIDGES)), expr::drop()];
    b.rule(INTO_NETWORKS, to_internal, Some("internal network: nothing enters it"));
    let dnat = vec![expr::has_flag(expr::ct("status"), "dnat"), expr::accept()];
    b.rule(INTO_NETWORKS, dnat, Some("published ports and VIPs"));
    b.rule(INTO_NETWORKS, vec![expr::drop()], Some("another network, or routed in from outside"));

    b.rule(OUT_OF_NETWORKS, from_internal(), Some("internal network: nothing leaves it"));
    b.rule(OUT_OF_NETWORKS, vec![expr::accept()], Some("egress (masqueraded)"));

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
        assert_eq!(shape.collections[INTERNAL_BRIDGES], 1);
        let json = serde_json::to_value(&rs).unwrap();
        let drops_internal = |chain: &str| {
            rules_of(&json, chain).iter().any(|r| {
                r.to_string().contains(&format!("\"@{INTERNAL_BRIDGES}\"")) && r.to_string().contains("\"drop\"")
            })
        };
        assert!(drops_internal(INTO_NETWORKS) && drops_internal(OUT_OF_NETWORKS));
    }

    fn rules_of(json: &Value, chain: &str) -> Vec<Value> {
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["add"]["rule"]["chain"] == chain)
            .map(|c| c["add"]["rule"]["expr"].clone())
            .collect()
    }

    fn two_networks() -> Desired {
        let net = |name: &str, subnet: &str, internal: bool| {
            let subnet: Ipv4Cidr = subnet.parse().unwrap();
            Network { name: name.into(), bridge: format!("br-{name}"), subnet, gateway: subnet.first_host(), internal }
        };
        Desired::try_new("berth", vec![net("a", "10.88.0.0/24", false), net("b", "10.88.1.0/24", true)], vec![], vec![])
            .unwrap()
    }

    #[test]
    fn bridge_sets_name_every_bridge_once() {
        let json = serde_json::to_value(compile(&two_networks())).unwrap();
        let set = |name: &str| {
            json["nftables"].as_array().unwrap().iter().find(|c| c["add"]["set"]["name"] == name).unwrap()["add"]["set"]
                .clone()
        };
        assert_eq!(set(BRIDGES)["elem"], json!(["br-a", "br-b"]));
        assert_eq!(set(INTERNAL_BRIDGES)["elem"], json!(["br-b"]));
        assert_eq!(set(SAME_BRIDGE)["type"], json!(["ifname", "ifname"]));
        assert_eq!(set(SAME_BRIDGE)["elem"], json!([{ "concat": ["br-a", "br-a"] }, { "concat": ["br-b", "br-b"] }]));
    }

    /// The host's own traffic is never judged: the forward base chain
    /// drops nothing itself, and only hands traffic into or out of a
    /// bridge of ours to the chains that may drop it.
    #[test]
    fn forwarding_judges_only_traffic_of_our_bridges() {
        let json = serde_json::to_value(compile(&two_networks())).unwrap();
        let forward = rules_of(&json, "filter-forward");
        assert_eq!(forward.len(), 4, "{forward:#?}");
        assert!(forward.iter().all(|r| !r.to_string().contains("\"drop\"")), "{forward:#?}");
        assert!(forward[1].to_string().contains("established"), "replies are accepted before anything is judged");
        assert_eq!(forward[2][1], expr::goto(INTO_NETWORKS));
        assert_eq!(forward[2][0], eq(expr::meta("oifname"), expr::set_ref(BRIDGES)));
        assert_eq!(forward[3][1], expr::goto(OUT_OF_NETWORKS));
        assert_eq!(forward[3][0], eq(expr::meta("iifname"), expr::set_ref(BRIDGES)));

        // Into a bridge: same bridge, then internal isolation, then DNAT,
        // then nothing else.
        let into = rules_of(&json, INTO_NETWORKS);
        let verdicts: Vec<&Value> = into.iter().map(|r| r.as_array().unwrap().last().unwrap()).collect();
        assert_eq!(verdicts, [&expr::accept(), &expr::drop(), &expr::drop(), &expr::accept(), &expr::drop()]);
        assert!(into[3].to_string().contains("dnat"), "{:#}", into[3]);
        assert_eq!(into[4].as_array().unwrap().len(), 1, "the last rule drops whatever is left");
        let out = rules_of(&json, OUT_OF_NETWORKS);
        assert_eq!(out.last().unwrap(), &json!([expr::accept()]));
    }

    #[test]
    fn loopback_addresses_are_dropped_before_nat_on_every_interface_but_lo() {
        let rs = compile(&two_networks());
        let base = rs
            .commands()
            .iter()
            .find_map(|c| match c {
                Command::Add(Object::Chain(ch)) if ch.name == "filter-prerouting" => ch.base.clone(),
                _ => None,
            })
            .unwrap();
        // Conntrack runs at -200, DNAT at -100.
        assert!(base.prio < -200, "before conntrack and DNAT: {base:?}");
        assert_eq!((base.hook.as_str(), base.policy.as_str()), ("prerouting", "accept"));
        let json = serde_json::to_value(&rs).unwrap();
        let rules = rules_of(&json, "filter-prerouting");
        let lo = json!({ "prefix": { "addr": "127.0.0.0", "len": 8 } });
        assert_eq!(
            rules[0],
            json!([ne(expr::meta("iifname"), "lo"), eq(expr::payload("ip", "daddr"), lo.clone()), expr::drop()])
        );
        assert_eq!(
            rules[1],
            json!([
                eq(expr::meta("iifname"), expr::set_ref(BRIDGES)),
                eq(expr::payload("ip", "saddr"), lo),
                expr::drop()
            ])
        );
    }

    #[test]
    fn comments_are_bounded_and_quote_free() {
        assert_eq!(comment("a \"b\"\n"), "a 'b''");
        let long = "é".repeat(100);
        let c = comment(&long);
        assert!(c.len() <= COMMENT_MAX && c.chars().all(|ch| ch == 'é'));
    }
}
