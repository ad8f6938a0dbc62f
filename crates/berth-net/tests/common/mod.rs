//! Helpers for the privileged tests: named network namespaces that are
//! removed on drop (also on panic), commands run inside them, and small TCP
//! servers killed by PID on drop. Traffic only ever goes to addresses inside
//! namespaces a test created.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use berth_core::net::{Ipv4Cidr, Protocol, Weights};
use berth_net::{Desired, Network, PublishedPort, Vip};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn require_root() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root to create network namespaces and run nft; run `cargo test` as root as CI does"
    );
    for (tool, package) in
        [("nft", "nftables"), ("ip", "iproute2"), ("nsenter", "util-linux"), ("conntrack", "conntrack")]
    {
        assert!(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success()),
            "{tool} is not installed; install {package} (scripts/deps.sh)"
        );
    }
}

/// Runs a command, panicking with its stderr on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace named `bnt-<pid>-<n>`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Self {
        let name = format!("bnt-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        sh(&["ip", "netns", "add", &name]);
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs a command inside the namespace, panicking on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Killing the namespace's processes is the servers' guards' job;
        // deleting the name is enough for the kernel to free it after.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Connects `a` (in namespace `ns_a`, named `if_a`) to `b` with a veth pair.
pub fn veth(ns_a: &Netns, if_a: &str, ns_b: &Netns, if_b: &str) {
    ns_a.exec(&["ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", &ns_b.name]);
    ns_a.exec(&["ip", "link", "set", if_a, "up"]);
    ns_b.exec(&["ip", "link", "set", if_b, "up"]);
}

/// A TCP server inside a namespace that answers every connection with its
/// name and the peer's address (`name peer-ip\n`), then answers `ack` to
/// whatever the client sends until it closes. Killed by PID on drop.
pub struct Server {
    child: Child,
}

const SERVER: &str = r#"
import socket, sys, threading
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(512)
print("ready", flush=True)
def serve(c, peer):
    try:
        c.sendall(("%s %s\n" % (name, peer[0])).encode())
        while c.recv(64):
            c.sendall(b"ack\n")
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"#;

impl Server {
    pub fn start(ns: &Netns, name: &str, addr: &str, port: u16) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", SERVER, name, addr, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read ready");
        assert_eq!(line.trim(), "ready", "server {name} did not start");
        Self { child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client inside a namespace: connects many times in one process and
/// reports what each connection heard. Runs `python3` so that the
/// connections originate inside the namespace.
pub struct Client<'a> {
    pub ns: &'a Netns,
}

const CLIENT: &str = r#"
import socket, sys, time
addr, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for _ in range(count):
    t0 = time.monotonic()
    try:
        c = socket.create_connection((addr, port), timeout=timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(64)
            if not chunk:
                break
            data += chunk
        c.close()
        print("ok", data.decode().strip(), flush=True)
    except ConnectionRefusedError:
        print("refused %.3f" % (time.monotonic() - t0), flush=True)
    except OSError as e:
        print("error %.3f %s" % (time.monotonic() - t0, type(e).__name__), flush=True)
"#;

/// The outcome of one connection attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Server name and the client address it saw.
    Ok {
        server: String,
        peer: String,
    },
    Refused {
        secs: f64,
    },
    Error {
        secs: f64,
        kind: String,
    },
}

impl Client<'_> {
    pub fn connect(&self, addr: &str, port: u16, count: u32, timeout: Duration) -> Vec<Outcome> {
        let out = self.ns.exec(&[
            "python3",
            "-c",
            CLIENT,
            addr,
            &port.to_string(),
            &count.to_string(),
            &timeout.as_secs_f64().to_string(),
        ]);
        out.lines()
            .map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                match parts.as_slice() {
                    ["ok", server, peer] => Outcome::Ok { server: server.to_string(), peer: peer.to_string() },
                    ["refused", secs] => Outcome::Refused { secs: secs.parse().unwrap() },
                    ["error", secs, kind] => Outcome::Error { secs: secs.parse().unwrap(), kind: kind.to_string() },
                    _ => panic!("unexpected client output {l:?}"),
                }
            })
            .collect()
    }

    /// How many of `count` connections each server answered.
    pub fn tally(&self, addr: &str, port: u16, count: u32) -> std::collections::BTreeMap<String, u32> {
        let mut t = std::collections::BTreeMap::new();
        for o in self.connect(addr, port, count, Duration::from_secs(2)) {
            let key = match o {
                Outcome::Ok { server, .. } => server,
                other => format!("{other:?}"),
            };
            *t.entry(key).or_insert(0) += 1;
        }
        t
    }
}

/// A connection held open by a helper process inside a namespace; it
/// prints what the server said first, then waits until dropped.
pub struct Held {
    child: Child,
    pub greeting: String,
}

const HOLD: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print(c.recv(64).decode().strip(), flush=True)
sys.stdin.read()
c.sendall(b"still here\n")
print("acked" if c.recv(64) == b"ack\n" else "lost", flush=True)
"#;

impl Held {
    pub fn open(ns: &Netns, addr: &str, port: u16) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", HOLD, addr, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start holder");
        let mut greeting = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut greeting).expect("read greeting");
        Self { child, greeting: greeting.trim().to_string() }
    }

    /// Sends on the held connection and closes it; true if the same server
    /// acknowledged (the connection really survived, not just the send).
    pub fn send_and_close(mut self) -> bool {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        let _ = self.child.stdout.as_mut().expect("stdout").read_to_string(&mut rest);
        let ok = self.child.wait().is_ok_and(|s| s.success());
        ok && rest.trim() == "acked"
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- desired-state builders shared by the golden and traffic tests ----

pub fn network(name: &str, bridge: &str, subnet: &str, internal: bool) -> Network {
    let subnet: Ipv4Cidr = subnet.parse().unwrap();
    Network { name: name.into(), bridge: bridge.into(), subnet, gateway: subnet.first_host(), internal }
}

pub fn port(owner: &str, host_ip: Option<&str>, host_port: u16, net: &str, ctr: &str, ctr_port: u16) -> PublishedPort {
    PublishedPort {
        owner: format!("container {owner}"),
        host_ip: host_ip.map(|h| h.parse().unwrap()),
        host_port,
        protocol: Protocol::Tcp,
        network: net.into(),
        container_ip: ctr.parse().unwrap(),
        container_port: ctr_port,
    }
}

pub fn vip(name: &str, ip: &str, port: u16, backends: &[&str]) -> Vip {
    Vip {
        name: name.into(),
        ip: ip.parse::<Ipv4Addr>().unwrap(),
        port,
        protocol: Protocol::Tcp,
        backends: Weights::parse(backends.iter().copied()).unwrap(),
        node_port: None,
    }
}

pub fn desired(table: &str, networks: Vec<Network>, ports: Vec<PublishedPort>, vips: Vec<Vip>) -> Desired {
    Desired::try_new(table, networks, ports, vips).unwrap()
}
