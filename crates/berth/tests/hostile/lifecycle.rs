//! Containers against the host's process table and the daemon's
//! bookkeeping: a fork bomb, a shim killed under the daemon, stops racing
//! restarts, local users reading the state root, and shims that must not
//! share the daemon's fate (its cgroup).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::berthd::Berthd;
use crate::{assert_serving, daemon, support};

/// A `[containers]` section with a cgroup parent no other test daemon
/// uses, plus `extra` keys of that section.
fn config(extra: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("[containers]\ncgroup_parent = \"berth-hostile-lc-{}-{n}\"\n{extra}\n", std::process::id())
}

fn cgroup_parent(config: &str) -> String {
    config.lines().find_map(|l| l.strip_prefix("cgroup_parent = ")).unwrap().trim_matches('"').to_string()
}

fn with_image(config: &str) -> Berthd {
    let d = daemon(config);
    d.ok(&["image", "import", &support::images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

/// `/proc/PID/cgroup` as (hierarchy controllers, path) pairs.
fn cgroups_of(pid: i64) -> Vec<(String, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("cgroups of {pid}: {e}"))
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers.to_string(), path.to_string()))
        })
        .collect()
}

fn parent_pid(pid: i64) -> i64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().parse().unwrap()
}

/// The containers runc knows under this daemon's runtime root.
fn runc_list(d: &Berthd) -> String {
    let out = Command::new("runc")
        .arg("--root")
        .arg(d.run_root.join("runtime"))
        .args(["list", "-q"])
        .output()
        .expect("run runc list");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `pids.events` of a container's cgroup: how often a fork hit the limit.
fn pids_max_events(parent: &str, id: &str) -> u64 {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/pids/{parent}/{id}/pids.events"));
    let v2 = PathBuf::from(format!("/sys/fs/cgroup/{parent}/{id}/pids.events"));
    let text = fs::read_to_string(&v1).or_else(|_| fs::read_to_string(&v2)).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("max ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn containers_get_a_pids_limit_by_default_and_minus_one_lifts_it() {
    let d = with_image(&config(""));
    d.ok(&["create", "--name", "plain", "busybox:test", "true"]);
    assert_eq!(d.json(&["inspect", "plain"])["request"]["limits"]["pids_limit"], 4096);
    d.ok(&["create", "--name", "unlimited", "--pids-limit", "-1", "busybox:test", "true"]);
    assert_eq!(d.json(&["inspect", "unlimited"])["request"]["limits"]["pids_limit"], -1);
    d.ok(&["create", "--name", "small", "--pids-limit", "10", "busybox:test", "true"]);
    assert_eq!(d.json(&["inspect", "small"])["request"]["limits"]["pids_limit"], 10);
    let (_, err) = d.fails(&["create", "--pids-limit", "0", "busybox:test", "true"]);
    assert!(err.contains("pids_limit"), "{err}");
}

#[test]
fn a_pods_containers_get_the_default_pids_limit_too() {
    let d = with_image(&config("default_pids_limit = 321"));
    let manifest = d.dir().join("bomb-host.yaml");
    fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: forky}\nspec:\n  replicas: 1\n  \
         selector: {matchLabels: {app: forky}}\n  template:\n    metadata: {labels: {app: forky}}\n    \
         spec:\n      containers:\n        - {name: main, image: busybox:test, command: [sleep, '600']}\n",
    )
    .unwrap();
    d.ok(&["apply", "-f", &manifest.display().to_string()]);
    let mut id = String::new();
    wait_for("the pod's container", Duration::from_secs(30), || {
        let pods = d.json(&["get", "pods"]);
        id = pods["items"][0]["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("berth://")
            .to_string();
        !id.is_empty()
    });
    assert_eq!(d.json(&["inspect", &id])["request"]["limits"]["pids_limit"], 321);
    d.ok(&["delete", "-f", &manifest.display().to_string()]);
}

#[test]
fn a_fork_bomb_is_held_at_the_pids_limit() {
    let config = config("default_pids_limit = 200");
    let parent = cgroup_parent(&config);
    let mut d = with_image(&config);
    // Half a CPU, so the bomb's churn leaves the rest of the host (and of
    // this test) alone; the pids limit is what holds its processes.
    let id = d
        .ok(&["run", "-d", "--name", "bomb", "--cpus", "0.5", "busybox:test", "sh", "-c", "f(){ f|f& }; f; sleep 600"])
        .trim()
        .to_string();
    assert_eq!(d.json(&["inspect", "bomb"])["request"]["limits"]["pids_limit"], 200, "the daemon's default");
    wait_for("forks refused at the limit", Duration::from_secs(30), || pids_max_events(&parent, &id) > 0);
    for _ in 0..5 {
        let st = d.json(&["stats", "--no-stream", "bomb"]);
        let s = &st[0]["stats"];
        assert_eq!(s["pids_limit"], 200, "{st}");
        assert!(s["pids"].as_u64().unwrap() <= 200, "{st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The host still forks, the daemon still serves.
    assert!(Command::new("true").status().unwrap().success());
    assert_serving(&mut d);
    let started = Instant::now();
    d.ok(&["rm", "-f", "bomb"]);
    assert!(started.elapsed() < Duration::from_secs(30), "removal took {:?}", started.elapsed());
    assert!(!runc_list(&d).contains(&id));
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{parent}/{id}")).exists(), "the bomb's cgroup is gone");
    assert_serving(&mut d);
}

#[test]
fn a_killed_shim_is_found_lost_after_a_daemon_restart() {
    let mut d = with_image(&config(""));
    let id = d.ok(&["run", "-d", "--name", "orphan", "busybox:test", "sleep", "600"]).trim().to_string();
    let c = d.json(&["inspect", "orphan"]);
    let (shim, init) = (c["shim_pid"].as_i64().expect("shim_pid in inspect"), c["pid"].as_i64().unwrap());
    assert!(runc_list(&d).contains(&id));

    d.stop();
    // Only this shim, by its PID: the container's process lives on.
    assert!(Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap().success());
    wait_for("the shim to end", Duration::from_secs(10), || !Path::new(&format!("/proc/{shim}")).exists());
    assert!(Path::new(&format!("/proc/{init}")).exists(), "the container outlived its shim");
    d.restart();

    let c = d.json(&["inspect", "orphan"]);
    assert_eq!(c["state"], "exited", "{c}");
    let error = c["error"].as_str().unwrap_or_default();
    assert!(error.contains("shim lost"), "{error}");
    assert!(!runc_list(&d).contains(&id), "runc still has it:\n{}", runc_list(&d));
    wait_for("the container's process to end", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{init}")).exists()
    });
    d.ok(&["rm", "orphan"]);

    // The same while the daemon runs: its monitor notices at once.
    d.ok(&["run", "-d", "--name", "orphan2", "busybox:test", "sleep", "600"]);
    let shim = d.json(&["inspect", "orphan2"])["shim_pid"].as_i64().unwrap();
    assert!(Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap().success());
    wait_for("the lost shim to be noticed", Duration::from_secs(10), || {
        d.json(&["inspect", "orphan2"])["state"] == "exited"
    });
    assert!(d.json(&["inspect", "orphan2"])["error"].as_str().unwrap().contains("shim lost"));
    assert_serving(&mut d);
}

#[test]
fn a_stop_or_rm_racing_a_restart_by_policy_wins() {
    let d = with_image(&config(""));
    for round in 0..8u64 {
        let name = format!("flappy{round}");
        d.ok(&["run", "-d", "--name", &name, "--restart", "always", "busybox:test", "sh", "-c", "sleep 0.1; exit 3"]);
        // Crashing and restarting at 100 ms, 200 ms, 400 ms …: each round
        // stops it at another point of that cycle.
        std::thread::sleep(Duration::from_millis(100 + round * 83));
        if round % 2 == 0 {
            d.ok(&["stop", "-t", "1", &name]);
            // No restart brings it back.
            for _ in 0..15 {
                let c = d.json(&["inspect", &name]);
                assert_eq!(c["state"], "exited", "round {round}: {c}");
                assert_eq!(c["stopped_by_user"], true);
                std::thread::sleep(Duration::from_millis(100));
            }
            d.ok(&["rm", &name]);
        } else {
            d.ok(&["rm", "-f", &name]);
            std::thread::sleep(Duration::from_millis(500));
            let (_, err) = d.fails(&["inspect", &name]);
            assert!(err.contains("no such container"), "round {round}: {err}");
        }
    }
    assert_eq!(d.ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(runc_list(&d).trim(), "");
}

#[test]
fn state_modes_are_enforced_at_every_start() {
    let mut d = with_image(&config(""));
    let id = d.ok(&["run", "-d", "--name", "secretive", "-e", "TOKEN=hunter2", "busybox:test", "sleep", "600"]);
    let bundle = d.root.join("containers").join(id.trim());
    let check = |d: &Berthd| {
        for (p, m) in [
            (d.root.clone(), 0o711),
            (d.root.join("containers"), 0o711),
            (bundle.clone(), 0o711),
            (bundle.join("config.json"), 0o600),
            (bundle.join("ctr.log"), 0o600),
            (d.root.join("state.db"), 0o600),
            (d.run_root.clone(), 0o711),
            (d.run_root.join("containers"), 0o700),
            (d.run_root.join("runtime"), 0o700),
        ] {
            assert_eq!(mode(&p), m, "{} is {:o}", p.display(), mode(&p));
        }
    };
    check(&d);

    // As an older berth (or a hand-made --root) left them.
    d.stop();
    for p in [&d.root, &d.root.join("containers"), &bundle, &d.run_root, &d.run_root.join("containers")] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for p in [bundle.join("config.json"), bundle.join("ctr.log"), d.root.join("state.db")] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
    }
    d.restart();
    check(&d);

    // A local user gets nowhere: this test's own directory is opened to
    // all so only berth's modes stand in the way.
    fs::set_permissions(d.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| Command::new(args[0]).args(&args[1..]).uid(65534).gid(65534).output().unwrap();
    let root = d.root.display().to_string();
    assert!(!as_nobody(&["ls", &root]).status.success(), "the state root is listable");
    let config = bundle.join("config.json").display().to_string();
    let read = as_nobody(&["cat", &config]);
    assert!(!read.status.success() && !String::from_utf8_lossy(&read.stdout).contains("hunter2"));
    let log = bundle.join("ctr.log").display().to_string();
    assert!(!as_nobody(&["cat", &log]).status.success(), "the log is readable");
    assert!(!as_nobody(&["ls", &d.run_root.display().to_string()]).status.success());
    assert_serving(&mut d);
}

#[test]
fn shims_leave_the_daemons_cgroup() {
    let config = config("");
    let parent = cgroup_parent(&config);
    let mut d = with_image(&config);
    d.ok(&["run", "-d", "--name", "free", "busybox:test", "sleep", "600"]);
    let shim = d.json(&["inspect", "free"])["shim_pid"].as_i64().unwrap();
    let daemon_pid = parent_pid(shim);
    let daemon_cgroups = cgroups_of(daemon_pid);
    let shim_cgroups = cgroups_of(shim);
    // The memory hierarchy on v1, the one hierarchy on v2.
    let memory = |cg: &[(String, String)]| {
        let v1 = cg.iter().find(|(c, _)| c.split(',').any(|c| c == "memory"));
        v1.or_else(|| cg.iter().find(|(c, _)| c.is_empty())).map(|(_, p)| p.clone()).unwrap()
    };
    assert!(memory(&daemon_cgroups).contains("berth-hostile"), "the daemon is confined: {daemon_cgroups:?}");
    let shims = format!("/{parent}/shims");
    for (controllers, path) in &shim_cgroups {
        if controllers.contains("cpuset") {
            continue;
        }
        assert_eq!(path, &shims, "the shim's {controllers:?} cgroup (daemon's: {daemon_cgroups:?})");
    }
    // A stopped daemon leaves the shim (and its container) running.
    d.stop();
    assert!(Path::new(&format!("/proc/{shim}")).exists());
    d.restart();
    assert_eq!(d.json(&["inspect", "free"])["state"], "running");
    d.ok(&["rm", "-f", "free"]);
    d.stop();
    let shim_dirs: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(&parent).join("shims"))
        .chain([PathBuf::from("/sys/fs/cgroup").join(&parent).join("shims")])
        .filter(|p| p.exists())
        .collect();
    assert!(shim_dirs.is_empty(), "left behind: {shim_dirs:?}");
}
