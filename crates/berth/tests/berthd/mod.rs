//! A berth daemon for system tests: its own state root, run root, socket
//! and config in a temporary directory; stopped (by PID) and cleaned up
//! when dropped, also when the test panics.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub struct Berthd {
    /// The names of its bridges, veths, namespaces and nftables table
    /// start with this.
    pub prefix: String,
    /// The cgroup parent of its containers (unique per daemon).
    pub cgroup_parent: String,
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// A memory cgroup the daemon runs in (hostile tests), removed on drop.
    confined: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// A `[network]` section no other test daemon of this run shares: its own
/// name prefix and a /20 of 10.224.0.0/11 for its subnets and VIPs.
fn network_config() -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let slot = (std::process::id().wrapping_mul(7).wrapping_add(n)) % 512;
    let prefix = format!("t{:05x}", (std::process::id() * 64 + n) & 0xfffff);
    let base = (10u32 << 24) | (224 << 16) | (slot << 12);
    let ip = |off: u32| std::net::Ipv4Addr::from(base + off);
    let config = format!(
        "[network]\nprefix = \"{prefix}\"\ndefault_subnet = \"{}/24\"\nservice_cidr = \"{}/24\"\nsubnet_pool = \"{}/22\"\n",
        ip(0),
        ip(256),
        ip(1024)
    );
    (config, prefix)
}

impl Berthd {
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    pub fn start_with_config(config: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("berthd-").tempdir().expect("temp dir");
        let root = dir.path().join("root");
        Self::start_at(dir, root, config)
    }

    /// Starts with the state root at `root` (e.g. a small tmpfs) and the
    /// rest in `dir`.
    pub fn start_at(dir: tempfile::TempDir, root: PathBuf, config: &str) -> Self {
        let run_root = dir.path().join("run");
        let config_path = dir.path().join("config.toml");
        let (network, prefix) = network_config();
        let config = if config.contains("[network]") { config.to_string() } else { format!("{config}\n{network}") };
        // Each daemon its own cgroup parent: one daemon removing its empty
        // parent at shutdown must not race another's container creation.
        let shared = format!("berth-test-{}", std::process::id());
        let cgroup_parent = format!("{shared}-{prefix}");
        let config = config.replace(&format!("\"{shared}\""), &format!("\"{cgroup_parent}\""));
        fs::write(&config_path, config).expect("write config");
        let mut d = Self {
            prefix,
            cgroup_parent,
            socket: run_root.join("berth.sock"),
            root,
            run_root,
            config: config_path,
            log: dir.path().join("daemon.log"),
            child: None,
            confined: None,
            dir,
        };
        d.spawn();
        d
    }

    /// Starts a daemon in a memory cgroup of its own limited to `limit`
    /// bytes (swap included where the host accounts it), so a test can
    /// prove an attack leaves it bounded: past the limit the kernel
    /// OOM-kills it and [`Berthd::alive`] turns false.
    pub fn start_confined(config: &str, limit: u64) -> Self {
        let dir = tempfile::Builder::new().prefix("berthd-").tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let run_root = dir.path().join("run");
        let config_path = dir.path().join("config.toml");
        let (network, prefix) = network_config();
        let mut config = if config.contains("[network]") { config.to_string() } else { format!("{config}\n{network}") };
        // Containers under a cgroup parent of this daemon's own.
        let cgroup_parent = format!("berth-test-{}-{prefix}", std::process::id());
        let parent_line = format!("cgroup_parent = \"{cgroup_parent}\"\n");
        if !config.contains("cgroup_parent") {
            config = match config.find("[containers]\n") {
                Some(at) => format!("{}{parent_line}{}", &config[..at + 13], &config[at + 13..]),
                None => format!("{config}\n[containers]\n{parent_line}"),
            };
        }
        fs::write(&config_path, config).expect("write config");
        let cgroup = memory_cgroup(&format!("berth-hostile-{prefix}"), limit);
        let mut d = Self {
            prefix: prefix.clone(),
            cgroup_parent,
            socket: run_root.join("berth.sock"),
            root,
            run_root,
            config: config_path,
            log: dir.path().join("daemon.log"),
            child: None,
            confined: Some(cgroup),
            dir,
        };
        d.spawn();
        d
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// The daemon's resident memory high-water mark (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else { return 0 };
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// Starts the daemon and waits until it listens.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).map_err(|e| e.to_string())?;
        // A confined daemon joins its cgroup before it execs, so every
        // byte it allocates is counted.
        let mut command = match &self.confined {
            Some(cg) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"").arg(cg).arg(BERTH);
                c
            }
            None => Command::new(BERTH),
        };
        let child = command
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .arg("--config")
            .arg(&self.config)
            .env_remove("BERTH_SOCKET")
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start berth daemon: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("berth daemon exited with {status} before listening:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("berth daemon did not listen on {} within 15 s:\n{}", self.socket.display(), self.log()))
    }

    /// Kills the daemon without warning (a crash) and starts it again on the
    /// same state.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Kills the daemon with SIGKILL (it cleans up nothing).
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same state.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `berth ARGS` against this daemon.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .env("BERTH_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// Runs `berth ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs `berth ARGS`, which must fail; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
    }

    /// `berth ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("JSON output")
    }

    pub fn blob_files(&self) -> Vec<String> {
        list(&self.root.join("images/blobs/sha256"))
    }

    pub fn tmp_files(&self) -> Vec<String> {
        list(&self.root.join("images/tmp"))
    }

    pub fn layer_dirs(&self) -> Vec<String> {
        list(&self.root.join("images/layers"))
    }
}

/// Creates a memory cgroup named `name` limited to `limit` bytes, on a
/// cgroup v1 memory hierarchy or on cgroup v2; returns its directory.
pub fn memory_cgroup(name: &str, limit: u64) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let (dir, files): (PathBuf, &[&str]) = if v1.join("memory.limit_in_bytes").exists() {
        (v1.join(name), &["memory.limit_in_bytes"])
    } else {
        (Path::new("/sys/fs/cgroup").join(name), &["memory.max", "memory.swap.max"])
    };
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create memory cgroup {}: {e}", dir.display()));
    for f in files {
        let value = if f.contains("swap") { "0".to_string() } else { limit.to_string() };
        let _ = fs::write(dir.join(f), value);
    }
    // v1 counts swap separately; cap memory+swap too where the host has it.
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        let _ = fs::write(memsw, limit.to_string());
    }
    let set = fs::read_to_string(dir.join(files[0])).unwrap_or_default();
    assert!(!set.trim().is_empty(), "memory limit of {} not readable", dir.display());
    dir
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

impl Berthd {
    /// A raw API call (curl over the unix socket); the JSON answer, or
    /// Null when there is none.
    pub fn api(&self, method: &str, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "-m", "30", "-X", method, "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://berth{path}"))
            .output()
            .expect("run curl");
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// POSTs a JSON body to the API; the answer, or Null.
    #[allow(dead_code)]
    pub fn api_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "-m", "30", "-X", "POST", "-H", "content-type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg("--unix-socket")
            .arg(&self.socket)
            .arg(format!("http://berth{path}"))
            .output()
            .expect("run curl");
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Deletes every declared object and waits (bounded) for the pods to
    /// be gone, so their containers, sandboxes and rules go the normal way.
    fn delete_declared(&self) {
        for resource in ["deployments", "rollouts", "services", "configmaps", "secrets", "analysistemplates"] {
            let list = self.api("GET", &format!("/v1/objects/{resource}?all_namespaces=true"));
            for item in list["items"].as_array().cloned().unwrap_or_default() {
                let (ns, name) = (&item["metadata"]["namespace"], &item["metadata"]["name"]);
                if let (Some(ns), Some(name)) = (ns.as_str(), name.as_str()) {
                    self.api("DELETE", &format!("/v1/objects/{resource}/{ns}/{name}"));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let pods = self.api("GET", "/v1/objects/pods?all_namespaces=true");
            if pods["items"].as_array().is_none_or(|a| a.is_empty()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Berthd {
    /// Whatever this daemon started that is still there once it stopped
    /// (it died, or could not finish): every process in its cgroups (its
    /// shims and containers; ours by construction, ended by PID), the
    /// cgroups, and the namespaces, links and nftables table named with
    /// its prefix. A clean run finds nothing here.
    fn remove_leftovers(&self) {
        let mut cgroups: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
            .map(|r| r.flatten().map(|e| e.path().join(&self.cgroup_parent)).collect())
            .unwrap_or_default();
        cgroups.push(Path::new("/sys/fs/cgroup").join(&self.cgroup_parent));
        cgroups.retain(|c| c.is_dir());
        for cg in &cgroups {
            for procs in walk_dirs(cg).iter().map(|d| d.join("cgroup.procs")) {
                for pid in fs::read_to_string(&procs).unwrap_or_default().split_whitespace() {
                    let _ = Command::new("kill").arg("-KILL").arg(pid).status();
                }
            }
        }
        for cg in &cgroups {
            let mut dirs = walk_dirs(cg);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                // A killed process leaves its cgroup a moment later.
                for _ in 0..50 {
                    if fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        // Prefixes have one length, so no other daemon's names start with ours.
        let ours = |name: &str| name.starts_with(&self.prefix);
        let namespaces: Vec<String> = fs::read_dir("/run/netns")
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        for name in namespaces.iter().filter(|n| ours(n)) {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
        let links = Command::new("ip").args(["-o", "link"]).output().map(|o| o.stdout).unwrap_or_default();
        for line in String::from_utf8_lossy(&links).lines() {
            let name = line.split(": ").nth(1).unwrap_or("").split('@').next().unwrap_or("");
            if ours(name) {
                let _ = Command::new("ip").args(["link", "delete", name]).status();
            }
        }
        let _ = Command::new("nft").args(["delete", "table", "ip", &self.prefix]).stderr(Stdio::null()).status();
    }
}

/// `dir` and every directory below it.
fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            out.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        i += 1;
    }
    out
}

impl Drop for Berthd {
    fn drop(&mut self) {
        // Declared objects (their pods drain and stop), then containers
        // (their shims, mounts and cgroups), then the daemon, then any
        // mount still below our directory.
        // A daemon that died (a restart that failed) cannot remove what it
        // started: start it again so it can; what is still left after that
        // is removed directly by `remove_leftovers`.
        if self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_some()) {
            self.child = None;
            if let Err(e) = self.try_spawn() {
                eprintln!("cleanup: the daemon would not start again: {e}");
            }
        }
        if self.child.is_some() {
            self.delete_declared();
            let ids = self.run(&["ps", "-a", "-q"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.run(&["rm", "-f", id]);
            }
        }
        self.stop();
        self.remove_leftovers();
        let prefix = self.dir.path().display().to_string();
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut ours: Vec<&str> =
            mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&prefix)).collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        if let Some(cg) = self.confined.take() {
            let _ = fs::remove_dir(&cg);
        }
        if std::thread::panicking() {
            eprintln!("--- berth daemon log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}
