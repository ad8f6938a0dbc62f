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

use berthd::Berthd;

/// The memory cgroup limit of a hostile test's daemon.
pub const DAEMON_MEMORY: u64 = 512 << 20;

/// A daemon for hostile tests: confined, on its embedded defaults plus
/// `config`.
pub fn daemon(config: &str) -> Berthd {
    support::require_root();
    Berthd::start_confined(config, DAEMON_MEMORY)
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
