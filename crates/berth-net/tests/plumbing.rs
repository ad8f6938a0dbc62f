//! Privileged: named network namespaces and link plumbing through
//! netlink. Nothing is created on the real host: every test makes its own
//! namespace directory (a temporary directory), a "host" namespace H that
//! holds the bridges and host ends of veth pairs, and container
//! namespaces. The [`Lab`] guard deletes all of them, and with them every
//! link, also when a test panics.
//!
//! ```text
//!  H: bridge <p>br 10.79.0.1/24 ── veth ── C1 eth0 10.79.0.2
//!                                └─ veth ── C2 eth0 10.79.0.3
//! ```
//!
//! Traffic stays inside these namespaces; every ping and connection is
//! bounded (one packet or connection, 1-2 s timeout).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_core::net::Ipv4Cidr;
use berth_net::netns;
use berth_net::{host_ifname, Attachment, BridgeSpec, LinkError, MacAddr, NetLinks, NetlinkLinks, NetnsError};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const SUBNET: &str = "10.79.0.0/24";
const GATEWAY: &str = "10.79.0.1";

fn require_root() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root to create network namespaces and links; run `cargo test` as root as CI does"
    );
    for (tool, package) in
        [("ip", "iproute2"), ("nsenter", "util-linux"), ("busybox", "busybox-static"), ("python3", "python3")]
    {
        assert!(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success()),
            "{tool} is not installed; install {package} (scripts/deps.sh)"
        );
    }
}

/// Runs a command inside the namespace at `ns`.
fn run_in(ns: &Path, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("--")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("nsenter {args:?}: {e}"))
}

/// Runs a command inside `ns`, panicking with its stderr on failure.
fn sh_in(ns: &Path, args: &[&str]) -> String {
    let out = run_in(ns, args);
    assert!(out.status.success(), "{args:?} in {} failed: {}", ns.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pings(from: &Path, to: &str) -> bool {
    run_in(from, &["busybox", "ping", "-c1", "-W1", to]).status.success()
}

/// The names of the links in `ns`.
fn links_in(ns: &Path) -> Vec<String> {
    sh_in(ns, &["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The Ethernet address of `dev` in `ns` (not through /sys, which shows
/// the namespace that mounted it).
fn mac_of(ns: &Path, dev: &str) -> String {
    let link = sh_in(ns, &["ip", "-o", "link", "show", "dev", dev]);
    link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap_or_default().to_string()
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.display().to_string();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// A test's namespaces, processes and directory; removed on drop.
struct Lab {
    prefix: String,
    dir: tempfile::TempDir,
    made_mount: bool,
    host: PathBuf,
    links: NetlinkLinks,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Self {
        require_root();
        let prefix = format!("bp{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::Builder::new().prefix("berth-plumb-").tempdir().unwrap();
        let made_mount = netns::prepare_dir(dir.path()).unwrap();
        let mut lab =
            Self { prefix, dir, made_mount, host: PathBuf::new(), links: NetlinkLinks::new(), children: vec![] };
        lab.host = lab.netns("host");
        lab.links = NetlinkLinks::in_netns(&lab.host);
        lab
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn netns(&self, name: &str) -> PathBuf {
        netns::create(self.dir(), &format!("{}-{name}", self.prefix)).unwrap()
    }

    fn bridge_name(&self) -> String {
        format!("{}br", self.prefix)
    }

    fn bridge(&self, mtu: Option<u32>) -> BridgeSpec {
        BridgeSpec { name: self.bridge_name(), gateway: GATEWAY.parse().unwrap(), subnet: SUBNET.parse().unwrap(), mtu }
    }

    fn attachment(&self, ns: &Path, container: &str, host_octet: u8) -> Attachment {
        Attachment {
            netns: ns.to_path_buf(),
            bridge: self.bridge_name(),
            host_ifname: host_ifname(&self.prefix, container, 0),
            container_ifname: "eth0".into(),
            address: format!("10.79.0.{host_octet}").parse().unwrap(),
            subnet: SUBNET.parse().unwrap(),
            gateway: Some(GATEWAY.parse().unwrap()),
            mtu: None,
            mac: None,
        }
    }

    /// Starts a one-connection TCP server in `ns` that greets with `name`.
    fn serve(&mut self, ns: &Path, name: &str, port: u16) {
        const SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.listen(1)
s.settimeout(10)
print("ready", flush=True)
c, peer = s.accept()
c.sendall(("%s %s\n" % (sys.argv[1], peer[0])).encode())
c.close()
"#;
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["--", "python3", "-c", SERVER, name, &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        self.children.push(child);
        assert_eq!(line.trim(), "ready", "server {name} did not start");
    }
}

/// Connects once from `ns` and returns what the server said.
fn connect(ns: &Path, addr: &str, port: u16) -> String {
    const CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print(c.recv(64).decode().strip())
"#;
    sh_in(ns, &["python3", "-c", CLIENT, addr, &port.to_string()]).trim().to_string()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespaces deletes every link in them.
        if let Ok(all) = netns::list(self.dir.path(), &self.prefix) {
            for ns in all {
                let _ = netns::delete(&ns);
            }
        }
        if self.made_mount {
            let _ = netns::release_dir(self.dir.path());
        }
    }
}

#[test]
fn namespaces_are_created_listed_and_deleted() {
    let lab = Lab::new();
    assert!(lab.made_mount, "a fresh directory becomes a mount point");
    assert!(!netns::prepare_dir(lab.dir()).unwrap(), "and only once");
    let t0 = Instant::now();
    let a = lab.netns("a");
    eprintln!("netns::create took {:?}", t0.elapsed());
    let b = lab.netns("b");
    assert!(mounted(&a) && mounted(&b));
    // A namespace of its own, with lo up.
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let inside = sh_in(&a, &["readlink", "/proc/self/ns/net"]);
    assert_ne!(inside.trim(), own.to_string_lossy());
    assert!(sh_in(&a, &["ip", "-o", "link", "show", "lo"]).contains(",UP"), "lo is up");
    assert!(pings(&a, "127.0.0.1"));
    assert_eq!(links_in(&a), ["lo"], "nothing else in a new namespace");

    let again = netns::create(lab.dir(), &format!("{}-a", lab.prefix));
    assert!(matches!(again, Err(NetnsError::Exists { .. })), "{again:?}");
    assert!(matches!(netns::create(lab.dir(), "../x"), Err(NetnsError::BadName(_))));

    // Crash recovery: a new daemon finds what the old one left, including a
    // plain file left between creating the file and mounting onto it.
    let plain = lab.dir().join(format!("{}-plain", lab.prefix));
    std::fs::write(&plain, b"").unwrap();
    let other = netns::create(lab.dir(), "someone-else").unwrap();
    let found = netns::list(lab.dir(), &lab.prefix).unwrap();
    assert_eq!(found, [a.clone(), b.clone(), lab.host.clone(), plain.clone()]);
    let err = netns::run_in(&plain, || ()).unwrap_err();
    assert!(matches!(err, NetnsError::Enter { .. }), "{err}");

    for ns in [&a, &plain] {
        netns::delete(ns).unwrap();
        netns::delete(ns).unwrap();
        assert!(!ns.exists() && !mounted(ns), "{} is gone", ns.display());
    }
    netns::delete(&other).unwrap();
    assert_eq!(netns::list(lab.dir(), &lab.prefix).unwrap(), [b, lab.host.clone()]);
}

/// A directory for user namespaces that is unmounted and removed even when
/// the test fails.
struct UsernsDir(tempfile::TempDir);

impl Drop for UsernsDir {
    fn drop(&mut self) {
        if let Ok(all) = std::fs::read_dir(self.0.path()) {
            for e in all.flatten() {
                let _ = netns::delete(&e.path());
            }
        }
        let _ = netns::release_dir(self.0.path());
    }
}

/// Enters the user namespace at `user`, then, from inside it, the network
/// namespace at `net`: the order runc 1.1 uses for `exec`.
fn enter_user_then_net(user: &Path, net: &Path) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--user={}", user.display()))
        .args(["--", "nsenter"])
        .arg(format!("--net={}", net.display()))
        .args(["--", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; ip -o link show lo"])
        .output()
        .expect("run nsenter")
}

#[test]
fn owned_namespaces_admit_a_process_from_their_user_namespace() {
    let lab = Lab::new();
    let users = UsernsDir(tempfile::Builder::new().prefix("berth-userns-").tempdir().unwrap());
    let name = format!("{}-owned", lab.prefix);
    let m = berth_core::api::IdMapping { host_uid: 1_000_000_000, host_gid: 1_000_065_536, size: 65536 };
    let ns = netns::create_owned(lab.dir(), users.0.path(), &name, m).unwrap();
    let user = users.0.path().join(&name);
    assert!(mounted(&ns) && mounted(&user));

    let out = enter_user_then_net(&user, &ns);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let maps: Vec<Vec<&str>> = text.lines().take(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(maps, [vec!["0", "1000000000", "65536"], vec!["0", "1000065536", "65536"]]);
    assert!(text.contains(",UP"), "lo is up: {text}");

    // What runc 1.1 hits with a namespace the host's user namespace owns.
    let plain = lab.netns("plain");
    let out = enter_user_then_net(&user, &plain);
    assert!(!out.status.success(), "a host-owned namespace refuses a process from a user namespace");

    let again = netns::create_owned(lab.dir(), users.0.path(), &name, m);
    assert!(matches!(again, Err(NetnsError::Exists { .. })), "{again:?}");
    // A name taken only in the user namespace directory leaves nothing.
    let taken = format!("{}-taken", lab.prefix);
    std::fs::write(users.0.path().join(&taken), b"").unwrap();
    let err = netns::create_owned(lab.dir(), users.0.path(), &taken, m).unwrap_err();
    assert!(matches!(err, NetnsError::Exists { .. }), "{err}");
    assert!(!lab.dir().join(&taken).exists(), "the network namespace file is removed again");

    use berth_net::Namespaces;
    let dirs = berth_net::NetnsDir::new(lab.dir(), users.0.path());
    assert_eq!(dirs.userns_path(&name), user);
    dirs.delete(&ns).unwrap();
    dirs.delete(&ns).unwrap();
    assert!(!ns.exists() && !user.exists() && !mounted(&user), "both namespaces are gone");
}

#[test]
fn namespaces_show_in_mount_namespaces_made_before_them() {
    // Shared propagation on the directory, as `ip netns add` sets it up: a
    // process whose mount namespace was copied earlier (a runtime, a
    // daemon under systemd with private mounts) still sees a namespace
    // created later, and its removal.
    let lab = Lab::new();
    let path = lab.dir().join(format!("{}-late", lab.prefix));
    const CHECK: &str = r#"read go; nsenter --net="$1" true && echo joined; read go; test -e "$1" || echo gone"#;
    let mut child = Command::new("timeout")
        .args(["10", "unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c", CHECK, "sh"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start unshare");
    // Give unshare time to copy the mount table before the namespace exists.
    std::thread::sleep(Duration::from_millis(200));
    let made = netns::create(lab.dir(), &format!("{}-late", lab.prefix)).unwrap();
    assert_eq!(made, path);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    use std::io::Write;
    writeln!(stdin, "go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "joined", "the other mount namespace sees the new netns");
    netns::delete(&path).unwrap();
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "gone");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn containers_on_a_bridge_reach_each_other_and_the_host() {
    let mut lab = Lab::new();
    lab.links.ensure_bridge(&lab.bridge(Some(1400))).unwrap();
    let (c1, c2) = (lab.netns("c1"), lab.netns("c2"));
    let mac: MacAddr = "02:42:0a:4f:00:02".parse().unwrap();
    let a1 = Attachment { mtu: Some(1400), mac: Some(mac), ..lab.attachment(&c1, "c1", 2) };
    let a2 = Attachment { mtu: Some(1400), ..lab.attachment(&c2, "c2", 3) };
    let t0 = Instant::now();
    let got = lab.links.attach(&a1).unwrap();
    eprintln!("attach (first) took {:?}", t0.elapsed());
    assert_eq!(got.mac, mac);
    let got2 = lab.links.attach(&a2).unwrap();
    assert_eq!(mac_of(&c2, "eth0"), got2.mac.to_string());

    // Addresses, default route, MTU, bridge port with hairpin mode.
    let eth0 = sh_in(&c1, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(eth0.contains("inet 10.79.0.2/24 brd 10.79.0.255"), "{eth0}");
    let route = sh_in(&c1, &["ip", "-4", "route", "show", "default"]);
    assert_eq!(route.trim(), "default via 10.79.0.1 dev eth0 proto static", "{route}");
    let link = sh_in(&c1, &["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1400") && link.contains(",UP") && link.contains(&mac.to_string()), "{link}");
    let port = sh_in(&lab.host, &["ip", "-d", "-o", "link", "show", "dev", &a1.host_ifname]);
    assert!(port.contains(&format!("master {}", lab.bridge_name())), "{port}");
    assert!(port.contains("hairpin on") && port.contains("mtu 1400") && port.contains(",UP"), "{port}");
    let br = sh_in(&lab.host, &["ip", "-o", "-4", "addr", "show", "dev", &lab.bridge_name()]);
    assert_eq!(br.lines().count(), 1, "{br}");
    assert!(br.contains("inet 10.79.0.1/24 brd 10.79.0.255"), "{br}");
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", lab.bridge_name());
    assert_eq!(sh_in(&lab.host, &["cat", &localnet]).trim(), "1");
    assert!(!Path::new(&localnet).exists(), "the sysctl was set in H, not on the real host");

    // Traffic: container to container, host to container, container to gateway.
    assert!(pings(&c1, "10.79.0.3"), "c1 -> c2");
    assert!(pings(&lab.host, "10.79.0.2"), "host -> c1 via the bridge");
    assert!(pings(&c2, GATEWAY), "c2 -> gateway");
    lab.serve(&c2, "c2", 8080);
    assert_eq!(connect(&c1, "10.79.0.3", 8080), "c2 10.79.0.2", "TCP c1 -> c2 keeps c1's address");

    // Timing (printed, not asserted): more containers on the same bridge.
    let mut times = Vec::new();
    for i in 0..10u8 {
        let ns = lab.netns(&format!("t{i}"));
        let a = lab.attachment(&ns, &format!("t{i}"), 10 + i);
        let t0 = Instant::now();
        lab.links.attach(&a).unwrap();
        times.push(t0.elapsed());
    }
    times.sort();
    eprintln!(
        "attach over {} containers: min {:?}, median {:?}, max {:?}",
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(pings(&c1, "10.79.0.19"), "c1 -> the last one");
}

#[test]
fn ensure_is_idempotent_and_converges() {
    let lab = Lab::new();
    let spec = lab.bridge(None);
    lab.links.ensure_bridge(&spec).unwrap();
    let mac = mac_of(&lab.host, &spec.name);
    lab.links.ensure_bridge(&spec).unwrap();
    let addrs = || sh_in(&lab.host, &["ip", "-o", "-4", "addr", "show", "dev", &spec.name]);
    assert_eq!(addrs().lines().count(), 1, "{}", addrs());

    // A changed network: the old address goes, the new one comes, the
    // bridge (and its MAC) stays.
    let moved = BridgeSpec {
        gateway: "10.80.0.1".parse().unwrap(),
        subnet: "10.80.0.0/16".parse().unwrap(),
        mtu: Some(1450),
        ..spec.clone()
    };
    lab.links.ensure_bridge(&moved).unwrap();
    let now = addrs();
    assert!(now.contains("inet 10.80.0.1/16") && now.lines().count() == 1, "{now}");
    let link = sh_in(&lab.host, &["ip", "-o", "link", "show", "dev", &spec.name]);
    assert!(link.contains("mtu 1450") && mac_of(&lab.host, &spec.name) == mac, "{link}");

    // The VIP route on an empty bridge with no address, twice.
    let vip_bridge = format!("{}vip", lab.prefix);
    let range: Ipv4Cidr = "10.96.0.0/16".parse().unwrap();
    lab.links.ensure_vip_route(&vip_bridge, range).unwrap();
    lab.links.ensure_vip_route(&vip_bridge, range).unwrap();
    let routes = sh_in(&lab.host, &["ip", "-4", "route", "show", "10.96.0.0/16"]);
    // "linkdown": a bridge without ports has no carrier; the route is
    // used all the same (see the traffic tests).
    let want = format!("10.96.0.0/16 dev {vip_bridge} proto static scope link");
    assert_eq!(routes.lines().count(), 1, "{routes}");
    assert!(routes.starts_with(&want), "{routes}");
    assert!(sh_in(&lab.host, &["ip", "-o", "-4", "addr", "show", "dev", &vip_bridge]).is_empty());
    let vip_link = sh_in(&lab.host, &["ip", "-o", "link", "show", "dev", &vip_bridge]);
    assert!(vip_link.contains(",UP"), "{vip_link}");
    let t0 = Instant::now();
    let ping = run_in(&lab.host, &["busybox", "ping", "-c1", "-W1", "10.96.0.10"]);
    assert!(!ping.status.success() && t0.elapsed() < Duration::from_secs(3));
    assert!(!String::from_utf8_lossy(&ping.stderr).contains("unreachable"), "the VIP range has a route");

    // Re-attaching the same container replaces its leftover pair.
    let c = lab.netns("c");
    let a = lab.attachment(&c, "c", 2);
    lab.links.ensure_bridge(&spec).unwrap();
    lab.links.attach(&a).unwrap();
    lab.links.attach(&a).unwrap();
    assert_eq!(links_in(&c), ["lo", "eth0"]);
    assert!(pings(&c, GATEWAY));

    // Deletes refuse other kinds of links, and repeat fine.
    let wrong = lab.links.delete_bridge(&a.host_ifname).unwrap_err();
    assert!(matches!(wrong, LinkError::WrongKind { .. }), "{wrong}");
    assert!(wrong.to_string().contains("is a veth, not a bridge"), "{wrong}");
    let wrong = lab.links.detach(&spec.name).unwrap_err();
    assert!(matches!(wrong, LinkError::WrongKind { .. }), "{wrong}");
    for name in [&spec.name, &vip_bridge] {
        lab.links.delete_bridge(name).unwrap();
        lab.links.delete_bridge(name).unwrap();
    }
    assert!(sh_in(&lab.host, &["ip", "-4", "route", "show", "10.96.0.0/16"]).is_empty());
    assert_eq!(links_in(&lab.host), ["lo", a.host_ifname.as_str()], "the veth stays, off the bridge");

    lab.links.set_sysctl("net.ipv4.ip_forward", "1").unwrap();
    assert_eq!(sh_in(&lab.host, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(), "1");
}

#[test]
fn detach_removes_the_pair() {
    let lab = Lab::new();
    lab.links.ensure_bridge(&lab.bridge(None)).unwrap();
    let c = lab.netns("c");
    let a = lab.attachment(&c, "c", 2);
    lab.links.attach(&a).unwrap();
    assert!(links_in(&lab.host).contains(&a.host_ifname));
    let t0 = Instant::now();
    lab.links.detach(&a.host_ifname).unwrap();
    eprintln!("detach took {:?}", t0.elapsed());
    lab.links.detach(&a.host_ifname).unwrap();
    assert!(!links_in(&lab.host).contains(&a.host_ifname));
    assert_eq!(links_in(&c), ["lo"], "the container end went with it");
    // The namespace can be attached again afterwards. The new port starts
    // forwarding when the kernel's link watcher sees its carrier, which may
    // take up to a second: a first ping can be lost.
    lab.links.attach(&a).unwrap();
    assert!((0..3).any(|_| pings(&c, GATEWAY)), "the re-attached namespace reaches its gateway");
}

#[test]
fn a_failed_attach_leaves_nothing() {
    let lab = Lab::new();
    let c = lab.netns("c");
    let first = lab.attachment(&c, "c", 2);

    // No bridge yet.
    let err = lab.links.attach(&first).unwrap_err();
    assert!(matches!(err, LinkError::NoBridge { .. }), "{err}");
    assert_eq!(links_in(&lab.host), ["lo"]);
    assert_eq!(links_in(&c), ["lo"]);

    lab.links.ensure_bridge(&lab.bridge(None)).unwrap();
    lab.links.attach(&first).unwrap();
    let before = (links_in(&lab.host), links_in(&c));

    // A second network under a name the container already has.
    let clash = Attachment {
        host_ifname: host_ifname(&lab.prefix, "c", 1),
        address: "10.79.0.9".parse().unwrap(),
        gateway: None,
        ..first.clone()
    };
    let err = lab.links.attach(&clash).unwrap_err();
    assert!(err.to_string().contains("eth0 already exists in"), "{err}");

    // A step after the pair exists fails: a second default route.
    let late = Attachment { container_ifname: "eth1".into(), ..clash.clone() };
    let late = Attachment { gateway: Some(GATEWAY.parse().unwrap()), address: "10.79.0.10".parse().unwrap(), ..late };
    let err = lab.links.attach(&late).unwrap_err();
    assert!(err.to_string().contains("default route already"), "{err}");
    assert_eq!((links_in(&lab.host), links_in(&c)), before, "the half-made pair was removed");

    // A namespace that does not exist.
    let gone = Attachment { netns: lab.dir().join("missing"), ..clash.clone() };
    let err = lab.links.attach(&gone).unwrap_err();
    assert!(matches!(err, LinkError::Netns(NetnsError::Open { .. })), "{err}");
    assert_eq!((links_in(&lab.host), links_in(&c)), before);

    // The right second network works, without a second default route.
    let second = Attachment { container_ifname: "eth1".into(), ..clash };
    lab.links.attach(&second).unwrap();
    assert_eq!(links_in(&c), ["lo", "eth0", "eth1"]);
    let routes = sh_in(&c, &["ip", "-4", "route", "show", "default"]);
    assert_eq!(routes.lines().count(), 1, "{routes}");
}
