//! Privileged: network isolation with real packets, all inside network
//! namespaces this test creates (never the host's).
//!
//! The lab, per test:
//!
//! ```text
//!  C (10.78.0.2) ── up0 ──┐ R: "the host", runs Berth's table
//!  "a LAN neighbour"      │ br0 10.77.0.1/24 (network "a") ── A1 10.77.0.2, A2 10.77.0.3
//!  routes 10.76/15 via R  │ br1 10.76.0.1/24 (network "b") ── B1 10.76.0.2
//!                         │ up0 10.78.0.1/24
//!                         │ lo: services the containers must not reach
//! ```
//!
//! Published: `*:8080 → A1:80` and `127.0.0.1:9090 → A2:80`. Each
//! container runs a TCP server on :80 answering its name and the peer
//! address it sees; C serves :7000. Every attack is first shown to work
//! without the rule that stops it (so the test proves the rule, not a lab
//! that cannot route), then shown to fail. Blocked connections time out
//! after 700 ms; every loop is bounded.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_net::{compile, NftCli, Nftables, Ruleset};
use common::{desired, network, port, require_root, veth, Client, Held, Netns, Outcome, Server};

const SHORT: Duration = Duration::from_millis(700);
const OK_WAIT: Duration = Duration::from_secs(2);

struct Lab {
    // Servers first: they are killed before their namespaces go.
    _servers: Vec<Server>,
    r: Netns,
    c: Netns,
    a1: Netns,
    a2: Netns,
    b1: Netns,
    table: String,
    nft: NftCli,
}

impl Lab {
    /// `br_netfilter`: whether bridged frames in R pass the IP hooks (see
    /// traffic.rs; per namespace on the kernels Berth supports).
    fn new(br_netfilter: bool) -> Self {
        require_root();
        let r = Netns::new();
        let (c, a1, a2, b1) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
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
        let mut servers = Vec::new();
        for (bridge, gateway, members) in [
            ("br0", "10.77.0.1", vec![(&a1, "a1", "10.77.0.2"), (&a2, "a2", "10.77.0.3")]),
            ("br1", "10.76.0.1", vec![(&b1, "b1", "10.76.0.2")]),
        ] {
            r.exec(&["ip", "link", "add", bridge, "type", "bridge"]);
            r.exec(&["ip", "addr", "add", &format!("{gateway}/24"), "dev", bridge]);
            r.exec(&["ip", "link", "set", bridge, "up"]);
            // As the daemon does: published ports on 127.0.0.1 need it.
            r.sysctl(&format!("net.ipv4.conf.{bridge}.route_localnet"), "1");
            for (ns, name, addr) in members {
                let rif = format!("v{name}");
                veth(&r, &rif, ns, "eth0");
                r.exec(&["ip", "link", "set", &rif, "master", bridge]);
                r.exec(&["ip", "link", "set", &rif, "type", "bridge_slave", "hairpin", "on"]);
                ns.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
                ns.exec(&["ip", "route", "add", "default", "via", gateway]);
                servers.push(Server::start(ns, name, "0.0.0.0", 80));
            }
        }
        veth(&r, "up0", &c, "eth0");
        r.exec(&["ip", "addr", "add", "10.78.0.1/24", "dev", "up0"]);
        c.exec(&["ip", "addr", "add", "10.78.0.2/24", "dev", "eth0"]);
        // A neighbour that routes the container subnets through the host.
        c.exec(&["ip", "route", "add", "10.76.0.0/15", "via", "10.78.0.1"]);
        servers.push(Server::start(&c, "c", "10.78.0.2", 7000));
        // The host's loopback-only service.
        servers.push(Server::start(&r, "host-lo", "127.0.0.1", 7001));
        let table = format!("bi-{}", std::process::id());
        let nft = NftCli::with("nft", Some(r.path()));
        Self { _servers: servers, r, c, a1, a2, b1, table, nft }
    }

    fn ruleset(&self) -> Ruleset {
        let ports = vec![
            port("a1", None, 8080, "a", "10.77.0.2", 80),
            port("a2", Some("127.0.0.1"), 9090, "a", "10.77.0.3", 80),
        ];
        let networks = vec![network("a", "br0", "10.77.0.0/24", false), network("b", "br1", "10.76.0.0/24", false)];
        compile(&desired(&self.table, networks, ports, vec![]))
    }

    fn apply(&self, rs: &Ruleset) {
        self.nft.apply(rs).unwrap();
    }
}

/// The ruleset without the chain's rules: the control experiment.
fn without_chain(rs: &Ruleset, chain: &str) -> Ruleset {
    let mut v = serde_json::to_value(rs).unwrap();
    v["nftables"].as_array_mut().unwrap().retain(|c| c["add"]["rule"]["chain"] != chain);
    serde_json::from_value(v).unwrap()
}

fn from(ns: &Netns) -> Client<'_> {
    Client { ns }
}

fn answered_by(outcomes: &[Outcome]) -> Option<(String, String)> {
    match outcomes {
        [Outcome::Ok { server, peer }] => Some((server.clone(), peer.clone())),
        _ => None,
    }
}

fn ok(what: &str, ns: &Netns, addr: &str, port: u16) -> (String, String) {
    let o = from(ns).connect(addr, port, 1, OK_WAIT);
    answered_by(&o).unwrap_or_else(|| panic!("{what}: expected an answer, got {o:?}"))
}

/// Nothing answered: dropped (the client times out) or, where the host
/// itself has no such port, refused by the host.
fn unanswered(what: &str, ns: &Netns, addr: &str, port: u16) {
    let o = from(ns).connect(addr, port, 1, SHORT);
    assert!(answered_by(&o).is_none(), "{what}: expected no answer, got {o:?}");
}

fn blocked(what: &str, ns: &Netns, addr: &str, port: u16) {
    let o = from(ns).connect(addr, port, 1, SHORT);
    // Dropped, so the client times out (a refusal would mean it got there).
    assert!(matches!(o[..], [Outcome::Error { .. }]), "{what}: expected no answer, got {o:?}");
}

/// An attacker's namespace sends to 127.0.0.0/8 through its gateway, as a
/// container with CAP_NET_ADMIN in its own namespace can (one with only
/// CAP_NET_RAW, Docker's default, can forge the same packets), and accepts
/// answers from loopback sources.
fn route_loopback_via(ns: &Netns, gateway: &str) {
    // Without 127.0.0.1 on its own lo, answers from it are not martians.
    ns.exec(&["ip", "addr", "flush", "dev", "lo"]);
    ns.exec(&["ip", "route", "add", "127.0.0.0/8", "via", gateway]);
    ns.sysctl("net.ipv4.conf.eth0.route_localnet", "1");
}

/// A UDP socket in a namespace that reports, after `secs`, the source of
/// every datagram it got: one-way delivery, the plainest proof that a
/// packet got through (or did not).
struct UdpSink {
    child: Child,
}

const SINK: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[3])
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, peer = s.recvfrom(64)
        print("got", peer[0], flush=True)
    except socket.timeout:
        break
"#;

const SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"probe", (sys.argv[1], int(sys.argv[2])))
"#;

impl UdpSink {
    fn start(ns: &Netns, addr: &str, port: u16, secs: f64) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", SINK, addr, &port.to_string(), &secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 UDP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read ready");
        assert_eq!(line.trim(), "ready", "UDP sink did not start");
        Self { child }
    }

    /// Waits out the sink; the sources of what it received.
    fn received(mut self) -> Vec<String> {
        let mut out = String::new();
        self.child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read sink");
        let _ = self.child.wait();
        out.lines().filter_map(|l| l.strip_prefix("got ").map(str::to_string)).collect()
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Datagrams from `from` to the host's `127.0.0.1:port` that arrived.
fn udp_to_host_loopback(lab: &Lab, from: &Netns, port: u16) -> Vec<String> {
    let sink = UdpSink::start(&lab.r, "127.0.0.1", port, 0.7);
    from.exec(&["python3", "-c", SEND, "127.0.0.1", &port.to_string()]);
    sink.received()
}

#[test]
fn networks_cannot_reach_each_other_but_reach_their_own_members() {
    for br_netfilter in [true, false] {
        let lab = Lab::new(br_netfilter);
        // Control: the host routes between its bridges.
        assert_eq!(ok("control", &lab.a1, "10.76.0.2", 80).0, "b1");

        lab.apply(&lab.ruleset());
        blocked("network a to network b", &lab.a1, "10.76.0.2", 80);
        blocked("network b to network a", &lab.b1, "10.77.0.2", 80);
        let (server, peer) = ok("same network", &lab.a2, "10.77.0.2", 80);
        assert_eq!((server.as_str(), peer.as_str()), ("a1", "10.77.0.3"), "br_netfilter {br_netfilter}");
        // A published port is published to every network, as to the LAN.
        assert_eq!(ok("b1 to a1's published port", &lab.b1, "10.76.0.1", 8080).0, "a1");
        // The host still reaches every network.
        assert_eq!(ok("host to b1", &lab.r, "10.76.0.2", 80).0, "b1");
    }
}

#[test]
fn the_lan_reaches_published_ports_only() {
    let lab = Lab::new(true);
    // Control: without Berth's rules the host routes the LAN in.
    assert_eq!(ok("control", &lab.c, "10.77.0.2", 80).0, "a1");

    lab.apply(&lab.ruleset());
    blocked("LAN to an unpublished port", &lab.c, "10.77.0.2", 80);
    blocked("LAN to a published container port, addressed directly", &lab.c, "10.77.0.3", 80);
    blocked("LAN to another network", &lab.c, "10.76.0.2", 80);
    let (server, peer) = ok("LAN to a published port", &lab.c, "10.78.0.1", 8080);
    assert_eq!((server.as_str(), peer.as_str()), ("a1", "10.78.0.2"), "the LAN client keeps its address");
    unanswered("LAN to a 127.0.0.1-only port on the host's address", &lab.c, "10.78.0.1", 9090);

    // A neighbour sending to 127.0.0.1 through this host: Berth's DNAT runs
    // before the kernel's martian check, so without the guard it reaches
    // the 127.0.0.1-only port.
    route_loopback_via(&lab.c, "10.78.0.1");
    lab.apply(&without_chain(&lab.ruleset(), "filter-prerouting"));
    assert_eq!(ok("control: unguarded", &lab.c, "127.0.0.1", 9090).0, "a2");
    lab.apply(&lab.ruleset());
    blocked("LAN to a 127.0.0.1-only port via 127.0.0.1", &lab.c, "127.0.0.1", 9090);
}

#[test]
fn containers_cannot_reach_the_hosts_loopback() {
    for br_netfilter in [true, false] {
        let lab = Lab::new(br_netfilter);
        route_loopback_via(&lab.a1, "10.77.0.1");
        // Control: with route_localnet=1 on the bridge and no guard, a
        // container reaches the host's loopback: datagrams arrive, and the
        // 127.0.0.1-only published port answers.
        lab.apply(&without_chain(&lab.ruleset(), "filter-prerouting"));
        let got = udp_to_host_loopback(&lab, &lab.a1, 7002);
        assert!(!got.is_empty() && got.iter().all(|s| s == "10.77.0.2"), "control: {got:?}");
        assert_eq!(ok("control: 127.0.0.1-only port", &lab.a1, "127.0.0.1", 9090).0, "a2");
        assert_eq!(ok("control: the host's loopback service", &lab.a1, "127.0.0.1", 7001).0, "host-lo");

        lab.apply(&lab.ruleset());
        let got = udp_to_host_loopback(&lab, &lab.a1, 7003);
        assert_eq!(got, Vec::<String>::new(), "br_netfilter {br_netfilter}: UDP reached the host's 127.0.0.1");
        blocked("container to the host's loopback service", &lab.a1, "127.0.0.1", 7001);
        blocked("container to a 127.0.0.1-only published port", &lab.a1, "127.0.0.1", 9090);

        // What must keep working: the host on its own loopback, the
        // published port on 127.0.0.1 from the host, and services on the
        // gateway address (the network's DNS listens there).
        assert_eq!(ok("host loopback", &lab.r, "127.0.0.1", 7001).0, "host-lo");
        let (server, _) = ok("host to the 127.0.0.1-only port", &lab.r, "127.0.0.1", 9090);
        assert_eq!(server, "a2");
        let _gateway = Server::start(&lab.r, "gateway", "10.77.0.1", 53);
        assert_eq!(ok("container to its gateway", &lab.a2, "10.77.0.1", 53).0, "gateway");
    }
}

#[test]
fn established_connections_and_egress_still_flow() {
    let lab = Lab::new(true);
    lab.apply(&lab.ruleset());
    let (server, peer) = ok("egress", &lab.a1, "10.78.0.2", 7000);
    assert_eq!((server.as_str(), peer.as_str()), ("c", "10.78.0.1"), "egress is masqueraded");
    assert_eq!(ok("egress from b", &lab.b1, "10.78.0.2", 7000).1, "10.78.0.1");

    // Connections held across a re-apply keep flowing both ways: out of a
    // network, and into one through a published port.
    let out = Held::open(&lab.a1, "10.78.0.2", 7000);
    let published = Held::open(&lab.c, "10.78.0.1", 8080);
    assert!(out.greeting.starts_with("c ") && published.greeting.starts_with("a1 "));
    lab.apply(&lab.ruleset());
    assert!(out.send_and_close(), "an egress connection broke");
    assert!(published.send_and_close(), "a connection to a published port broke");
}
