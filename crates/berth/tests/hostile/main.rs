//! Hostile inputs against the real binary and daemon: images, layers,
//! manifests, registries and containers built to escape to the host, read
//! its files or stop the daemon. Every attack must fail with a clear error
//! while the daemon, confined to a 512 MiB memory cgroup, keeps serving.
//!
//! One module per kind of attacker; each test starts its own daemon.

#[path = "../berthd/mod.rs"]
mod berthd;
#[path = "../support/mod.rs"]
mod support;

mod image;
mod lifecycle;
mod manifest;
mod network;
mod paths;
mod secrets;
mod userns;

use std::time::{Duration, Instant};

use berthd::Berthd;

/// The memory cgroup limit of a hostile test's daemon.
pub const DAEMON_MEMORY: u64 = 512 << 20;

/// A daemon for hostile tests: confined, on its embedded defaults plus
/// `config`.
pub fn daemon(config: &str) -> Berthd {
    support::require_root();
    Berthd::start_confined(config, DAEMON_MEMORY)
}

/// The tag the busybox test image is imported under.
pub const BUSYBOX: &str = "busybox:test";

/// Imports the busybox test image as [`BUSYBOX`].
pub fn import_busybox(d: &Berthd) {
    d.ok(&["image", "import", &support::images().join("single").display().to_string(), "--tag", BUSYBOX]);
}

/// Writes `text` to `name` in the daemon's directory and applies it;
/// returns what `apply` printed.
pub fn apply(d: &Berthd, name: &str, text: &str) -> String {
    let path = d.dir().join(name);
    std::fs::write(&path, text).unwrap();
    d.ok(&["apply", "-f", &path.display().to_string()])
}

/// Polls `f` every 200 ms until it gives a value, failing after `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pod whose name starts with `prefix` (a Deployment's pods do).
pub fn pod_named(d: &Berthd, prefix: &str) -> Option<serde_json::Value> {
    let pods = d.json(&["get", "pods"]);
    pods["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .cloned()
}

/// Asserts the daemon survived and still answers.
pub fn assert_serving(d: &mut Berthd) {
    assert!(d.alive(), "the daemon died:\n{}", d.log());
    d.ok(&["ps", "-a"]);
    d.ok(&["images"]);
}

#[test]
fn a_confined_daemon_serves() {
    let mut d = daemon("");
    assert_serving(&mut d);
    assert!(d.peak_rss() < DAEMON_MEMORY, "peak {} bytes", d.peak_rss());
}
