//! System tests of containers: the real binary, daemon, shim and runc,
//! with the busybox test images.

mod berthd;
mod support;

use std::time::{Duration, Instant};

use berthd::Berthd;
use support::{images, require_root};

fn daemon_with_image() -> Berthd {
    require_root();
    let d =
        Berthd::start_with_config(&format!("[containers]\ncgroup_parent = \"berth-test-{}\"\n", std::process::id()));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn run_streams_output_and_returns_the_exit_code() {
    let d = daemon_with_image();
    let out = d.run(&["run", "--rm", "busybox:test", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    assert!(d.json(&["ps", "-a"]).as_array().unwrap().is_empty(), "--rm removed it");
    assert!(d.layer_dirs().len() == 1, "the image stays");
}

#[test]
fn detached_lifecycle_ps_logs_stop_rm() {
    let d = daemon_with_image();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "looper",
        "busybox:test",
        "sh",
        "-c",
        "trap 'echo bye; exit 3' TERM; while true; do echo tick; sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = d.json(&["ps"]);
    assert_eq!(ps[0]["name"], "looper");
    assert_eq!(ps[0]["state"], "running");
    wait_for("output", || d.ok(&["logs", "looper"]).contains("tick"));
    let tail = d.ok(&["logs", "--tail", "1", &id[..8]]);
    assert_eq!(tail.lines().count(), 1, "{tail}");

    let (code, err) = d.fails(&["rm", "looper"]);
    assert_eq!(code, 1);
    assert!(err.contains("running") && err.contains("-f"), "{err}");
    let (_, err) = d.fails(&["run", "-d", "--name", "looper", "busybox:test", "true"]);
    assert!(err.contains("already in use"), "{err}");

    d.ok(&["stop", "-t", "5", "looper"]);
    let inspect = d.json(&["inspect", "looper"]);
    assert_eq!(inspect["state"], "exited");
    assert_eq!(inspect["exit_code"], 3, "the trap ran: SIGTERM came first");
    assert!(d.ok(&["logs", "looper"]).contains("bye"));
    assert_eq!(d.ok(&["wait", "looper"]).trim(), "3");
    d.ok(&["rm", "looper"]);
    let (_, err) = d.fails(&["inspect", "looper"]);
    assert!(err.contains("no such container"), "{err}");
    assert!(d.dir().join("root/containers").read_dir().map(|r| r.count()).unwrap_or(0) == 0);
}

#[test]
fn hardened_defaults_are_in_force() {
    let d = daemon_with_image();
    // Capabilities: exactly the 11 defaults (docker's set without NET_RAW, MKNOD, AUDIT_WRITE).
    let out = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", "grep CapEff /proc/self/status"]);
    assert!(out.contains("00000000800405fb"), "{out}");
    let out = d.ok(&["run", "--rm", "--cap-drop", "ALL", "busybox:test", "sh", "-c", "grep CapEff /proc/self/status"]);
    assert!(out.contains("0000000000000000"), "{out}");
    // no_new_privs and seccomp filtering.
    let out = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status"]);
    assert!(out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"), "{out}");
    // Masked and read-only paths.
    let out = d.run(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "cat /proc/kcore | head -c 1 | wc -c; touch /proc/sys/x 2>&1; echo done",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with('0'), "kcore is masked: {text}");
    // Read-only root.
    let out = d.run(&["run", "--rm", "--read-only", "busybox:test", "touch", "/x"]);
    assert_ne!(out.status.code(), Some(0));
    // Inspect shows the effective settings.
    let id = d.ok(&["create", "busybox:test", "true"]);
    let sec = &d.json(&["inspect", id.trim()])["security"];
    assert_eq!(sec["capabilities"].as_array().unwrap().len(), 11, "{sec}");
    assert_eq!(sec["no_new_privileges"], true);
    assert_eq!(sec["seccomp"], "default");
    assert!(sec["masked_paths"].as_array().unwrap().iter().any(|p| p == "/proc/kcore"));
    d.ok(&["rm", id.trim()]);
}

#[test]
fn a_container_survives_a_daemon_crash() {
    let mut d = daemon_with_image();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox:test",
        "sh",
        "-c",
        "while true; do echo alive; sleep 0.2; done",
    ]);
    let pid = d.json(&["inspect", "survivor"])["pid"].as_i64().unwrap();
    d.crash_and_restart();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container process outlived the daemon");
    let c = d.json(&["inspect", "survivor"]);
    assert_eq!(c["state"], "running");
    assert_eq!(c["pid"].as_i64().unwrap(), pid, "adopted, not restarted");
    d.ok(&["rm", "-f", "survivor"]);
    wait_for("the process to end", || !std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn restart_policy_restarts_with_backoff() {
    let d = daemon_with_image();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        "busybox:test",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_for("three restarts", || {
        let c = d.json(&["inspect", "flaky"]);
        c["restart_count"] == 3 && c["state"] == "exited"
    });
    let runs = d.ok(&["logs", "flaky"]).matches("run").count();
    assert_eq!(runs, 4, "one run and three restarts");
    d.ok(&["rm", "flaky"]);
}

#[test]
fn start_failures_are_one_clear_line() {
    let d = daemon_with_image();
    let out = d.run(&["run", "--rm", "busybox:test", "/no/such/binary"]);
    assert_eq!(out.status.code(), Some(127), "a command that cannot start is 127, as in docker");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/binary"), "{err}");
    let (_, err) = d.fails(&["run", "--rm", "nosuchimage:1", "true"]);
    assert!(err.contains("no such image"), "{err}");
    let (_, err) = d.fails(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox:test", "true"]);
    assert!(err.contains("NOT_A_CAP"), "{err}");
    let (_, err) = d.fails(&["run", "--rm", "--restart", "sometimes", "busybox:test", "true"]);
    assert!(err.contains("restart"), "{err}");
    assert!(d.json(&["ps", "-a"]).as_array().unwrap().iter().all(|c| c["state"] != "running"));
}

#[test]
fn events_and_audit_record_the_lifecycle() {
    let d = daemon_with_image();
    let out = d.run(&["run", "--rm", "--name", "evented", "busybox:test", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let out = d.ok(&["events", "--since", "1m", "--until", "0s", "--filter", "container=evented", "-o", "json"]);
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["create", "start", "die", "destroy"], "{out}");
    let die = &events[2];
    assert_eq!(die["attributes"]["exit_code"], "4");
    assert_eq!(die["attributes"]["image"], "busybox:test");
    assert!(events.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    let (_, err) = d.fails(&["events", "--filter", "colour=red", "--until", "0s"]);
    assert!(err.contains("colour"), "{err}");

    let audit = d.json(&["system", "audit"]);
    let create = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "/v1/containers" && a["method"] == "POST")
        .expect("create audited");
    assert_eq!(create["uid"], 0);
    assert!(create["pid"].as_i64().unwrap() > 0);
    assert_eq!(create["status"], 201);
    assert!(
        audit.as_array().unwrap().iter().all(|a| {
            let path = a["path"].as_str().unwrap_or_default();
            a["method"] != "GET"
                || path == "/v1/events"
                || path.ends_with("/logs")
                || path.starts_with("/v1/objects/secrets")
        }),
        "reads other than streams (events, logs) and Secrets are not audited: {audit}"
    );
}

#[test]
fn stats_top_and_limits_come_from_the_cgroup() {
    let d = daemon_with_image();
    d.ok(&["run", "-d", "--name", "limited", "-m", "64m", "--pids-limit", "50", "busybox:test", "sleep", "30"]);
    let st = d.json(&["stats", "--no-stream", "limited"]);
    let s = &st[0]["stats"];
    assert_eq!(s["memory_limit"], 64 << 20, "{st}");
    assert_eq!(s["pids_limit"], 50, "{st}");
    assert!(s["pids"].as_u64().unwrap() >= 1, "{st}");
    assert!(s["memory_usage"].as_u64().unwrap() > 0, "{st}");
    let top = d.ok(&["top", "limited"]);
    assert!(top.contains("sleep 30"), "{top}");
    d.ok(&["rm", "-f", "limited"]);
    let (_, err) = d.fails(&["stats", "--no-stream", "limited"]);
    assert!(err.contains("no such container"), "{err}");
}

#[test]
fn an_oom_kill_is_recorded() {
    let d = daemon_with_image();
    // The shell keeps ~64 MB of output in a variable under a 16 MiB limit.
    let out = d.run(&[
        "run",
        "--name",
        "hungry",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox:test",
        "sh",
        "-c",
        "a=$(/bin/busybox yes | /bin/busybox head -c 67108864); echo survived",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stdout));
    let c = d.json(&["inspect", "hungry"]);
    assert_eq!(c["oom_killed"], true, "{c}");
    let ev =
        d.ok(&["events", "--since", "1m", "--until", "0s", "--filter", "container=hungry", "--filter", "event=oom"]);
    assert!(ev.contains(" oom "), "{ev}");
    d.ok(&["rm", "hungry"]);
}

#[test]
fn exec_passes_stdin_output_and_exit_code() {
    let d = daemon_with_image();
    d.ok(&["run", "-d", "--name", "host", "busybox:test", "sleep", "30"]);
    let out = d.ok(&["exec", "host", "sh", "-c", "echo in-container; hostname"]);
    assert!(out.starts_with("in-container\n"), "{out}");
    let code = d.run(&["exec", "host", "sh", "-c", "exit 9"]).status.code();
    assert_eq!(code, Some(9));
    let mut child = std::process::Command::new(berthd::BERTH)
        .args(["exec", "-i", "-e", "GREETING=hi", "-w", "/tmp", "host", "sh", "-c", "echo $GREETING $(pwd); cat"])
        .env("BERTH_SOCKET", &d.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"from stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi /tmp\nfrom stdin\n");
    let out = d.ok(&["exec", "-u", "nobody", "host", "id", "-u"]);
    assert_eq!(out.trim(), "65534");
    d.ok(&["stop", "-t", "1", "host"]);
    let (_, err) = d.fails(&["exec", "host", "true"]);
    assert!(err.contains("not running"), "{err}");
    d.ok(&["rm", "host"]);
}

#[test]
fn exec_it_gives_a_terminal_of_the_right_size_and_passes_the_exit_code() {
    let d = daemon_with_image();
    d.ok(&["run", "-d", "--name", "term", "busybox:test", "sleep", "60"]);
    // `script` gives the CLI a terminal, as a user's shell would.
    let shell = format!("stty rows 33 cols 111; {} exec -it term sh", berthd::BERTH);
    let mut child = std::process::Command::new("script")
        .args(["-qec", &shell, "/dev/null"])
        .env("BERTH_SOCKET", &d.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"sleep 0.3; tty; stty size; echo $((6*7)); exit 5\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 111"), "{text}");
    assert!(text.contains("42"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");

    // -t alone needs no terminal; -it does, and says so.
    let out = d.ok(&["exec", "-t", "term", "echo", "hi"]);
    assert_eq!(out, "hi\r\n");
    let (_, err) = d.fails(&["exec", "-it", "term", "sh"]);
    assert!(err.contains("not a TTY"), "{err}");

    // The protocol itself: a resize reaches the process's terminal.
    use berth_core::frames::{Decoder, Frame};
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let body = r#"{"cmd":["sh"],"cols":80,"rows":24}"#;
    write!(
        s,
        "POST /v1/containers/term/exec/tty HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: berth-exec\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let (mut frames, mut output, mut exit) = (Decoder::default(), Vec::new(), None);
    let mut buf = [0u8; 4096];
    // Reads frames until `done` holds for the output so far, or the exit.
    let mut read_until = |s: &mut std::os::unix::net::UnixStream, done: &dyn Fn(&str) -> bool| {
        while exit.is_none() && !done(&String::from_utf8_lossy(&output)) {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early; output: {}", String::from_utf8_lossy(&output));
            frames.push(&buf[..n]);
            while let Some(f) = frames.next_frame().unwrap() {
                match f {
                    Frame::Output(b) => output.extend(b),
                    Frame::Exit(code) => exit = Some(code),
                    other => panic!("unexpected frame {other:?}"),
                }
            }
        }
        (String::from_utf8_lossy(&output).to_string(), exit)
    };
    // runc sizes the process's terminal just after starting it, so the
    // very first command may still see 0x0.
    s.write_all(&Frame::Stdin(b"sleep 0.3; stty size\n".to_vec()).encode()).unwrap();
    read_until(&mut s, &|o| o.contains("24 80"));
    s.write_all(&Frame::Resize { cols: 90, rows: 20 }.encode()).unwrap();
    s.write_all(&Frame::Stdin(b"stty size; exit 3\n".to_vec()).encode()).unwrap();
    let (text, exit) = read_until(&mut s, &|_| false);
    assert!(text.contains("20 90"), "{text}");
    assert_eq!(exit, Some(3));

    // Without the upgrade the endpoint explains what it needs.
    let plain = curl_post(&d.socket, "/v1/containers/term/exec/tty", body);
    assert!(plain.contains("Upgrade: berth-exec"), "{plain}");
    d.ok(&["rm", "-f", "term"]);
}

fn curl_post(socket: &std::path::Path, path: &str, body: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(socket)
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg(format!("http://berth{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn curl_unix(socket: &std::path::Path, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(socket)
        .arg(format!("http://berth{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {path}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn metrics_are_prometheus_text_on_the_socket_and_tcp() {
    require_root();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = Berthd::start_with_config(&format!(
        "metrics_address = \"127.0.0.1:{port}\"\n[containers]\ncgroup_parent = \"berth-test-{}\"\n",
        std::process::id()
    ));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d.ok(&["run", "-d", "--name", "measured", "busybox:test", "sleep", "30"]);
    let text = curl_unix(&d.socket, "/metrics");
    assert!(text.contains("# TYPE berth_container_memory_bytes gauge"), "{text}");
    assert!(text.contains("berth_containers{state=\"running\"} 1"), "{text}");
    let line =
        text.lines().find(|l| l.starts_with("berth_container_pids{") && l.contains("name=\"measured\"")).expect("pids");
    assert!(line.ends_with(" 1"), "{line}");
    assert!(text.contains("berth_daemon_resident_memory_bytes "), "{text}");
    let tcp =
        std::process::Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{port}/metrics")]).output().unwrap();
    assert!(String::from_utf8_lossy(&tcp.stdout).contains("berth_container_restarts_total"));
    let other = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{port}/v1/containers")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&other.stdout), "404", "only /metrics is served on TCP");
    d.ok(&["rm", "-f", "measured"]);
}

#[test]
fn ten_containers_survive_kill_9_of_the_daemon_and_an_exit_meanwhile_is_recorded() {
    let mut d = daemon_with_image();
    for i in 0..10 {
        d.ok(&[
            "run",
            "-d",
            "--name",
            &format!("c{i}"),
            "busybox:test",
            "sh",
            "-c",
            "while true; do echo beat; sleep 0.2; done",
        ]);
    }
    d.ok(&["run", "-d", "--name", "short", "busybox:test", "sh", "-c", "sleep 1; exit 5"]);
    let pids: Vec<i64> = (0..10).map(|i| d.json(&["inspect", &format!("c{i}")])["pid"].as_i64().unwrap()).collect();
    // SIGKILL: no chance to clean up; "short" exits while the daemon is down.
    d.kill_9();
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();
    let ps = d.json(&["ps"]);
    assert_eq!(ps.as_array().unwrap().len(), 10, "{ps}");
    for (i, pid) in pids.iter().enumerate() {
        let c = d.json(&["inspect", &format!("c{i}")]);
        assert_eq!(c["state"], "running");
        assert_eq!(c["pid"].as_i64().unwrap(), *pid, "c{i} was adopted, not restarted");
        assert!(d.ok(&["logs", &format!("c{i}")]).contains("beat"), "logs intact");
    }
    let short = d.json(&["inspect", "short"]);
    assert_eq!(short["state"], "exited");
    assert_eq!(short["exit_code"], 5, "the exit that happened meanwhile is recorded");
    // Logs keep flowing after the restart (the shims never stopped).
    let before = d.ok(&["logs", "c0"]).lines().count();
    wait_for("new output", || d.ok(&["logs", "c0"]).lines().count() > before);
    for i in 0..10 {
        d.ok(&["rm", "-f", &format!("c{i}")]);
    }
    d.ok(&["rm", "short"]);
}

#[test]
fn many_run_rm_cycles_leave_nothing_behind() {
    let d = daemon_with_image();
    let parent = d.cgroup_parent.clone();
    for i in 0..200 {
        let out = d.run(&["run", "--rm", "busybox:test", "true"]);
        assert!(out.status.success(), "cycle {i}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(d.json(&["ps", "-a"]).as_array().unwrap().is_empty());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&d.dir().display().to_string()), "no mount left: {mounts}");
    let leftovers = |dir: std::path::PathBuf| std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
    assert_eq!(leftovers(d.dir().join("root/containers")), 0, "no bundle or log left");
    assert_eq!(leftovers(d.dir().join("run/containers")), 0, "no shim state left");
    assert_eq!(leftovers(d.dir().join("root/images/snapshots")), 0, "no snapshot left");
    assert_eq!(leftovers(d.dir().join("run/runtime")), 0, "no runtime state left");
    for controller in ["memory", "pids", "cpu"] {
        let dir = std::path::Path::new("/sys/fs/cgroup").join(controller).join(&parent);
        let kids = std::fs::read_dir(&dir).map(|r| r.flatten().filter(|e| e.path().is_dir()).count()).unwrap_or(0);
        assert_eq!(kids, 0, "no cgroup left under {}", dir.display());
    }
}

#[test]
fn logs_rotate_and_the_container_sees_only_itself() {
    require_root();
    let d = Berthd::start_with_config(&format!(
        "[containers]\ncgroup_parent = \"berth-test-{}\"\nlog_max_size = 8192\nlog_max_files = 2\n",
        std::process::id()
    ));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d.ok(&[
        "run",
        "--name",
        "chatty",
        "busybox:test",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    let log = d.json(&["inspect", "chatty"])["log_path"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&format!("{log}.1")).exists(), "rotated");
    assert!(!std::path::Path::new(&format!("{log}.2")).exists(), "at most 2 files");
    let out = d.ok(&["logs", "chatty"]);
    assert!(out.ends_with("line 1999\n"), "the newest output is kept");
    assert!(!out.contains("line 0\n"), "the oldest was rotated away");
    d.ok(&["rm", "chatty"]);
    // PID namespace: only its own processes; no mount; /proc/sys read-only.
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "exec 2>&1; ls /proc | grep -c '^[0-9]'; mount -t tmpfs x /tmp; echo 1 > /proc/sys/kernel/ostype; echo end",
    ]);
    let first: u32 = out.lines().next().unwrap().trim().parse().unwrap();
    assert!(first <= 3, "the container sees only its own processes: {out}");
    assert!(out.to_lowercase().contains("permission denied") || out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
}

#[test]
fn a_restart_cleans_up_a_half_made_container() {
    let mut d = daemon_with_image();
    // What a daemon killed in the middle of a create leaves: a bundle and a
    // mounted root filesystem for an ID the store never recorded.
    let id = "ab".repeat(32);
    let snap = d.dir().join("root/images/snapshots").join(&id);
    let layer = std::fs::read_dir(d.dir().join("root/images/layers")).unwrap().next().unwrap().unwrap().path();
    for sub in ["upper", "work", "rootfs"] {
        std::fs::create_dir_all(snap.join(sub)).unwrap();
    }
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            layer.display(),
            snap.join("upper").display(),
            snap.join("work").display()
        ))
        .arg(snap.join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(d.dir().join("root/containers").join(&id)).unwrap();
    d.kill_9();
    d.restart();
    assert!(!snap.exists(), "the orphan snapshot is gone");
    assert!(!d.dir().join("root/containers").join(&id).exists(), "the orphan bundle is gone");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&id), "the orphan mount is gone");
}

#[test]
fn an_image_in_use_is_not_removed() {
    let d = daemon_with_image();
    d.ok(&["create", "--name", "user", "busybox:test", "true"]);
    let (code, err) = d.fails(&["rmi", "busybox:test"]);
    assert_eq!(code, 1);
    assert!(err.contains("user") && err.contains("-f"), "{err}");
    let out = d.ok(&["rmi", "-f", "busybox:test"]);
    assert!(out.contains("Untagged") && !out.contains("Deleted"), "{out}");
    // The container still starts: its layers were kept.
    d.ok(&["start", "user"]);
    d.ok(&["wait", "user"]);
    d.ok(&["rm", "user"]);
    let pruned = d.ok(&["image", "prune"]);
    assert!(pruned.contains("Deleted image"), "{pruned}");
    assert!(d.blob_files().is_empty());
}

#[test]
fn stop_of_a_stopped_container_and_a_missing_runtime_are_clear_errors() {
    let d = daemon_with_image();
    d.ok(&["create", "--name", "idle", "busybox:test", "true"]);
    let (code, err) = d.fails(&["stop", "idle"]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
    assert_eq!(d.json(&["inspect", "idle"])["stopped_by_user"], false, "a refused stop changes nothing");
    // restart of a stopped container simply starts it.
    d.ok(&["restart", "idle"]);
    d.ok(&["wait", "idle"]);
    d.ok(&["rm", "idle"]);
    let (_, err) = d.fails(&["run", "--rm", "-m", "12q", "busybox:test", "true"]);
    assert!(err.contains("12q"), "{err}");

    require_root();
    let broken = Berthd::start_with_config(&format!(
        "[containers]\nruntime = \"/nonexistent/runc\"\ncgroup_parent = \"berth-test-{}\"\n",
        std::process::id()
    ));
    broken.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    let out = broken.run(&["run", "--rm", "busybox:test", "true"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/runc"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(broken.json(&["ps", "-a"]).as_array().unwrap().is_empty(), "--rm cleaned up");
}
