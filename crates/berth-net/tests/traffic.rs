//! Privileged: real packets through compiled rule sets, all inside network
//! namespaces this test creates (never the host's).
//!
//! The lab, per test:
//!
//! ```text
//!  C (10.78.0.2) ── up0 ──┐ R: router, runs Berth's table       ┌─ B1 10.77.0.2 "b1"
//!  "another host"         │ br0 10.77.0.1/24 (network "tn")     ├─ B2 10.77.0.3 "b2"
//!                         │ up0 10.78.0.1/24                    └─ B3 10.77.0.4 "b3"
//!                         │ vip0: empty bridge, route 10.96.0.0/16 (VIPs)
//! ```
//!
//! Each backend runs a TCP server on :80 that answers its name and the
//! client address it sees. Connection counts are bounded (at most 1000 per
//! step) and every connection has a timeout.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use berth_net::{
    compile, ensure_applied, vip_connections, BackendConnections, ConntrackCli, Desired, NftCli, NftError, Nftables,
    Ruleset,
};
use common::{desired, network, port, require_root, veth, vip, Client, Held, Netns, Outcome, Server};

const VIP: &str = "10.96.0.10";

struct Lab {
    // Servers first: they are killed before their namespaces go.
    _servers: Vec<Server>,
    r: Netns,
    c: Netns,
    b: Vec<Netns>,
    table: String,
    nft: NftCli,
    br_netfilter: bool,
}

impl Lab {
    fn new() -> Self {
        Self::with_br_netfilter(true)
    }

    /// `br_netfilter`: whether bridged frames in R pass the IP hooks (the
    /// kernel default when the module is loaded, as with Docker; a
    /// per-namespace sysctl on the kernels Berth supports).
    fn with_br_netfilter(br_netfilter: bool) -> Self {
        require_root();
        let (r, c) = (Netns::new(), Netns::new());
        let b: Vec<Netns> = (0..3).map(|_| Netns::new()).collect();
        r.sysctl("net.ipv4.ip_forward", "1");
        let host_setting = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        if let Ok(before) = std::fs::read_to_string(host_setting) {
            r.sysctl("net.bridge.bridge-nf-call-iptables", if br_netfilter { "1" } else { "0" });
            let after = std::fs::read_to_string(host_setting).unwrap_or_default();
            if after != before {
                let _ = std::fs::write(host_setting, &before);
                panic!("bridge-nf-call-iptables is not per-namespace on this kernel (needs Linux 5.3+); restored it");
            }
        } else {
            assert!(!br_netfilter, "br_netfilter is not available on this kernel");
        }
        r.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        r.exec(&["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        r.exec(&["ip", "link", "set", "br0", "up"]);
        // Published ports on 127.0.0.1 need this on the bridge (see lib docs).
        r.sysctl("net.ipv4.conf.br0.route_localnet", "1");
        let mut servers = Vec::new();
        for (i, ns) in b.iter().enumerate() {
            let rif = format!("vb{}", i + 1);
            veth(&r, &rif, ns, "eth0");
            r.exec(&["ip", "link", "set", &rif, "master", "br0"]);
            // With br_netfilter a container reaching itself through a VIP
            // or published port is bridged back out its own port.
            r.exec(&["ip", "link", "set", &rif, "type", "bridge_slave", "hairpin", "on"]);
            ns.exec(&["ip", "addr", "add", &format!("10.77.0.{}/24", i + 2), "dev", "eth0"]);
            ns.exec(&["ip", "route", "add", "default", "via", "10.77.0.1"]);
            servers.push(Server::start(ns, &format!("b{}", i + 1), "0.0.0.0", 80));
        }
        veth(&r, "up0", &c, "eth0");
        r.exec(&["ip", "addr", "add", "10.78.0.1/24", "dev", "up0"]);
        c.exec(&["ip", "addr", "add", "10.78.0.2/24", "dev", "eth0"]);
        c.exec(&["ip", "route", "add", "default", "via", "10.78.0.1"]);
        // Host-originated connections to a VIP need a route before the
        // output hook can DNAT them: the VIP range on an empty bridge (a
        // dummy would do, but this kernel has no CONFIG_DUMMY).
        r.exec(&["ip", "link", "add", "vip0", "type", "bridge"]);
        r.exec(&["ip", "link", "set", "vip0", "up"]);
        r.exec(&["ip", "route", "add", "10.96.0.0/16", "dev", "vip0"]);
        servers.push(Server::start(&c, "c", "10.78.0.2", 7000));
        let table = format!("bt-{}", std::process::id());
        let nft = NftCli::with("nft", Some(r.path()));
        Self { _servers: servers, r, c, b, table, nft, br_netfilter }
    }

    fn desired(&self, internal: bool, ports: Vec<berth_net::PublishedPort>, backends: &[&str]) -> Desired {
        let net = network("tn", "br0", "10.77.0.0/24", internal);
        desired(&self.table, vec![net], ports, vec![vip("web", VIP, 80, backends)])
    }

    fn apply(&self, d: &Desired) -> Ruleset {
        let rs = compile(d);
        self.nft.apply(&rs).unwrap();
        rs
    }

    fn apply_vip(&self, backends: &[&str]) -> Ruleset {
        self.apply(&self.desired(false, vec![], backends))
    }

    fn from<'a>(&self, ns: &'a Netns) -> Client<'a> {
        Client { ns }
    }

    fn counts(&self, backends: &[&str]) -> BTreeMap<SocketAddrV4, BackendConnections> {
        let ct = ConntrackCli::with("conntrack", Some(self.r.path()));
        vip_connections(&ct, &vip("web", VIP, 80, backends)).unwrap()
    }
}

fn only_ok(step: &str, outcomes: &[Outcome]) -> Vec<(String, String)> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Ok { server, peer } => (server.clone(), peer.clone()),
            other => panic!("{step}: a connection failed: {other:?} (all: {outcomes:?})"),
        })
        .collect()
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

#[test]
fn vip_weights_steer_new_connections_and_established_ones_survive() {
    let lab = Lab::new();
    let r = lab.from(&lab.r);

    // All to b1, and hold one connection there.
    lab.apply_vip(&["10.77.0.2:80=100", "10.77.0.3:80=0"]);
    let held_b1 = Held::open(&lab.r, VIP, 80);
    assert!(held_b1.greeting.starts_with("b1 "), "{}", held_b1.greeting);

    // 50/50: 200 connections split roughly evenly (binomial sd ~7).
    lab.apply_vip(&["10.77.0.2:80=50", "10.77.0.3:80=50"]);
    let t = r.tally(VIP, 80, 200);
    let (b1, b2) = (t.get("b1").copied().unwrap_or(0), t.get("b2").copied().unwrap_or(0));
    assert_eq!(b1 + b2, 200, "{t:?}");
    assert!((60..=140).contains(&b1), "50/50 gave {t:?}");

    // 0/100: every new connection goes to b2; the held one to b1 still works.
    let held_b2: Vec<Held> = (0..3).map(|_| Held::open(&lab.r, VIP, 80)).collect();
    lab.apply_vip(&["10.77.0.2:80=0", "10.77.0.3:80=100"]);
    assert_eq!(r.tally(VIP, 80, 100), BTreeMap::from([("b2".to_string(), 100)]));

    // Conntrack sees the held connections per backend.
    let on_b2 = held_b2.iter().filter(|h| h.greeting.starts_with("b2 ")).count() as u32;
    let counts = lab.counts(&["10.77.0.2:80=0", "10.77.0.3:80=100"]);
    assert_eq!(counts[&sa("10.77.0.2:80")].established, 1 + (3 - on_b2), "{counts:?}");
    assert_eq!(counts[&sa("10.77.0.3:80")].established, on_b2, "{counts:?}");

    assert!(held_b1.send_and_close(), "the established connection to b1 broke when b1 left the VIP");
    drop(held_b2);

    // 1/99: the canary gets a small share of 1000 (expected 10; P(0) ~ 4e-5).
    lab.apply_vip(&["10.77.0.2:80=1", "10.77.0.3:80=99"]);
    let t = r.tally(VIP, 80, 1000);
    let canary = t.get("b1").copied().unwrap_or(0);
    assert_eq!(canary + t.get("b2").copied().unwrap_or(0), 1000, "{t:?}");
    assert!((1..=35).contains(&canary), "1/99 gave {t:?}");
}

#[test]
fn vip_without_backends_refuses_at_once() {
    let lab = Lab::new();
    lab.apply_vip(&[]);
    // From the host (output hook) and from another host (forward hook).
    for client in [lab.from(&lab.r), lab.from(&lab.c)] {
        for o in client.connect(VIP, 80, 3, Duration::from_secs(3)) {
            match o {
                Outcome::Refused { secs } => assert!(secs < 1.0, "refusal took {secs}s"),
                other => panic!("expected connection refused, got {other:?}"),
            }
        }
    }
    // A port the VIP does not serve is refused too, not routed into nowhere.
    lab.apply_vip(&["10.77.0.2:80=100"]);
    let o = lab.from(&lab.r).connect(VIP, 81, 1, Duration::from_secs(3));
    assert!(matches!(o[..], [Outcome::Refused { secs }] if secs < 1.0), "{o:?}");
    assert_eq!(lab.from(&lab.r).tally(VIP, 80, 5), BTreeMap::from([("b1".to_string(), 5)]));
}

#[test]
fn vip_from_containers_hairpin_and_other_hosts() {
    vip_from_containers(Lab::with_br_netfilter(true));
    vip_from_containers(Lab::with_br_netfilter(false));
}

fn vip_from_containers(lab: Lab) {
    lab.apply_vip(&["10.77.0.2:80=100"]);
    // b1 reaching itself through the VIP: masqueraded to the bridge address.
    let own = only_ok("own", &lab.from(&lab.b[0]).connect(VIP, 80, 3, Duration::from_secs(2)));
    assert!(own.iter().all(|(s, p)| s == "b1" && p == "10.77.0.1"), "{own:?}");
    // b2 on the same bridge: routed through R it must be masqueraded, or
    // b1's reply would bypass R; with br_netfilter the bridge's conntrack
    // undoes the DNAT on the reply, and b2 keeps its address.
    let peer = only_ok("peer", &lab.from(&lab.b[1]).connect(VIP, 80, 3, Duration::from_secs(2)));
    let seen = if lab.br_netfilter { "10.77.0.3" } else { "10.77.0.1" };
    assert!(peer.iter().all(|(s, p)| s == "b1" && p == seen), "br_netfilter {}: {peer:?}", lab.br_netfilter);
    // Another host keeps its own address.
    let ext = only_ok("ext", &lab.from(&lab.c).connect(VIP, 80, 3, Duration::from_secs(2)));
    assert!(ext.iter().all(|(s, p)| s == "b1" && p == "10.78.0.2"), "{ext:?}");
}

#[test]
fn published_port_from_other_hosts_the_host_loopback_and_containers() {
    published_port(Lab::with_br_netfilter(true));
    published_port(Lab::with_br_netfilter(false));
}

fn published_port(lab: Lab) {
    let ports =
        vec![port("b1", None, 8080, "tn", "10.77.0.2", 80), port("b3", Some("127.0.0.1"), 9090, "tn", "10.77.0.4", 80)];
    lab.apply(&lab.desired(false, ports, &[]));
    let t = Duration::from_secs(2);
    let ext = only_ok("ext", &lab.from(&lab.c).connect("10.78.0.1", 8080, 3, t));
    assert!(ext.iter().all(|(s, p)| s == "b1" && p == "10.78.0.2"), "from another host: {ext:?}");
    let host = only_ok("host", &lab.from(&lab.r).connect("10.77.0.1", 8080, 3, t));
    assert!(host.iter().all(|(s, _)| s == "b1"), "from the host to its own address: {host:?}");
    let lo = only_ok("lo", &lab.from(&lab.r).connect("127.0.0.1", 8080, 3, t));
    assert!(lo.iter().all(|(s, p)| s == "b1" && p == "10.77.0.1"), "from the host on loopback: {lo:?}");
    let lo_only = only_ok("lo_only", &lab.from(&lab.r).connect("127.0.0.1", 9090, 3, t));
    assert!(lo_only.iter().all(|(s, _)| s == "b3"), "127.0.0.1-only port: {lo_only:?}");
    let not_lo = lab.from(&lab.c).connect("10.78.0.1", 9090, 1, t);
    assert!(matches!(not_lo[..], [Outcome::Refused { .. }]), "127.0.0.1-only port reached from outside: {not_lo:?}");
    let hairpin = only_ok("hairpin", &lab.from(&lab.b[0]).connect("10.78.0.1", 8080, 3, t));
    assert!(hairpin.iter().all(|(s, p)| s == "b1" && p == "10.77.0.1"), "b1 to its own published port: {hairpin:?}");
    let neighbour = only_ok("neighbour", &lab.from(&lab.b[1]).connect("10.77.0.1", 8080, 3, t));
    let seen = if lab.br_netfilter { "10.77.0.3" } else { "10.77.0.1" };
    assert!(neighbour.iter().all(|(s, p)| s == "b1" && p == seen), "b2 to b1's published port: {neighbour:?}");
}

#[test]
fn egress_is_masqueraded_and_internal_networks_are_isolated() {
    let lab = Lab::new();
    lab.apply(&lab.desired(false, vec![], &[]));
    let out = only_ok("out", &lab.from(&lab.b[0]).connect("10.78.0.2", 7000, 2, Duration::from_secs(2)));
    assert!(out.iter().all(|(s, p)| s == "c" && p == "10.78.0.1"), "egress not masqueraded: {out:?}");

    lab.apply(&lab.desired(true, vec![], &[]));
    let short = Duration::from_millis(700);
    let blocked = lab.from(&lab.b[0]).connect("10.78.0.2", 7000, 1, short);
    assert!(matches!(blocked[..], [Outcome::Error { .. }]), "internal network reached outside: {blocked:?}");
    let inbound = lab.from(&lab.c).connect("10.77.0.2", 80, 1, short);
    assert!(matches!(inbound[..], [Outcome::Error { .. }]), "internal network reached from outside: {inbound:?}");
    let host = only_ok("host", &lab.from(&lab.r).connect("10.77.0.2", 80, 1, short));
    assert_eq!(host[0].0, "b1", "the host still reaches an internal network");
}

#[test]
fn a_flushed_table_is_noticed_and_reapplied_and_bad_batches_change_nothing() {
    let lab = Lab::new();
    let rs = lab.apply_vip(&["10.77.0.2:80=100"]);
    assert!(!ensure_applied(&lab.nft, &rs).unwrap(), "intact table re-applied");

    for damage in [vec!["nft", "flush", "table", "ip", &lab.table], vec!["nft", "flush", "ruleset"]] {
        lab.r.exec(&damage);
        let o = lab.from(&lab.r).connect(VIP, 80, 1, Duration::from_millis(700));
        assert!(!matches!(o[..], [Outcome::Ok { .. }]), "VIP still works after {damage:?}: {o:?}");
        assert!(ensure_applied(&lab.nft, &rs).unwrap(), "damage by {damage:?} not noticed");
        assert_eq!(lab.from(&lab.r).tally(VIP, 80, 3), BTreeMap::from([("b1".to_string(), 3)]));
    }

    // A batch the kernel refuses leaves the previous rules in place.
    let mut bad = serde_json::to_value(compile(&lab.desired(false, vec![], &["10.77.0.3:80=100"]))).unwrap();
    let cmds = bad["nftables"].as_array_mut().unwrap();
    let rule = serde_json::json!({ "add": { "rule": {
        "family": "ip", "table": lab.table, "chain": "no-such-chain", "expr": [{ "accept": null }] } } });
    cmds.push(rule);
    let bad: Ruleset = serde_json::from_value(bad).unwrap();
    match lab.nft.apply(&bad) {
        Err(NftError::Failed { stderr, .. }) => assert!(!stderr.contains('\n') && !stderr.is_empty(), "{stderr:?}"),
        other => panic!("expected nft to refuse the batch, got {other:?}"),
    }
    assert!(!ensure_applied(&lab.nft, &rs).unwrap(), "a refused batch changed the table");
    assert_eq!(lab.from(&lab.r).tally(VIP, 80, 3), BTreeMap::from([("b1".to_string(), 3)]));

    lab.nft.delete_table(&lab.table).unwrap();
    lab.nft.delete_table(&lab.table).unwrap();
    assert_eq!(lab.nft.list_table(&lab.table).unwrap(), None);
}
