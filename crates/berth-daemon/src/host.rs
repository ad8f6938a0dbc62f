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
    /// Starts each container's shim.
    pub shims: Arc<dyn ShimLauncher>,
    /// `/proc`: whether a recorded shim is still the same process.
    pub procs: Arc<dyn Processes>,
    /// nftables, conntrack, links and network namespaces.
    pub kernel: Kernel,
    /// Overlay mounts of container root filesystems (given to the image
    /// store) and pods' tmpfs volumes.
    pub mounts: Arc<dyn berth_image::Mounts>,
    /// The cgroup filesystem (its root is a path, so tests use a directory).
    pub cgroups: Cgroups,
    /// What specs need to know about this machine.
    pub info: berth_runtime::HostInfo,
    /// Where the networks' DNS servers listen.
    pub dns: crate::networks::DnsBind,
    /// Probes that reach pods over the network.
    pub probes: Arc<dyn crate::probes::NetProbes>,
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
    /// `exe` is the daemon's own binary (the shim is found beside it).
    pub fn real(exe: &Path, runtime: &Path, runtime_root: &Path, netns_dir: &Path, userns_dir: &Path) -> Self {
        Self {
            clock: Arc::new(SystemClock),
            runtime: Arc::new(berth_shim::runtime::Runc::new(runtime, runtime_root)),
            shims: Arc::new(ShimProcesses::new(exe.to_path_buf())),
            procs: Arc::new(berth_shim::identity::ProcFs::host()),
            kernel: Kernel {
                nft: Arc::new(berth_net::NftCli::new()),
                conntrack: Arc::new(berth_net::ConntrackCli::new()),
                links: Arc::new(berth_net::NetlinkLinks::new()),
                namespaces: Arc::new(berth_net::NetnsDir::new(netns_dir, userns_dir)),
            },
            mounts: Arc::new(berth_image::KernelMounts),
            cgroups: Cgroups::host(),
            info: host_info(),
            dns: crate::networks::DnsBind::Gateway,
            probes: Arc::new(crate::probes::SocketProbes),
        }
    }

    /// A host of fakes for tests: cgroups under `dir`, a clock at
    /// 2026-01-01, and the fakes themselves to look at.
    pub fn fake(dir: &Path) -> (Self, Fakes) {
        let clock = Arc::new(FakeClock::at_epoch());
        let procs = Arc::new(FakeProcesses::new("fake-boot"));
        let shims = Arc::new(FakeShims::new(procs.clone(), clock.clone()));
        let fakes = Fakes {
            clock,
            runtime: Arc::new(FakeRuntime { shims: Some(shims.clone()), ..Default::default() }),
            shims,
            procs,
            mounts: Arc::new(berth_image::FakeMounts::default()),
            nft: Arc::new(berth_net::FakeNftables::default()),
            conntrack: Arc::new(berth_net::FakeConntrack::default()),
            links: Arc::new(berth_net::FakeNetLinks::default()),
            namespaces: Arc::new(berth_net::FakeNamespaces::new(dir.join("netns"))),
            probes: Arc::new(crate::probes::FakeProbes::default()),
        };
        let host = Self {
            clock: fakes.clock.clone(),
            runtime: fakes.runtime.clone(),
            shims: fakes.shims.clone(),
            procs: fakes.procs.clone(),
            kernel: Kernel {
                nft: fakes.nft.clone(),
                conntrack: fakes.conntrack.clone(),
                links: fakes.links.clone(),
                namespaces: fakes.namespaces.clone(),
            },
            mounts: fakes.mounts.clone(),
            cgroups: Cgroups { root: dir.join("cgroup"), v2: true },
            info: berth_runtime::HostInfo {
                arch: "x86_64".into(),
                kernel_release: Some("6.1.0".into()),
                max_nofile: Some(1 << 20),
                capabilities: None,
            },
            dns: crate::networks::DnsBind::Loopback,
            probes: fakes.probes.clone(),
        };
        (host, fakes)
    }
}

/// The fakes behind a [`Host::fake`], for tests to drive and inspect.
pub struct Fakes {
    pub clock: Arc<FakeClock>,
    pub runtime: Arc<FakeRuntime>,
    pub shims: Arc<FakeShims>,
    pub mounts: Arc<berth_image::FakeMounts>,
    pub procs: Arc<FakeProcesses>,
    pub nft: Arc<berth_net::FakeNftables>,
    pub conntrack: Arc<berth_net::FakeConntrack>,
    pub links: Arc<berth_net::FakeNetLinks>,
    pub namespaces: Arc<berth_net::FakeNamespaces>,
    pub probes: Arc<crate::probes::FakeProbes>,
}

/// An OCI runtime that records what it was asked; a signal sent to a
/// container whose fake shim runs ends it (exit code 128 + signal). An
/// exec runs its command on the host, unconfined, as the test's own user
/// (so tests exec only harmless commands such as `echo`); `ps` answers
/// one process per container.
#[derive(Default)]
pub struct FakeRuntime {
    calls: std::sync::Mutex<Vec<String>>,
    shims: Option<Arc<FakeShims>>,
}

impl FakeRuntime {
    /// `kill ID SIGNAL`, `delete ID`, `state ID`, `exec ID UID:GID ARGS`
    /// and `ps ID ARGS`, in order.
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
        if let Some(shims) = &self.shims {
            shims.exit(id, 128 + signal, Some(signal));
        }
        Ok(())
    }

    fn delete(&self, id: &str, _force: bool) -> Result<(), berth_shim::runtime::RuntimeError> {
        self.record(format!("delete {id}"));
        Ok(())
    }

    fn exec_command(&self, id: &str, p: &berth_shim::runtime::ExecProcess) -> std::process::Command {
        self.record(format!("exec {id} {}:{} {}", p.uid, p.gid, p.args.join(" ")));
        let mut cmd = std::process::Command::new(&p.args[0]);
        cmd.args(&p.args[1..]).env_clear();
        for e in &p.env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
        if let Some(cwd) = &p.cwd {
            cmd.current_dir(cwd);
        }
        cmd
    }

    fn ps(&self, id: &str, args: &[&str]) -> Result<String, berth_shim::runtime::RuntimeError> {
        self.record(format!("ps {id} {}", args.join(" ")).trim_end().to_string());
        let pid = self.shims.as_ref().and_then(|s| s.init_pid(id)).unwrap_or(1);
        Ok(format!("UID PID PPID C STIME TTY TIME CMD\nroot {pid} 0 0 00:00 ? 00:00:00 app\n"))
    }

    fn state(&self, id: &str) -> Result<Option<berth_shim::runtime::RuntimeState>, berth_shim::runtime::RuntimeError> {
        self.record(format!("state {id}"));
        let pid = self.shims.as_ref().and_then(|s| s.init_pid(id));
        Ok(pid.map(|pid| berth_shim::runtime::RuntimeState { status: "running".into(), pid }))
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

/// A shim just started: its PID (while it is unreaped the PID cannot be
/// reused, so its identity can be read), the lines it writes to stdout
/// (`started`, then `exited`), and a future that ends once it is reaped.
pub struct LaunchedShim {
    pub pid: Option<i32>,
    pub notices: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub reaped: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Starts per-container shims.
pub trait ShimLauncher: Send + Sync {
    fn launch(&self, args: &berth_shim::ShimArgs) -> std::io::Result<LaunchedShim>;
}

/// The real shims: the small `berth-shim` program next to the daemon's
/// binary when it is installed, else the binary's own `shim` subcommand.
pub struct ShimProcesses {
    exe: std::path::PathBuf,
}

impl ShimProcesses {
    pub fn new(exe: std::path::PathBuf) -> Self {
        Self { exe }
    }
}

impl ShimLauncher for ShimProcesses {
    fn launch(&self, args: &berth_shim::ShimArgs) -> std::io::Result<LaunchedShim> {
        let small = self.exe.with_file_name("berth-shim");
        let mut cmd = if small.is_file() {
            tokio::process::Command::new(small)
        } else {
            let mut c = tokio::process::Command::new(&self.exe);
            c.arg("shim");
            c
        };
        cmd.args(args.to_args());
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        let mut child = cmd.spawn()?;
        let pid = child.id().map(|p| p as i32);
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, notices) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        let reaped = Box::pin(async move {
            let _ = child.wait().await;
        });
        Ok(LaunchedShim { pid, notices, reaped })
    }
}

/// Shims that run nothing: `launch` records the container as started the
/// way a shim does (state directory, PID, a process in [`FakeProcesses`])
/// and says `started`; [`FakeShims::exit`] ends it with an exit record, as
/// a real shim does when its container exits.
pub struct FakeShims {
    procs: Arc<FakeProcesses>,
    clock: Arc<FakeClock>,
    next_pid: std::sync::atomic::AtomicI32,
    running: std::sync::Mutex<std::collections::HashMap<String, FakeShim>>,
    launched: std::sync::Mutex<Vec<berth_shim::ShimArgs>>,
}

struct FakeShim {
    pid: i32,
    state_dir: std::path::PathBuf,
    notices: tokio::sync::mpsc::UnboundedSender<String>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeShims {
    pub fn new(procs: Arc<FakeProcesses>, clock: Arc<FakeClock>) -> Self {
        Self {
            procs,
            clock,
            next_pid: std::sync::atomic::AtomicI32::new(4000),
            running: Default::default(),
            launched: Default::default(),
        }
    }

    /// The arguments of every shim launched, in order.
    pub fn launched(&self) -> Vec<berth_shim::ShimArgs> {
        self.launched.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The PID of container `id`'s process, while its shim runs.
    pub fn init_pid(&self, id: &str) -> Option<i32> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|s| s.pid + 1)
    }

    /// The containers whose shims run.
    pub fn running(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The container `id` exits with `code` (and `signal`): the exit record
    /// is written, `exited` said, the shim ends. False if none runs.
    pub fn exit(&self, id: &str, code: i32, signal: Option<i32>) -> bool {
        let Some(mut shim) = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(id) else {
            return false;
        };
        let record = berth_shim::protocol::ExitRecord {
            code,
            signal,
            finished_at: self.clock.stamp(),
            oom_killed: false,
            error: None,
            shim_pid: Some(shim.pid),
        };
        let _ = berth_shim::protocol::StateDir(shim.state_dir.clone()).write_exit(&record);
        let _ = shim.notices.send("exited".into());
        self.procs.exit(shim.pid);
        if let Some(done) = shim.done.take() {
            let _ = done.send(());
        }
        true
    }
}

impl ShimLauncher for FakeShims {
    fn launch(&self, args: &berth_shim::ShimArgs) -> std::io::Result<LaunchedShim> {
        self.launched.lock().unwrap_or_else(|p| p.into_inner()).push(args.clone());
        let pid = self.next_pid.fetch_add(2, std::sync::atomic::Ordering::SeqCst);
        let sd = berth_shim::protocol::StateDir(args.state_dir.clone());
        std::fs::create_dir_all(&sd.0)?;
        std::fs::write(sd.shim_pid(), pid.to_string())?;
        std::fs::write(sd.init_pid(), (pid + 1).to_string())?;
        std::fs::write(sd.started(), b"")?;
        self.procs.spawn(pid, pid as u64, &["berth-shim", "--id", &args.id]);
        let (tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let _ = tx.send("started".to_string());
        let (done, ended) = tokio::sync::oneshot::channel();
        let shim = FakeShim { pid, state_dir: args.state_dir.clone(), notices: tx, done: Some(done) };
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(args.id.clone(), shim);
        let reaped = Box::pin(async move {
            let _ = ended.await;
        });
        Ok(LaunchedShim { pid: Some(pid), notices, reaped })
    }
}
