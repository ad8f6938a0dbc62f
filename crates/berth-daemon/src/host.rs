//! The composition root: every effect the daemon's services have on the
//! host, built once by [`Daemon::open`](crate::Daemon::open) from the real
//! implementations and handed to containers and networks (events and the
//! declared services take its clock). Tests build a [`Host::fake`] instead: recording fakes and a
//! clock that moves only when told, so the services' logic runs without
//! root and without sleeping.

use std::path::Path;
use std::sync::Arc;

use berth_core::clock::{Clock, FakeClock};
use berth_shim::identity::{FakeProcesses, Processes};
use berth_shim::runtime::OciRuntime;

use crate::containers::stats::Cgroups;
use crate::networks::Kernel;

/// The daemon's effects.
#[derive(Clone)]
pub struct Host {
    /// Where "now" comes from (records, events, back-off deadlines).
    pub clock: Arc<dyn Clock>,
    /// The OCI runtime's kill, delete and state.
    pub runtime: Arc<dyn OciRuntime>,
    /// `/proc`: whether a recorded shim is still the same process.
    pub procs: Arc<dyn Processes>,
    /// nftables, conntrack, links and network namespaces.
    pub kernel: Kernel,
    /// The cgroup filesystem (its root is a path, so tests use a directory).
    pub cgroups: Cgroups,
    /// What specs need to know about this machine.
    pub info: berth_runtime::HostInfo,
    /// Where the networks' DNS servers listen.
    pub dns: crate::networks::DnsBind,
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

impl Host {
    /// The real host: runc at `runtime` keeping its state under
    /// `runtime_root`, the kernel's nftables and netlink, network
    /// namespaces in `netns_dir` (their user namespaces in `userns_dir`).
    pub fn real(runtime: &Path, runtime_root: &Path, netns_dir: &Path, userns_dir: &Path) -> Self {
        Self {
            clock: Arc::new(SystemClock),
            runtime: Arc::new(berth_shim::runtime::Runc::new(runtime, runtime_root)),
            procs: Arc::new(berth_shim::identity::ProcFs::host()),
            kernel: Kernel {
                nft: Arc::new(berth_net::NftCli::new()),
                conntrack: Arc::new(berth_net::ConntrackCli::new()),
                links: Arc::new(berth_net::NetlinkLinks::new()),
                namespaces: Arc::new(berth_net::NetnsDir::new(netns_dir, userns_dir)),
            },
            cgroups: Cgroups::host(),
            info: host_info(),
            dns: crate::networks::DnsBind::Gateway,
        }
    }

    /// A host of fakes for tests: cgroups under `dir`, a clock at
    /// 2026-01-01, and the fakes themselves to look at.
    pub fn fake(dir: &Path) -> (Self, Fakes) {
        let fakes = Fakes {
            clock: Arc::new(FakeClock::at_epoch()),
            runtime: Arc::new(FakeRuntime::default()),
            procs: Arc::new(FakeProcesses::new("fake-boot")),
            nft: Arc::new(berth_net::FakeNftables::default()),
            conntrack: Arc::new(berth_net::FakeConntrack::default()),
            links: Arc::new(berth_net::FakeNetLinks::default()),
            namespaces: Arc::new(berth_net::FakeNamespaces::new(dir.join("netns"))),
        };
        let host = Self {
            clock: fakes.clock.clone(),
            runtime: fakes.runtime.clone(),
            procs: fakes.procs.clone(),
            kernel: Kernel {
                nft: fakes.nft.clone(),
                conntrack: fakes.conntrack.clone(),
                links: fakes.links.clone(),
                namespaces: fakes.namespaces.clone(),
            },
            cgroups: Cgroups { root: dir.join("cgroup"), v2: true },
            info: berth_runtime::HostInfo {
                arch: "x86_64".into(),
                kernel_release: Some("6.1.0".into()),
                max_nofile: Some(1 << 20),
                capabilities: None,
            },
            dns: crate::networks::DnsBind::Loopback,
        };
        (host, fakes)
    }
}

/// The fakes behind a [`Host::fake`], for tests to drive and inspect.
pub struct Fakes {
    pub clock: Arc<FakeClock>,
    pub runtime: Arc<FakeRuntime>,
    pub procs: Arc<FakeProcesses>,
    pub nft: Arc<berth_net::FakeNftables>,
    pub conntrack: Arc<berth_net::FakeConntrack>,
    pub links: Arc<berth_net::FakeNetLinks>,
    pub namespaces: Arc<berth_net::FakeNamespaces>,
}

/// An OCI runtime that knows no container and records what it was asked.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    calls: std::sync::Mutex<Vec<String>>,
}

impl FakeRuntime {
    /// `kill ID SIGNAL`, `delete ID` and `state ID`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
    }
}

impl OciRuntime for FakeRuntime {
    fn kill(&self, id: &str, signal: i32, _all: bool) -> Result<(), berth_shim::runtime::RuntimeError> {
        self.record(format!("kill {id} {signal}"));
        Ok(())
    }

    fn delete(&self, id: &str, _force: bool) -> Result<(), berth_shim::runtime::RuntimeError> {
        self.record(format!("delete {id}"));
        Ok(())
    }

    fn state(&self, id: &str) -> Result<Option<berth_shim::runtime::RuntimeState>, berth_shim::runtime::RuntimeError> {
        self.record(format!("state {id}"));
        Ok(None)
    }
}

/// What the spec needs to know about this host.
fn host_info() -> berth_runtime::HostInfo {
    let cap_bnd = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("CapBnd:").and_then(|v| u64::from_str_radix(v.trim(), 16).ok()))
    });
    berth_runtime::HostInfo {
        arch: std::env::consts::ARCH.to_string(),
        kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        max_nofile: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .ok()
            .map(|(_, hard)| hard),
        capabilities: cap_bnd.map(berth_runtime::caps_from_mask),
    }
}
