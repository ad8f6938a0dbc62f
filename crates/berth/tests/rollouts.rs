//! System tests of Deployment rollouts: revisions, `berth rollout`
//! status/history/undo/pause/resume/restart, and the automatic rollback of
//! a revision whose pods crash-loop, with the real binary, daemon, runc and
//! nftables. Traffic goes only to the daemon's VIPs and bounded in count.

mod berthd;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use berthd::Berthd;
use serde_json::Value;
use support::{images, require_root};

fn daemon() -> Berthd {
    require_root();
    let d = Berthd::start_with_config(&format!(
        "[containers]\ncgroup_parent = \"berth-test-{}\"\n[services]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 4\ndrain_timeout_seconds = 5\n",
        std::process::id()
    ));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

/// Deployment `app` (2 replicas) behind Service `app`, answering its
/// version; a broken version exits at once.
fn app(version: &str, broken: bool) -> String {
    let run = if broken {
        "exit 1".to_string()
    } else {
        format!("mkdir -p /w && echo {version} > /w/index.html && exec httpd -f -p 8080 -h /w")
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations: {{kubernetes.io/change-cause: "version {version}"}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: busybox:test
          command: [sh, -c, "{run}"]
          env: [{{name: VERSION, value: "{version}"}}]
          ports: [{{containerPort: 8080, name: http}}]
          readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: app}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: http}}]
"#
    )
}

fn apply(d: &Berthd, text: &str) {
    let path = d.dir().join("app.yaml");
    std::fs::write(&path, text).unwrap();
    d.ok(&["apply", "-f", &path.display().to_string()]);
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(d: &Berthd) -> (i32, String) {
    let out = d.run(&["rollout", "status", "deployment/app", "--timeout", "90s"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn versions(d: &Berthd, n: usize) -> BTreeSet<String> {
    let ip = d.json(&["get", "service", "app"])["spec"]["clusterIP"].as_str().unwrap().to_string();
    (0..n)
        .map(|_| {
            let out = std::process::Command::new("curl")
                .args(["-s", "-f", "-m", "3", &format!("http://{ip}/")])
                .output()
                .unwrap();
            assert!(out.status.success(), "a request to the VIP failed");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

fn history(d: &Berthd) -> Vec<(u64, String)> {
    let v: Value = d.json(&["rollout", "history", "deployment/app"]);
    v["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].as_u64().unwrap(), r["change_cause"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn a_crash_looping_revision_is_rolled_back_on_its_own() {
    let d = daemon();
    apply(&d, &app("v1", false));
    let (code, out) = status(&d);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(versions(&d, 10), BTreeSet::from(["v1".to_string()]));

    apply(&d, &app("v2", true));
    let (code, out) = status(&d);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rolled back"), "{out}");
    // Back on v1 (now revision 3), every pod ready, the VIP serving v1.
    wait_for("the rollback to finish", 60, || {
        let dep = d.json(&["get", "deployment", "app"]);
        (dep["status"]["updatedReplicas"] == 2
            && dep["status"]["availableReplicas"] == 2
            && dep["status"]["replicas"] == 2)
            .then_some(())
    });
    assert_eq!(versions(&d, 10), BTreeSet::from(["v1".to_string()]));
    assert_eq!(history(&d), vec![(2, "version v2".to_string()), (3, "version v1".to_string())]);
    let events = d.json(&["get", "events"]);
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "RolledBack"),
        "no RolledBack event: {events}"
    );

    // With automatic rollback turned off, the failure is only reported.
    let manual = app("v3", true)
        .replace(
            "annotations: {kubernetes.io/change-cause: \"version v3\"}",
            "annotations: {kubernetes.io/change-cause: \"version v3\", berth.dev/auto-rollback: \"false\"}",
        )
        .replace("spec:\n  replicas: 2", "spec:\n  progressDeadlineSeconds: 5\n  replicas: 2");
    assert!(manual.contains("auto-rollback") && manual.contains("progressDeadlineSeconds: 5"));
    apply(&d, &manual);
    let (code, out) = status(&d);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exceeded its progress deadline"), "{out}");
    // The old pods kept serving.
    assert_eq!(versions(&d, 10), BTreeSet::from(["v1".to_string()]));
}

#[test]
fn undo_pause_resume_and_restart() {
    let d = daemon();
    apply(&d, &app("v1", false));
    assert_eq!(status(&d).0, 0);
    apply(&d, &app("v2", false));
    assert_eq!(status(&d).0, 0);
    assert_eq!(versions(&d, 10), BTreeSet::from(["v2".to_string()]));

    let out = d.ok(&["rollout", "undo", "deployment/app"]);
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(status(&d).0, 0);
    assert_eq!(versions(&d, 10), BTreeSet::from(["v1".to_string()]));
    assert_eq!(history(&d).iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![2, 3]);
    let (code, err) = d.fails(&["rollout", "undo", "deployment/app", "--to-revision", "9"]);
    assert_ne!(code, 0);
    assert!(err.contains("revision 9"), "{err}");

    // Paused: a new template makes no pods until resumed.
    d.ok(&["rollout", "pause", "deployment/app"]);
    apply(&d, &app("v4", false));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(versions(&d, 10), BTreeSet::from(["v1".to_string()]));
    let pods = d.json(&["get", "pods"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 2);
    d.ok(&["rollout", "resume", "deployment/app"]);
    assert_eq!(status(&d).0, 0);
    assert_eq!(versions(&d, 10), BTreeSet::from(["v4".to_string()]));

    // Restart: new pods of the same version.
    let before: BTreeSet<String> = d.json(&["get", "pods"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    d.ok(&["rollout", "restart", "deployment/app"]);
    assert_eq!(status(&d).0, 0);
    wait_for("the old pods to go", 30, || {
        let now: BTreeSet<String> = d.json(&["get", "pods"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        (now.len() == 2 && now.is_disjoint(&before)).then_some(())
    });
    assert_eq!(versions(&d, 10), BTreeSet::from(["v4".to_string()]));
}

/// `hey` against the VIP for `secs` seconds at 200 requests per second,
/// a new connection each; returns (successes, report).
fn load(ip: &str, secs: u32) -> std::process::Child {
    std::process::Command::new("hey")
        .args([
            "-z",
            &format!("{secs}s"),
            "-c",
            "4",
            "-q",
            "50",
            "-t",
            "5",
            "-disable-keepalive",
            &format!("http://{ip}/"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run hey")
}

fn successes(report: &str) -> u64 {
    report
        .lines()
        .skip_while(|l| !l.contains("Status code distribution"))
        .find_map(|l| l.trim().strip_prefix("[200]").and_then(|r| r.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn a_rolling_update_of_four_replicas_under_load_fails_no_request() {
    let d = daemon();
    let four = |v: &str| app(v, false).replace("replicas: 2", "replicas: 4");
    apply(&d, &four("v1"));
    assert_eq!(status(&d).0, 0);
    let ip = d.json(&["get", "service", "app"])["spec"]["clusterIP"].as_str().unwrap().to_string();
    let hey = load(&ip, 25);
    std::thread::sleep(Duration::from_secs(3));
    apply(&d, &four("v2"));
    let (code, out) = status(&d);
    assert_eq!(code, 0, "{out}");
    let report = hey.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(!report.contains("Error distribution"), "{report}");
    assert!(!report.lines().any(|l| l.trim().starts_with('[') && !l.trim().starts_with("[200]")), "{report}");
    assert!(successes(&report) >= 4000, "{report}");
    assert_eq!(versions(&d, 10), BTreeSet::from(["v2".to_string()]));
}
