//! The container service on a fake host: no root, no runc, no kernel. The
//! fake shims write what real shims write (state directory, PID, exit
//! record) and the fake runtime's signals end them, so create, start,
//! exit, restart, stop, adoption after a daemon restart and removal run
//! through the service's real code.

use std::sync::Arc;
use std::time::Duration;

use crate::testlab::Lab;
use berth_core::api::ContainerCreateRequest;
use berth_core::clock::Clock;
use berth_core::container::{ContainerState, RestartPolicy};

fn app(name: &str) -> ContainerCreateRequest {
    ContainerCreateRequest { image: "app:1".into(), name: Some(name.into()), ..Default::default() }
}

/// Lets the service's background tasks (the shim reaper) run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_container_is_created_started_exits_and_is_removed() {
    let lab = Lab::new().await;
    let c = lab.containers.create(app("web")).await.unwrap();
    assert_eq!(c.state, ContainerState::Created);
    assert_eq!(c.request.limits.pids_limit, Some(4096), "the default is written into the request");
    assert!(lab.containers.bundle(&c.id).join("config.json").is_file());
    assert_eq!(c.created_at, lab.fakes.clock.stamp(), "stamped by the host's clock");

    let c = lab.containers.start("web").await.unwrap();
    assert_eq!(c.state, ContainerState::Running);
    let launched = lab.fakes.shims.launched();
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].id, c.id);
    assert_eq!(launched[0].bundle, lab.containers.bundle(&c.id));
    assert_eq!(c.pid, Some(launched_pid(&lab) + 1), "the container's own PID, from the shim's state");
    assert_eq!(lab.fakes.namespaces.live(), vec![lab.nets.netns_path(&c.id)], "its network namespace");
    assert_eq!(lab.fakes.mounts.mounted(), vec![lab.images.rootfs_path(&c.id)], "its root filesystem");

    lab.fakes.clock.advance(Duration::from_secs(5));
    assert!(lab.fakes.shims.exit(&c.id, 3, None));
    settle().await;
    lab.containers.reap_exits().await;
    let c = lab.record("web");
    assert_eq!((c.state, c.exit_code), (ContainerState::Exited, Some(3)));
    assert_eq!(c.finished_at.as_deref(), Some(lab.fakes.clock.stamp().as_str()));
    assert!(lab.fakes.namespaces.live().is_empty(), "the network goes with the process");
    assert_eq!(lab.containers.wait("web").await.unwrap().exit_code, 3);
    assert_eq!(lab.events_of("die"), 1);

    lab.containers.remove("web", false).await.unwrap();
    assert!(lab.containers.resolve("web").is_err());
    assert!(lab.fakes.mounts.mounted().is_empty(), "the root filesystem is unmounted");
    assert!(!lab.containers.bundle(&c.id).exists());
    assert_eq!(lab.events_of("destroy"), 1);
}

fn launched_pid(lab: &Lab) -> i32 {
    let id = lab.fakes.shims.launched().last().unwrap().id.clone();
    lab.record(&id).shim_pid.unwrap()
}

#[tokio::test]
async fn stop_signals_waits_and_no_policy_brings_it_back() {
    let lab = Lab::new().await;
    let req = ContainerCreateRequest { restart: Some(RestartPolicy::Always), ..app("svc") };
    let c = lab.containers.create(req).await.unwrap();
    lab.containers.start("svc").await.unwrap();
    let c2 = lab.containers.stop("svc", Some(1)).await.unwrap();
    assert_eq!(c2.state, ContainerState::Exited);
    assert!(c2.stopped_by_user);
    assert_eq!(c2.exit_code, Some(143), "SIGTERM ended it");
    assert!(lab.fakes.runtime.calls().contains(&format!("kill {} 15", c.id)), "{:?}", lab.fakes.runtime.calls());
    settle().await;
    lab.containers.reap_exits().await;
    assert_eq!(lab.record("svc").state, ContainerState::Exited, "restart=always leaves a stopped container alone");
    assert_eq!(lab.fakes.shims.launched().len(), 1);
    // Stopping what is not running is refused, and changes nothing.
    let e = lab.containers.stop("svc", None).await.unwrap_err().to_string();
    assert!(e.contains("not running"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_container_is_restarted_after_its_back_off() {
    let lab = Lab::new().await;
    let req = ContainerCreateRequest { restart: Some(RestartPolicy::OnFailure { max_retries: 0 }), ..app("flaky") };
    let c = lab.containers.create(req).await.unwrap();
    tokio::spawn(Arc::clone(&lab.containers).monitor());
    lab.containers.start("flaky").await.unwrap();
    lab.fakes.shims.exit(&c.id, 1, None);
    let mut seen_restarting = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = lab.record("flaky");
        seen_restarting |= now.state == ContainerState::Restarting;
        if lab.fakes.shims.launched().len() == 2 && now.state == ContainerState::Running {
            assert_eq!(now.restart_count, 1);
            assert!(seen_restarting || now.restart_count == 1);
            // A clean exit ends it for good under on-failure.
            lab.fakes.shims.exit(&c.id, 0, None);
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if lab.record("flaky").state == ContainerState::Exited {
                    assert_eq!(lab.fakes.shims.launched().len(), 2);
                    return;
                }
            }
            panic!("the clean exit was not recorded: {:?}", lab.record("flaky"));
        }
    }
    panic!("not restarted: {:?}, {} launches", lab.record("flaky"), lab.fakes.shims.launched().len());
}

#[tokio::test]
async fn a_restarted_daemon_adopts_running_containers_and_records_each_exit_once() {
    let lab = Lab::new().await;
    let c = lab.containers.create(app("long")).await.unwrap();
    lab.containers.start("long").await.unwrap();

    // The daemon restarts: a new service over the same store and roots.
    let again = lab.restarted();
    again.recover();
    again.reap_exits().await;
    assert_eq!(lab.record("long").state, ContainerState::Running, "its shim still runs: adopted, not lost");
    again.reap_exits().await;
    assert_eq!(lab.events_of("die"), 0);

    lab.fakes.shims.exit(&c.id, 0, None);
    settle().await;
    again.reap_exits().await;
    again.reap_exits().await;
    lab.containers.reap_exits().await;
    assert_eq!((lab.record("long").state, lab.record("long").exit_code), (ContainerState::Exited, Some(0)));
    assert_eq!(lab.events_of("die"), 1, "one exit, one record, whoever reaps it");
}

#[tokio::test]
async fn a_lost_shim_is_an_exit_with_a_reason_never_a_ghost() {
    let lab = Lab::new().await;
    let c = lab.containers.create(app("ghost")).await.unwrap();
    lab.containers.start("ghost").await.unwrap();
    let shim_pid = lab.record("ghost").shim_pid.unwrap();
    // The shim dies without writing an exit record (killed, or a reboot).
    lab.fakes.procs.exit(shim_pid);
    lab.containers.reap_exits().await;
    let now = lab.record("ghost");
    assert_eq!(now.state, ContainerState::Exited);
    assert!(now.error.as_deref().is_some_and(|e| e.starts_with("shim lost")), "{:?}", now.error);
    assert!(lab.fakes.runtime.calls().contains(&format!("delete {}", c.id)), "{:?}", lab.fakes.runtime.calls());
}

#[tokio::test]
async fn bad_requests_are_refused_and_leave_nothing() {
    let lab = Lab::new().await;
    let taken = lab.containers.create(app("taken")).await.unwrap();
    for (req, want) in [
        (app("taken"), "already in use"),
        (ContainerCreateRequest { auto_remove: true, restart: Some(RestartPolicy::Always), ..app("b") }, "--rm"),
        (ContainerCreateRequest { image: "missing:1".into(), ..app("c") }, "missing"),
        (ContainerCreateRequest { userns: Some("keep-id".into()), ..app("d") }, "auto or host"),
    ] {
        let e = lab.containers.create(req).await.unwrap_err().to_string();
        assert!(e.to_lowercase().contains(want), "{e}");
    }
    assert_eq!(lab.store.list_containers().unwrap().len(), 1);
    // Only the created container's root filesystem is mounted.
    assert_eq!(lab.fakes.mounts.mounted(), vec![lab.images.rootfs_path(&taken.id)]);
}

#[tokio::test]
async fn a_removal_that_fails_halfway_finishes_the_rest_and_can_be_run_again() {
    let lab = Lab::new().await;
    let c = lab.containers.create(app("sticky")).await.unwrap();
    lab.containers.start("sticky").await.unwrap();
    lab.fakes.mounts.fail_next_unmount();
    let e = lab.containers.remove("sticky", true).await.unwrap_err().to_string();
    assert!(e.contains("only partly removed") && e.contains("root filesystem") && e.contains("rm -f sticky"), "{e}");
    // Everything else went; the record stays for the retry.
    assert!(!lab.containers.bundle(&c.id).exists());
    assert!(lab.fakes.namespaces.live().is_empty());
    assert_eq!(lab.fakes.mounts.mounted(), vec![lab.images.rootfs_path(&c.id)]);
    assert!(lab.containers.resolve("sticky").is_ok());
    lab.containers.remove("sticky", true).await.unwrap();
    assert!(lab.containers.resolve("sticky").is_err());
    assert!(lab.fakes.mounts.mounted().is_empty());
}

#[tokio::test]
async fn an_exit_written_by_a_shim_of_an_earlier_start_is_not_taken_for_this_one() {
    let lab = Lab::new().await;
    let c = lab.containers.create(app("web")).await.unwrap();
    lab.containers.start("web").await.unwrap();
    let shim = lab.record("web").shim_pid.unwrap();
    // A shim a killed daemon started earlier, for the same container, ends
    // late and writes its exit into the directory the new start uses.
    let sd = lab.containers.state_dir(&c.id);
    let stale = berth_shim::protocol::ExitRecord {
        code: 137,
        signal: Some(9),
        finished_at: "2026-01-01T00:00:00Z".into(),
        oom_killed: false,
        error: None,
        shim_pid: Some(shim + 1000),
    };
    sd.write_exit(&stale).unwrap();
    lab.containers.reap_exits().await;
    assert_eq!(lab.record("web").state, ContainerState::Running, "the running container is not marked dead");
    assert!(!sd.exit().exists(), "the stale record is dropped");
    assert_eq!(lab.events_of("die"), 0);
    // Its own exit still counts.
    lab.fakes.shims.exit(&c.id, 0, None);
    lab.containers.reap_exits().await;
    assert_eq!((lab.record("web").state, lab.record("web").exit_code), (ContainerState::Exited, Some(0)));
}

#[tokio::test]
async fn exec_runs_through_the_runtime_and_reports_output_and_exit_code() {
    use base64::Engine as _;
    use berth_core::api::{ExecEvent, ExecRequest};
    let lab = Lab::new().await;
    lab.containers.create(app("box")).await.unwrap();
    let c = lab.containers.start("box").await.unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let req = ExecRequest {
        cmd: vec!["sh".into(), "-c".into(), "echo $GREETING; echo oops >&2; exit 3".into()],
        env: vec!["GREETING=hi".into()],
        ..Default::default()
    };
    let code = lab.containers.exec("box", req, tx).await.unwrap();
    assert_eq!(code, 3);
    let mut out = std::collections::BTreeMap::<String, String>::new();
    while let Ok(ExecEvent::Output { stream, data }) = rx.try_recv() {
        let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        out.entry(stream).or_default().push_str(&String::from_utf8_lossy(&bytes));
    }
    assert_eq!(out.get("stdout").map(String::as_str), Some("hi\n"));
    assert_eq!(out.get("stderr").map(String::as_str), Some("oops\n"));
    assert!(
        lab.fakes.runtime.calls().iter().any(|call| call.starts_with(&format!("exec {} 0:0 sh -c", c.id))),
        "{:?}",
        lab.fakes.runtime.calls()
    );
    assert_eq!(lab.events_of("exec"), 1);

    let top = lab.containers.top("box", "-ef").unwrap();
    assert_eq!(top.titles.first().map(String::as_str), Some("UID"));
    assert_eq!(top.processes.len(), 1);
    assert!(lab.fakes.runtime.calls().contains(&format!("ps {} -ef", c.id)));
}

#[tokio::test]
async fn a_bad_exec_is_refused_before_the_runtime_is_asked() {
    use berth_core::api::ExecRequest;
    let lab = Lab::new().await;
    lab.containers.create(app("idle")).await.unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(4);
    let e =
        lab.containers.exec("idle", ExecRequest { cmd: vec!["true".into()], ..Default::default() }, tx.clone()).await;
    assert!(e.unwrap_err().to_string().contains("is not running"));
    lab.containers.start("idle").await.unwrap();
    for (req, want) in [
        (ExecRequest::default(), "needs a command"),
        (ExecRequest { cmd: vec!["true".into()], env: vec!["NOEQUALS".into()], ..Default::default() }, "KEY=VALUE"),
        (ExecRequest { cmd: vec!["true".into()], workdir: Some("rel".into()), ..Default::default() }, "absolute"),
    ] {
        let e = lab.containers.exec("idle", req, tx.clone()).await.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    assert!(!lab.fakes.runtime.calls().iter().any(|c| c.starts_with("exec")));
}

// ---- Logs ----

/// Appends lines to a log file as the shim writes them: one JSON object
/// `{"time","stream","log"}` a line.
fn append_log(path: &std::path::Path, lines: &[(&str, &str, &str)]) {
    use std::io::Write as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for (time, stream, log) in lines {
        let line =
            berth_shim::logfile::LogLine { time: time.to_string(), stream: stream.to_string(), log: log.to_string() };
        writeln!(f, "{}", serde_json::to_string(&line).unwrap()).unwrap();
    }
}

fn texts(entries: &[berth_core::api::LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.log.as_str()).collect()
}

fn log_query(tail: Option<usize>, since: Option<&str>) -> crate::containers::LogQuery {
    crate::containers::LogQuery { follow: false, tail, since: since.map(String::from) }
}

#[tokio::test]
async fn a_containers_log_is_read_back_with_tail_and_since() {
    use crate::containers::logs::snapshot;
    let lab = Lab::new().await;
    let c = lab.containers.create(app("web")).await.unwrap();
    let (found, path) = lab.containers.log_file("web").unwrap();
    assert_eq!(found.id, c.id);
    assert_eq!(lab.containers.log_file(&c.id[..12]).unwrap().1, path, "by ID prefix too");
    assert_eq!(lab.containers.inspect("web").unwrap().log_path, path.display().to_string());
    let e = lab.containers.log_file("nope").unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");

    // No output yet: nothing, and following starts at the beginning.
    assert_eq!(snapshot(&path, &Default::default()).unwrap(), (Vec::new(), 0));

    append_log(
        &path,
        &[
            ("2026-01-01T00:00:01.000000001Z", "stdout", "one\n"),
            ("2026-01-01T00:00:02Z", "stderr", "two\n"),
            ("2026-01-01T00:00:03Z", "stdout", "three\n"),
            ("2026-01-01T00:00:04Z", "stdout", "four\n"),
        ],
    );
    let (all, offset) = snapshot(&path, &Default::default()).unwrap();
    assert_eq!(texts(&all), ["one\n", "two\n", "three\n", "four\n"]);
    assert_eq!(offset, std::fs::metadata(&path).unwrap().len(), "following continues after what was read");
    // Each entry keeps its stream and its time, to the nanosecond.
    assert_eq!((all[0].time.as_str(), all[0].stream.as_str()), ("2026-01-01T00:00:01.000000001Z", "stdout"));
    assert_eq!(all[1].stream, "stderr");

    let read = |tail, since| snapshot(&path, &log_query(tail, since)).unwrap().0;
    assert_eq!(texts(&read(Some(2), None)), ["three\n", "four\n"]);
    assert_eq!(texts(&read(Some(0), None)), Vec::<&str>::new());
    assert_eq!(read(Some(100), None), all);
    assert_eq!(texts(&read(None, Some("2026-01-01T00:00:03Z"))), ["three\n", "four\n"], "at or after");
    assert_eq!(texts(&read(None, Some("2026-01-01T01:00:02+01:00"))), ["two\n", "three\n", "four\n"], "any offset");
    assert_eq!(texts(&read(None, Some("2026-01-01T00:00:01Z"))).len(), 4, "sub-second times compare as times");
    assert_eq!(texts(&read(Some(1), Some("2026-01-01T00:00:02Z"))), ["four\n"], "since, then the last N of those");
    assert!(read(None, Some("2027-01-01T00:00:00Z")).is_empty());

    // A line that is not a log entry (a torn write) is skipped.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2026-01-01T00:00:05Z\",\"str\n").unwrap();
    }
    append_log(&path, &[("2026-01-01T00:00:06Z", "stdout", "six\n")]);
    assert_eq!(texts(&read(Some(2), None)), ["four\n", "six\n"]);
}

#[tokio::test]
async fn a_rotated_log_reads_oldest_first_and_is_followed_across_a_rotation() {
    use crate::containers::logs::{snapshot, Follower};
    let lab = Lab::new().await;
    lab.containers.create(app("chatty")).await.unwrap();
    let (_, path) = lab.containers.log_file("chatty").unwrap();
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", path.display()));
    append_log(&rotated(2), &[("2026-01-01T00:00:01Z", "stdout", "a\n"), ("2026-01-01T00:00:02Z", "stdout", "b\n")]);
    append_log(&rotated(1), &[("2026-01-01T00:00:03Z", "stdout", "c\n")]);
    append_log(&path, &[("2026-01-01T00:00:04Z", "stdout", "d\n")]);
    // A file past a gap in the numbering is not the container's any more.
    append_log(&rotated(4), &[("2025-12-31T00:00:00Z", "stdout", "stale\n")]);

    let (all, offset) = snapshot(&path, &Default::default()).unwrap();
    assert_eq!(texts(&all), ["a\n", "b\n", "c\n", "d\n"]);
    assert_eq!(texts(&snapshot(&path, &log_query(Some(3), None)).unwrap().0), ["b\n", "c\n", "d\n"]);
    assert_eq!(texts(&snapshot(&path, &log_query(None, Some("2026-01-01T00:00:03Z"))).unwrap().0), ["c\n", "d\n"]);

    // Following: new complete lines only, each once.
    let mut follow = Follower::new(&path, offset);
    assert!(follow.poll().is_empty());
    append_log(&path, &[("2026-01-01T00:00:05Z", "stderr", "e\n")]);
    let new = follow.poll();
    assert_eq!((texts(&new), new[0].stream.as_str()), (vec!["e\n"], "stderr"));
    assert!(follow.poll().is_empty(), "not twice");
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2026-01-01T00:00:06Z\",\"stream\":\"stdout\",").unwrap();
        assert!(follow.poll().is_empty(), "half a line waits for the rest");
        f.write_all(b"\"log\":\"f\\n\"}\n").unwrap();
    }
    assert_eq!(texts(&follow.poll()), ["f\n"]);

    // The shim rotates: the file becomes .1 and a new, shorter one starts.
    std::fs::rename(rotated(1), rotated(2)).unwrap();
    std::fs::rename(&path, rotated(1)).unwrap();
    assert!(follow.poll().is_empty(), "between the rename and the first new line");
    append_log(&path, &[("2026-01-01T00:00:07Z", "stdout", "g\n")]);
    assert_eq!(texts(&follow.poll()), ["g\n"], "the new file is read from its start");
    assert_eq!(texts(&snapshot(&path, &log_query(Some(2), None)).unwrap().0), ["f\n", "g\n"]);
}

#[tokio::test]
async fn a_bad_log_query_is_refused() {
    use crate::containers::logs::snapshot;
    let lab = Lab::new().await;
    lab.containers.create(app("web")).await.unwrap();
    let (_, path) = lab.containers.log_file("web").unwrap();
    append_log(&path, &[("2026-01-01T00:00:01Z", "stdout", "one\n")]);
    for since in ["yesterday", "2026-01-01", "2026-01-01 00:00:00", "1767225600"] {
        let e = snapshot(&path, &log_query(None, Some(since))).unwrap_err();
        assert_eq!(e, format!("--since {since:?} is not an RFC 3339 time like 2026-01-02T15:04:05Z"));
    }
    // Options the query does not have are refused when it is decoded, not
    // ignored.
    for bad in
        [serde_json::json!({"timestamps": true}), serde_json::json!({"tail": -1}), serde_json::json!({"tail": "all"})]
    {
        assert!(serde_json::from_value::<crate::containers::LogQuery>(bad.clone()).is_err(), "{bad}");
    }
}
