//! Privileged: real runc runs the generated specs. Needs root, runc and
//! busybox-static (`scripts/deps.sh` installs both); fails, never skips,
//! when they are missing.
//!
//! Each test makes its own bundle and runc state root under the temp dir,
//! puts its cgroup at `/berth-test/<id>`, and on drop (also on panic)
//! force-deletes the container, removes the cgroup directories it created
//! and the bundle.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use berth_core::api::{ContainerCreateRequest, ImageRunConfig, ResourceLimits};
use berth_runtime::{
    build_spec, caps_from_mask, seccomp_choice, to_canonical_json, HostInfo, SeccompChoice, SpecInput, ALL_CAPS,
    DEFAULT_CAPS, HOST_SECCOMP_PROFILE,
};

const BUSYBOX: &str = "/bin/busybox";
const CGROUP_PARENT: &str = "berth-test";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One runc container at a time: the tests share the cgroup parent, and two
/// cores are better spent on one container than on contention.
static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn require_host() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(uid, 0, "this test needs root to run runc; run `cargo test` as root as CI does");
    assert!(
        Command::new("runc").arg("--version").output().is_ok_and(|o| o.status.success()),
        "runc is not installed; install it with scripts/deps.sh (apt-get install runc)"
    );
    assert!(Path::new(BUSYBOX).exists(), "{BUSYBOX} is missing; install busybox-static (scripts/deps.sh)");
}

/// A bundle directory, its runc state root and the container's cgroup,
/// all removed on drop.
struct Bundle {
    dir: PathBuf,
    runc_id: String,
    id: String,
}

impl Bundle {
    fn new() -> Bundle {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let id = format!("{:016x}{:016x}{:032x}", pid, n, nanos);
        let dir = std::env::temp_dir().join(format!("berth-runtime-test-{pid}-{n}"));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
        Bundle { dir, runc_id: format!("berth-rt-{pid}-{n}"), id }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn runc(&self) -> Command {
        let mut c = Command::new("timeout");
        c.args(["60", "runc", "--root"]).arg(self.dir.join("runc"));
        c
    }

    /// Writes the spec and runs the container in the foreground.
    fn run(&self, request: &ContainerCreateRequest, seccomp: SeccompChoice) -> Output {
        let image = ImageRunConfig::default();
        let spec = build_spec(&SpecInput {
            id: &self.id,
            rootfs: &self.rootfs(),
            image: &image,
            request,
            cgroups_path: format!("/{CGROUP_PARENT}/{}", self.id),
            passwd: None,
            group: None,
            seccomp,
            resolv_conf: None,
            hosts: None,
            network: Default::default(),
            host: HostInfo {
                max_nofile: Some(hard_nofile()),
                capabilities: Some(bounding_caps()),
                ..HostInfo::default()
            },
        })
        .unwrap();
        std::fs::write(self.dir.join("config.json"), to_canonical_json(&spec).unwrap()).unwrap();
        self.runc().arg("run").arg("--bundle").arg(&self.dir).arg(&self.runc_id).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Teardown keeps going past failures: each step is independent.
        let _ = self.runc().args(["delete", "--force", &self.runc_id]).output();
        // runc removes the container's cgroup; the parent is ours too. Only
        // directories named by this test are touched, and rmdir only
        // removes empty cgroups.
        let mut hierarchies = vec![PathBuf::from(CGROUP_ROOT)];
        if let Ok(dirs) = std::fs::read_dir(CGROUP_ROOT) {
            hierarchies.extend(dirs.flatten().map(|d| d.path()));
        }
        for h in hierarchies {
            let _ = std::fs::remove_dir(h.join(CGROUP_PARENT).join(&self.id));
            let _ = std::fs::remove_dir(h.join(CGROUP_PARENT));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// This process's hard `RLIMIT_NOFILE`, which runc inherits.
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files in /proc/self/limits");
    let hard = line.split_whitespace().nth(4).unwrap();
    hard.parse().unwrap_or(u64::MAX) // "unlimited"
}

/// This process's capability bounding set, which limits what runc grants.
fn bounding_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).expect("CapBnd in /proc/self/status");
    caps_from_mask(u64::from_str_radix(hex.trim(), 16).unwrap())
}

fn command(args: &[&str]) -> ContainerCreateRequest {
    ContainerCreateRequest { cmd: Some(args.iter().map(|s| s.to_string()).collect()), ..Default::default() }
}

fn check(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "runc failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// No cgroup of a finished test is left behind.
fn assert_no_cgroups_left(id: &str) {
    let mut hierarchies = vec![PathBuf::from(CGROUP_ROOT)];
    hierarchies.extend(std::fs::read_dir(CGROUP_ROOT).unwrap().flatten().map(|d| d.path()));
    for h in hierarchies {
        let p = h.join(CGROUP_PARENT).join(id);
        assert!(!p.exists(), "{} was left behind", p.display());
    }
}

#[test]
fn runc_runs_the_default_spec() {
    require_host();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bundle = Bundle::new();
    let out = bundle.run(&command(&["/bin/busybox", "echo", "hello"]), SeccompChoice::Default);
    assert_eq!(check(&out), "hello\n");
    let id = bundle.id.clone();
    drop(bundle);
    assert_no_cgroups_left(&id);
}

#[test]
fn default_confinement_is_in_force_inside() {
    require_host();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bundle = Bundle::new();
    let script = "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; \
        if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=ok; else echo mount=denied; fi; \
        if echo 1 > /proc/sys/kernel/panic 2>/dev/null; then echo procsys=ok; else echo procsys=denied; fi; \
        if unshare -n true 2>/dev/null; then echo unshare=ok; else echo unshare=denied; fi; \
        echo pid=$$; hostname";
    let out = check(&bundle.run(&command(&["/bin/busybox", "sh", "-c", script]), SeccompChoice::Default));
    let want_caps: u64 = DEFAULT_CAPS.iter().map(|c| 1u64 << ALL_CAPS.iter().position(|a| a == c).unwrap()).sum();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{name} missing in {out}"))
    };
    assert_eq!(u64::from_str_radix(&field("CapEff"), 16).unwrap(), want_caps, "{out}");
    assert_eq!(u64::from_str_radix(&field("CapBnd"), 16).unwrap(), want_caps, "{out}");
    assert_eq!(field("Seccomp"), "2", "{out}");
    assert_eq!(field("NoNewPrivs"), "1", "{out}");
    for line in ["mount=denied", "procsys=denied", "unshare=denied", "pid=1", &bundle.id[..12]] {
        assert!(out.lines().any(|l| l == line), "expected {line:?} in:\n{out}");
    }
}

#[test]
fn limits_user_and_read_only_root_are_accepted() {
    require_host();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bundle = Bundle::new();
    let mut req = command(&[
        "/bin/busybox",
        "sh",
        "-c",
        "id -u; id -g; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         if touch /newfile 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi; \
         echo ok > /tmp/x && cat /tmp/x",
    ]);
    req.user = Some("1000:1000".into());
    req.tmpfs = vec!["/tmp:size=1m,mode=1777".into()];
    req.security.read_only = true;
    req.limits = ResourceLimits {
        memory: Some(64 << 20),
        memory_swap: None,
        cpus: Some(0.5),
        cpu_shares: Some(512),
        pids_limit: Some(32),
    };
    let out = check(&bundle.run(&req, SeccompChoice::Default));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1000", "1000", &(64u64 << 20).to_string(), "32", "rootfs=ro", "ok"], "{out}");
}

#[test]
fn privileged_and_unconfined_run() {
    require_host();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bundle = Bundle::new();
    let mut req = command(&["/bin/busybox", "sh", "-c", "grep -E '^Seccomp:' /proc/self/status"]);
    req.security.privileged = true;
    let out = check(&bundle.run(&req, SeccompChoice::Default));
    assert_eq!(out.split_whitespace().last(), Some("0"), "{out}");
    drop(bundle);

    let bundle = Bundle::new();
    let out = bundle.run(&command(&["/bin/busybox", "echo", "unconfined"]), SeccompChoice::Unconfined);
    assert_eq!(check(&out), "unconfined\n");
}

#[test]
fn runc_accepts_the_host_containers_profile() {
    require_host();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        Path::new(HOST_SECCOMP_PROFILE).exists(),
        "{HOST_SECCOMP_PROFILE} is missing; install golang-github-containers-common (skopeo pulls it in)"
    );
    let choice = seccomp_choice(&[], |p| std::fs::read_to_string(p)).unwrap();
    assert!(matches!(choice, SeccompChoice::Docker { .. }));
    let bundle = Bundle::new();
    let out = bundle.run(&command(&["/bin/busybox", "sh", "-c", "grep -E '^Seccomp:' /proc/self/status"]), choice);
    assert_eq!(check(&out).split_whitespace().last(), Some("2"));
}
