//! System tests of networking: bridge networks, addresses, published ports,
//! DNS and service VIPs, with the real binary, daemon, runc, netlink and
//! nftables. Each daemon has its own name prefix and subnets (see
//! `berthd`); traffic goes only to loopback and to the test's containers.

mod berthd;
mod support;

use std::time::{Duration, Instant};

use berthd::Berthd;
use support::{images, require_root};

fn daemon() -> Berthd {
    require_root();
    let d =
        Berthd::start_with_config(&format!("[containers]\ncgroup_parent = \"berth-test-{}\"\n", std::process::id()));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

/// A TCP port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A web server answering `/` with `text`.
fn web(d: &Berthd, name: &str, text: &str, extra: &[&str]) {
    let script = format!("mkdir -p /w && echo {text} > /w/index.html && exec httpd -f -p 8080 -h /w");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(extra);
    args.extend(["busybox:test", "sh", "-c", &script]);
    d.ok(&args);
}

/// HTTP GET from the host with a short timeout; None when it fails.
fn get(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl").args(["-s", "-f", "-m", "3", url]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn ip_of(d: &Berthd, name: &str) -> String {
    let v = d.json(&["inspect", name]);
    v["network"]["networks"][0]["ip"].as_str().unwrap_or_default().to_string()
}

fn links_with(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip").args(["-o", "link", "show"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn netns_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|r| {
            r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.starts_with(prefix)).collect()
        })
        .unwrap_or_default()
}

fn table_exists(prefix: &str) -> bool {
    std::process::Command::new("nft").args(["list", "table", "ip", prefix]).output().unwrap().status.success()
}

#[test]
fn published_ports_and_names_work_and_go_with_the_container() {
    let d = daemon();
    let port = free_port();
    web(&d, "web", "hello-web", &["-p", &format!("{port}:8080")]);
    let ip = ip_of(&d, "web");
    assert!(!ip.is_empty(), "{}", d.ok(&["inspect", "web"]));
    let url = format!("http://127.0.0.1:{port}/");
    wait_for("the published port on 127.0.0.1", || get(&url).as_deref() == Some("hello-web"));
    // The container's own address, from the host.
    assert_eq!(get(&format!("http://{ip}:8080/")).as_deref(), Some("hello-web"));

    // Another container finds it by name through the network's DNS, and
    // its resolv.conf points there.
    // (busybox-static's wget crashes without NSS libraries; nc does not.)
    let fetch = "cat /etc/resolv.conf; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 8080";
    let out = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", fetch]);
    assert!(out.contains("nameserver"), "{out}");
    assert!(out.contains("hello-web"), "{out}");

    // A rename shows in DNS at once.
    d.ok(&["rename", "web", "www"]);
    let fetch = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc www 8080";
    let out = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", fetch]);
    assert!(out.contains("hello-web"), "{out}");
    let out = d.run(&["run", "--rm", "busybox:test", "nslookup", "web"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    d.ok(&["rename", "www", "web"]);

    // The same port twice is refused, and nothing of the second is left.
    d.ok(&["create", "--name", "clash", "-p", &format!("{port}:8080"), "busybox:test", "sleep", "30"]);
    let (_, err) = d.fails(&["start", "clash"]);
    assert!(err.contains(&port.to_string()), "{err}");
    assert!(netns_with(&format!("{}-", d.prefix)).len() == 1, "{:?}", netns_with(&d.prefix));
    d.ok(&["rm", "clash"]);

    // Stopped: the port, the name and the address go at once.
    d.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(get(&url), None);
    let out = d.run(&["run", "--rm", "busybox:test", "nslookup", "web"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let net = d.json(&["network", "inspect", "berth"]);
    assert_eq!(net["containers"].as_array().map(Vec::len), Some(0), "{net}");
    d.ok(&["rm", "web"]);
}

#[test]
fn a_port_in_use_on_the_host_is_refused() {
    let d = daemon();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = d.run(&["run", "--rm", "-p", &format!("{port}:80"), "busybox:test", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    let (_, err) = d.fails(&["run", "--rm", "-p", "80:99999", "busybox:test", "true"]);
    assert!(err.contains("99999"), "{err}");
}

#[test]
fn networks_have_their_own_subnets_and_addresses_are_never_handed_out_twice() {
    let mut d = daemon();
    d.ok(&["network", "create", "n1"]);
    let n1 = d.json(&["network", "inspect", "n1"]);
    let subnet = n1["subnet"].as_str().unwrap().to_string();
    let (_, err) = d.fails(&["network", "create", "n2", "--subnet", &subnet]);
    assert!(err.contains("overlaps"), "{err}");
    let (_, err) = d.fails(&["network", "create", "n3", "--subnet", "10.1.2.3/33"]);
    assert!(err.contains("10.1.2.3/33"), "{err}");
    let (_, err) = d.fails(&["network", "create", "n1"]);
    assert!(err.contains("already exists"), "{err}");
    let (_, err) = d.fails(&["run", "--rm", "--network", "nope", "busybox:test", "true"]);
    assert!(err.contains("nope"), "{err}");

    web(&d, "a", "from-a", &["--network", "n1"]);
    let a = ip_of(&d, "a");
    let prefix = subnet.rsplit_once('.').unwrap().0.to_string();
    assert!(a.starts_with(&prefix), "{a} not in {subnet}");
    // Addresses survive a daemon crash: the next container gets another.
    d.crash_and_restart();
    d.ok(&["run", "-d", "--name", "b", "--network", "n1", "busybox:test", "sleep", "60"]);
    let b = ip_of(&d, "b");
    assert_ne!(a, b);
    // Containers on one network reach each other by name.
    let out = d.ok(&["exec", "b", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc a 8080"]);
    assert!(out.contains("from-a"), "{out}");

    // A running container joins and leaves another network.
    d.ok(&["network", "create", "n2"]);
    d.ok(&["network", "connect", "n2", "a"]);
    let v = d.json(&["inspect", "a"]);
    assert_eq!(v["network"]["networks"].as_array().map(Vec::len), Some(2), "{v}");
    let out = d.ok(&["exec", "a", "ls", "/sys/class/net"]);
    assert!(out.contains("eth1"), "{out}");
    d.ok(&["network", "disconnect", "n2", "a"]);
    let out = d.ok(&["exec", "a", "ls", "/sys/class/net"]);
    assert!(!out.contains("eth1"), "{out}");
    d.ok(&["network", "rm", "n2"]);

    let (_, err) = d.fails(&["network", "rm", "n1"]);
    assert!(err.contains("used by"), "{err}");
    d.ok(&["rm", "-f", "a", "b"]);
    d.ok(&["network", "rm", "n1"]);
    let (_, err) = d.fails(&["network", "inspect", "n1"]);
    assert!(err.contains("not found"), "{err}");

    // --network none: only loopback.
    let out = d.ok(&["run", "--rm", "--network", "none", "busybox:test", "ls", "/sys/class/net"]);
    assert!(out.contains("lo") && !out.contains("eth0"), "{out}");
}

#[test]
fn vips_spread_new_connections_by_weight_and_refuse_without_backends() {
    let d = daemon();
    web(&d, "blue", "blue", &[]);
    web(&d, "green", "green", &[]);
    let (blue, green) = (ip_of(&d, "blue"), ip_of(&d, "green"));
    let created = d.ok(&["vip", "create", "shop", "--port", "80"]);
    let vip = created.split_whitespace().nth(1).unwrap().rsplit_once(':').unwrap().0.to_string();
    let url = format!("http://{vip}:80/");

    // No backend: refused at once, not left hanging.
    let t = Instant::now();
    assert_eq!(get(&url), None);
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());

    d.ok(&["vip", "set", "shop", &format!("{blue}:8080=100")]);
    wait_for("blue behind the VIP", || get(&url).as_deref() == Some("blue"));
    d.ok(&["vip", "set", "shop", &format!("{blue}:8080=0"), &format!("{green}:8080=100")]);
    for _ in 0..10 {
        assert_eq!(get(&url).as_deref(), Some("green"));
    }
    d.ok(&["vip", "set", "shop", &format!("{blue}:8080=50"), &format!("{green}:8080=50")]);
    let answers: Vec<String> = (0..40).filter_map(|_| get(&url)).collect();
    assert_eq!(answers.len(), 40);
    assert!(answers.iter().any(|a| a == "blue") && answers.iter().any(|a| a == "green"), "{answers:?}");

    let (_, err) = d.fails(&["vip", "set", "shop", &format!("{blue}:8080=50"), &format!("{green}:8080=40")]);
    assert!(err.contains("100"), "{err}");
    let shown = d.json(&["vip", "show", "shop"]);
    assert_eq!(shown["backends"].as_array().map(Vec::len), Some(2), "{shown}");
    d.ok(&["vip", "rm", "shop"]);
    d.ok(&["rm", "-f", "blue", "green"]);
}

#[test]
fn everything_goes_when_the_daemon_stops_with_nothing_running() {
    let mut d = daemon();
    d.ok(&["run", "--rm", "busybox:test", "true"]);
    d.ok(&["run", "-d", "--name", "x", "busybox:test", "sleep", "30"]);
    assert!(table_exists(&d.prefix));
    assert!(!links_with(&d.prefix).is_empty());
    d.ok(&["rm", "-f", "x"]);
    assert!(netns_with(&format!("{}-", d.prefix)).is_empty(), "{:?}", netns_with(&d.prefix));
    // Only the bridges remain while the daemon runs; a flush is repaired.
    let _ = std::process::Command::new("nft").args(["flush", "table", "ip", &d.prefix]).status();
    wait_for("the table to be repaired", || {
        let out = std::process::Command::new("nft").args(["list", "table", "ip", &d.prefix]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("services")
    });
    d.stop();
    assert!(!table_exists(&d.prefix));
    assert!(links_with(&d.prefix).is_empty(), "{:?}", links_with(&d.prefix));
}
