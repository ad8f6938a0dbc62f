//! System tests of Argo Rollouts run by berth: canary steps with exact
//! traffic weights on the VIP, blue-green with a preview and one atomic
//! switch, analysis with berth's own HTTP checks and with a real Prometheus,
//! and a daemon SIGKILLed mid-canary. Real binary, daemon, runc, nftables.
//! Traffic goes only to the daemon's VIPs (and the test's own exporter and
//! Prometheus on loopback), bounded in count and time.

mod berthd;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use berthd::Berthd;
use serde_json::{json, Value};
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

/// A container command answering `version` on :8080; a broken version
/// answers 404 to every request (nothing to serve).
fn serve(version: &str, broken: bool) -> String {
    if broken {
        "mkdir -p /w && exec httpd -f -p 8080 -h /w".to_string()
    } else {
        format!("mkdir -p /w && echo {version} > /w/index.html && exec httpd -f -p 8080 -h /w")
    }
}

/// Rollout `app` (`replicas`) with `strategy` (YAML, indented for
/// `spec.strategy`), behind Service `app` (and `app-preview`).
fn rollout(version: &str, broken: bool, replicas: u32, strategy: &str) -> String {
    let run = serve(version, broken);
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: app
spec:
  replicas: {replicas}
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
  strategy:
{strategy}
---
apiVersion: v1
kind: Service
metadata: {{name: app}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: app-preview}}
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

fn get(d: &Berthd) -> Value {
    d.api("GET", "/v1/objects/rollouts/default/app")
}

fn promote(d: &Berthd) -> Value {
    d.api_post("/v1/objects/rollouts/default/app/rollout", &json!({"action": "promote"}))
}

/// Waits until the rollout's status satisfies `f`; returns the rollout.
fn wait_status(d: &Berthd, what: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = get(d);
        if f(&r["status"]) {
            return r;
        }
        if r != Value::Null {
            last = r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}; last status: {}",
            last["status"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn healthy(d: &Berthd, secs: u64) -> Value {
    wait_status(d, "a healthy rollout", secs, |s| s["phase"] == "Healthy" && s["availableReplicas"] == s["replicas"])
}

fn vip(d: &Berthd, service: &str) -> String {
    d.json(&["get", "service", service])["spec"]["clusterIP"].as_str().unwrap().to_string()
}

/// `n` requests to `ip:80`, a new connection each; the versions answered
/// and how often. A failed request is counted as `ERROR`.
fn sample(ip: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let answer = (|| -> std::io::Result<String> {
            let addr = format!("{ip}:80").parse().unwrap();
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        let key = match answer {
            Ok(t) if t.starts_with("HTTP/1.0 200") || t.starts_with("HTTP/1.1 200") => {
                t.rsplit("\r\n\r\n").next().unwrap_or("").trim().to_string()
            }
            Ok(t) => t.lines().next().unwrap_or("").to_string(),
            Err(_) => "ERROR".to_string(),
        };
        *seen.entry(key).or_default() += 1;
    }
    seen
}

/// The share (percent) of `version` in a sample.
fn share(seen: &BTreeMap<String, usize>, version: &str) -> f64 {
    let all: usize = seen.values().sum();
    100.0 * *seen.get(version).unwrap_or(&0) as f64 / all as f64
}

/// `hey` against `ip` for `secs` seconds at 200 requests per second, a new
/// connection each.
fn load(ip: &str, secs: u32) -> std::process::Child {
    std::process::Command::new("hey")
        .args(["-z", &format!("{secs}s"), "-c", "4", "-q", "50", "-t", "5", "-disable-keepalive"])
        .arg(format!("http://{ip}/"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run hey")
}

/// (status code, count) lines of a hey report, and whether it saw errors.
fn report(child: std::process::Child) -> (BTreeMap<u16, u64>, String) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let codes = text
        .lines()
        .skip_while(|l| !l.contains("Status code distribution"))
        .filter_map(|l| {
            let l = l.trim().strip_prefix('[')?;
            let (code, rest) = l.split_once(']')?;
            Some((code.parse().ok()?, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    (codes, text)
}

const CANARY: &str = r#"    canary:
      steps:
        - setWeight: 1
        - pause: {}
        - setWeight: 20
        - pause: {duration: 15s}
        - setWeight: 50
        - pause: {duration: 15s}"#;

#[test]
fn a_canary_moves_through_its_weights_under_load_without_a_failed_request() {
    let d = daemon();
    apply(&d, &rollout("v1", false, 4, CANARY));
    healthy(&d, 90);
    let ip = vip(&d, "app");
    assert_eq!(sample(&ip, 20), BTreeMap::from([("v1".to_string(), 20)]));

    let hey = load(&ip, 75);
    std::thread::sleep(Duration::from_secs(2));
    apply(&d, &rollout("v2", false, 4, CANARY));
    // Step 1: 1 % of new connections, with one canary pod beside four.
    let r = wait_status(&d, "the pause at 1 %", 60, |s| s["phase"] == "Paused" && s["currentStepIndex"] == 1);
    assert_eq!(r["status"]["canary"]["weights"]["canary"]["weight"], 1);
    let seen = sample(&ip, 1000);
    assert!(share(&seen, "v2") <= 3.0, "at 1 %: {seen:?}");
    assert!(!seen.contains_key("ERROR"), "{seen:?}");
    // A pause without a duration waits for promote.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&d)["status"]["currentStepIndex"], 1);
    let out = d.ok(&["rollout", "promote", "rollout/app"]);
    assert!(out.contains("rollout.argoproj.io/app promoted"), "{out}");
    for weight in [20, 50] {
        wait_status(&d, &format!("weight {weight}"), 60, |s| s["canary"]["weights"]["canary"]["weight"] == weight);
        let seen = sample(&ip, 1000);
        let got = share(&seen, "v2");
        assert!((got - f64::from(weight)).abs() <= 5.0, "at {weight} %: {got:.1} % v2 in {seen:?}");
    }
    healthy(&d, 90);
    let (codes, text) = report(hey);
    assert!(!text.contains("Error distribution"), "{text}");
    assert!(codes.keys().all(|c| *c == 200), "{text}");
    assert!(codes.get(&200).copied().unwrap_or(0) >= 10_000, "{text}");
    assert_eq!(sample(&ip, 50), BTreeMap::from([("v2".to_string(), 50)]));
    let pods = d.json(&["get", "pods"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 4, "only the new revision's pods are left");
}

const ANALYZED: &str = r#"    canary:
      steps:
        - setWeight: 20
        - analysis: {templates: [{templateName: success-rate}]}
        - setWeight: 50
        - pause: {duration: 5s}"#;

const SUCCESS_RATE: &str = r#"---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  metrics:
    - name: success-rate
      interval: 2s
      count: 3
      successCondition: result >= 0.95
      failureLimit: 0
      provider: {berth: {httpCheck: {path: /, port: 8080}}}
    - name: ready-ratio
      interval: 2s
      count: 2
      successCondition: result >= 0.9
      provider: {berth: {probe: readiness}}
"#;

#[test]
fn a_broken_canary_is_aborted_by_its_analysis_and_a_good_one_passes() {
    let d = daemon();
    let app = |v: &str, broken: bool| rollout(v, broken, 2, ANALYZED) + SUCCESS_RATE;
    // A Rollout naming a template nobody applied is refused whole.
    let path = d.dir().join("alone.yaml");
    std::fs::write(&path, rollout("v1", false, 2, ANALYZED)).unwrap();
    let (code, err) = d.fails(&["apply", "-f", &path.display().to_string()]);
    assert_ne!(code, 0);
    assert!(err.contains("no AnalysisTemplate \"success-rate\""), "{err}");
    assert_eq!(get(&d)["kind"], "not_found", "nothing was applied");
    assert!(d.json(&["get", "services"])["items"].as_array().unwrap().is_empty());
    apply(&d, &app("v1", false));
    healthy(&d, 90);
    let ip = vip(&d, "app");
    let hey = load(&ip, 60);
    std::thread::sleep(Duration::from_secs(2));

    // v2 answers 404: the analysis fails and all traffic goes back to v1.
    // The canary can get traffic only between this apply and the abort
    // (which may come before a poll sees its 20 %).
    let applied_at = Instant::now();
    apply(&d, &app("v2", true));
    let r = wait_status(&d, "the abort", 60, |s| s["abort"] == true);
    let exposed = applied_at.elapsed();
    assert_eq!(r["status"]["phase"], "Degraded", "{}", r["status"]);
    assert_eq!(r["status"]["canary"]["weights"]["canary"]["weight"], 0);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("analysis of step 1 failed") && message.contains("success-rate"), "{message}");
    let runs = r["status"]["analysisRuns"].as_array().unwrap();
    assert!(runs.iter().any(|run| run["phase"] == "Failed" && run["metrics"][0]["lastValue"] == "0"), "{runs:?}");
    assert_eq!(sample(&ip, 200), BTreeMap::from([("v1".to_string(), 200)]));
    wait_for("the canary's pods to go", 30, || {
        let pods = d.json(&["get", "pods"]);
        (pods["items"].as_array().unwrap().len() == 2).then_some(())
    });

    // v3 is good: the analysis passes and the rollout completes.
    apply(&d, &app("v3", false));
    let r = healthy(&d, 90);
    let runs = r["status"]["analysisRuns"].as_array().unwrap();
    let passed = runs.iter().find(|run| run["name"] == "step-1" && run["phase"] == "Successful");
    let passed = passed.unwrap_or_else(|| panic!("no successful run in {runs:?}"));
    assert_eq!(passed["metrics"][0]["lastValue"], "1", "{passed}");
    assert_eq!(passed["metrics"][1]["lastValue"], "1", "every readiness probe passed: {passed}");
    assert_eq!(sample(&ip, 50), BTreeMap::from([("v3".to_string(), 50)]));

    // Only the broken canary's share could fail, and only while it had it.
    let (codes, text) = report(hey);
    assert!(!text.contains("Error distribution"), "connections failed: {text}");
    let failed: u64 = codes.iter().filter(|(c, _)| **c != 200).map(|(_, n)| n).sum();
    assert!(codes.keys().all(|c| *c == 200 || *c == 404), "{text}");
    let bound = (0.2 * 200.0 * (exposed.as_secs_f64() + 2.0) * 1.5) as u64;
    assert!(failed <= bound, "{failed} failed requests, more than the canary's share allows ({bound}): {text}");
    let events = d.json(&["get", "events"]);
    let reasons: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    for want in ["RolloutAborted", "AnalysisRunFailed", "AnalysisRunSuccessful", "RolloutCompleted"] {
        assert!(reasons.contains(&want), "no {want} event in {reasons:?}");
    }
}

const BLUE_GREEN: &str = r#"    blueGreen:
      activeService: app
      previewService: app-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 5"#;

#[test]
fn blue_green_previews_then_switches_at_once_under_load() {
    let d = daemon();
    apply(&d, &rollout("v1", false, 4, BLUE_GREEN));
    healthy(&d, 90);
    let (active, preview) = (vip(&d, "app"), vip(&d, "app-preview"));
    assert_eq!(sample(&preview, 20), BTreeMap::from([("v1".to_string(), 20)]));
    let hey = load(&active, 45);
    std::thread::sleep(Duration::from_secs(2));

    apply(&d, &rollout("v2", false, 4, BLUE_GREEN));
    let r = wait_status(&d, "the preview to be ready", 90, |s| s["phase"] == "Paused");
    assert_eq!(r["status"]["pauseConditions"][0]["reason"], "BlueGreenPause");
    assert_eq!(sample(&preview, 50), BTreeMap::from([("v2".to_string(), 50)]));
    assert_eq!(sample(&active, 50), BTreeMap::from([("v1".to_string(), 50)]));
    assert_eq!(d.json(&["get", "pods"])["items"].as_array().unwrap().len(), 8, "green beside blue");

    // The switch: green serves the first request after promote returns.
    let asked = Instant::now();
    let r = promote(&d);
    let returned = asked.elapsed();
    assert_eq!(r["status"]["blueGreen"]["activeSelector"], r["status"]["currentPodHash"], "{}", r["status"]);
    assert_eq!(sample(&active, 50), BTreeMap::from([("v2".to_string(), 50)]));
    eprintln!("promote returned after {returned:?}");
    assert!(returned < Duration::from_secs(2), "{returned:?}");

    // Blue stays through the scale-down delay, then goes.
    assert_eq!(d.json(&["get", "pods"])["items"].as_array().unwrap().len(), 8);
    healthy(&d, 60);
    wait_for("blue's pods to go", 60, || {
        (d.json(&["get", "pods"])["items"].as_array().unwrap().len() == 4).then_some(())
    });
    let (codes, text) = report(hey);
    assert!(!text.contains("Error distribution"), "{text}");
    assert!(codes.keys().all(|c| *c == 200), "{text}");
    assert!(codes.get(&200).copied().unwrap_or(0) >= 5_000, "{text}");
    // Promoting what is not paused is refused and changes nothing.
    let (code, err) = d.fails(&["rollout", "promote", "rollout/app"]);
    assert_ne!(code, 0);
    assert!(err.contains("no rollout in progress"), "{err}");
    let out = d.ok(&["rollout", "status", "rollout/app", "--timeout", "10s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    // Scaled like a Deployment.
    let out = d.ok(&["scale", "rollout/app", "--replicas", "2"]);
    assert!(out.contains("rollout.argoproj.io/app scaled"), "{out}");
    wait_for("two pods", 30, || (d.json(&["get", "pods"])["items"].as_array().unwrap().len() == 2).then_some(()));
    assert_eq!(d.json(&["get", "rollout", "app"])["spec"]["replicas"], 2);
}

#[test]
fn a_daemon_killed_mid_canary_keeps_the_split_and_finishes_the_rollout() {
    let mut d = daemon();
    let steps = "    canary:\n      steps:\n        - setWeight: 30\n        - pause: {}";
    apply(&d, &rollout("v1", false, 3, steps));
    healthy(&d, 90);
    let ip = vip(&d, "app");
    apply(&d, &rollout("v2", false, 3, steps));
    wait_status(&d, "the pause at 30 %", 60, |s| s["phase"] == "Paused" && s["currentStepIndex"] == 1);
    let pods_before = d.json(&["get", "pods"]);
    let names = |p: &Value| -> Vec<String> {
        let mut n: Vec<String> = p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };

    d.kill_9();
    // The kernel keeps serving the split with no daemon at all.
    let seen = sample(&ip, 1000);
    assert!((share(&seen, "v2") - 30.0).abs() <= 5.0, "daemon down: {seen:?}");
    d.restart();
    let seen = sample(&ip, 1000);
    assert!((share(&seen, "v2") - 30.0).abs() <= 5.0, "after the restart: {seen:?}");
    let r = get(&d);
    assert_eq!(r["status"]["currentStepIndex"], 1, "{}", r["status"]);
    assert_eq!(r["status"]["canary"]["weights"]["canary"]["weight"], 30);
    assert_eq!(names(&d.json(&["get", "pods"])), names(&pods_before), "no pod was replaced");

    // Abort from the CLI: all traffic back on v1 at once; status fails.
    d.ok(&["rollout", "abort", "rollout/app"]);
    wait_status(&d, "the abort", 30, |s| s["abort"] == true);
    assert_eq!(sample(&ip, 100), BTreeMap::from([("v1".to_string(), 100)]));
    let (code, err) = d.fails(&["rollout", "status", "rollout/app", "--timeout", "10s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("aborted by the user"), "{err}");
    // Resume retries from the first step; promote finishes it.
    d.ok(&["rollout", "resume", "rollout/app"]);
    wait_status(&d, "the pause at 30 % again", 60, |s| s["phase"] == "Paused" && s["currentStepIndex"] == 1);
    d.ok(&["rollout", "promote", "rollout/app"]);
    let out = d.ok(&["rollout", "status", "rollout/app", "--timeout", "90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(sample(&ip, 50), BTreeMap::from([("v2".to_string(), 50)]));
    let history = d.json(&["rollout", "history", "rollout/app"]);
    assert_eq!(history["revisions"].as_array().unwrap().len(), 2, "{history}");
    let table = d.ok(&["get", "rollouts", "-o", "wide"]);
    assert!(table.contains("Canary") && table.contains("Healthy"), "{table}");
}

/// A test exporter on loopback: `/metrics` answers `app_error_ratio` with
/// the value in `ratio` (thousandths). Serves until `stop` is set.
fn exporter(
    ratio: std::sync::Arc<std::sync::atomic::AtomicU32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u16, std::thread::JoinHandle<()>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).ok();
                    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let body = format!(
                        "# TYPE app_error_ratio gauge\napp_error_ratio {}\n",
                        f64::from(ratio.load(Ordering::Relaxed)) / 1000.0
                    );
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, thread)
}

/// Debian's Prometheus on a free loopback port, scraping `target` every
/// second; killed by PID when dropped.
struct Prometheus {
    child: std::process::Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: u16) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("run prometheus (Debian package prometheus)");
        let p = Prometheus { child, port };
        wait_for("Prometheus to be ready and to have scraped the exporter", 60, || {
            let out = std::process::Command::new("curl")
                .args(["-s", "-m", "2", &format!("http://127.0.0.1:{port}/api/v1/query?query=app_error_ratio")])
                .output()
                .ok()?;
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            (!v["data"]["result"].as_array()?.is_empty()).then_some(())
        });
        p
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_analysis_passes_a_good_canary_aborts_a_bad_one_and_an_unreachable_server_is_an_error() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let d = daemon();
    let ratio = std::sync::Arc::new(AtomicU32::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (target, thread) = exporter(ratio.clone(), stop.clone());
    struct Stop(std::sync::Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
            if let Some(t) = self.1.take() {
                let _ = t.join();
            }
        }
    }
    let _stop = Stop(stop, Some(thread));
    let prometheus = Prometheus::start(d.dir(), target);

    let steps = "    canary:\n      steps:\n        - setWeight: 50\n        - analysis: {templates: [{templateName: errors}], args: [{name: server, value: \"SERVER\"}]}";
    let template = r#"---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  args: [{name: server}]
  metrics:
    - name: error-ratio
      interval: 1s
      count: 2
      failureCondition: result > 0.1
      failureLimit: 0
      consecutiveErrorLimit: 1
      provider:
        prometheus: {address: "{{args.server}}", query: "max(app_error_ratio)"}
"#;
    let server = format!("http://127.0.0.1:{}", prometheus.port);
    let app = |v: &str, server: &str| rollout(v, false, 2, steps).replace("SERVER", server) + template;
    apply(&d, &app("v1", &server));
    healthy(&d, 90);

    // The query says 0 errors: the canary passes.
    apply(&d, &app("v2", &server));
    // Until the reconciler has seen v2, the status is still v1's healthy
    // one: wait for v2's analysis to have run.
    let r = wait_status(&d, "v2 healthy after its analysis", 90, |s| {
        s["phase"] == "Healthy"
            && s["availableReplicas"] == s["replicas"]
            && s["analysisRuns"].as_array().is_some_and(|runs| !runs.is_empty())
    });
    let runs = r["status"]["analysisRuns"].as_array().unwrap();
    assert!(runs.iter().any(|run| run["phase"] == "Successful" && run["metrics"][0]["lastValue"] == "0"), "{runs:?}");

    // Half the requests fail: aborted, all traffic back on v2.
    ratio.store(500, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    apply(&d, &app("v3", &server));
    let r = wait_status(&d, "the abort", 90, |s| s["abort"] == true);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("error-ratio") && message.contains("failed"), "{message}");
    assert_eq!(sample(&vip(&d, "app"), 50), BTreeMap::from([("v2".to_string(), 50)]));

    // A server that cannot be reached is an error, never a success: two in
    // a row pass the limit of one and fail the run.
    ratio.store(0, Ordering::Relaxed);
    let nowhere = "http://127.0.0.1:1";
    apply(&d, &app("v4", nowhere));
    // (Until the reconciler sees v4, the status still tells of v3's abort.)
    let r = wait_status(&d, "the abort", 90, |s| {
        s["abort"] == true && s["message"].as_str().is_some_and(|m| m.contains("consecutive errors"))
    });
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("consecutive errors") && message.contains("cannot be reached"), "{message}");
    assert_eq!(sample(&vip(&d, "app"), 50), BTreeMap::from([("v2".to_string(), 50)]));
}

#[test]
fn a_crash_looping_canary_is_aborted_by_its_restarts_analysis() {
    let d = daemon();
    let strategy = "    canary:\n      analysis: {templates: [{templateName: restarts}]}\n      steps:\n        - setWeight: 50\n        - pause: {}";
    let template = r#"---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: restarts}
spec:
  metrics:
    - name: restarts
      interval: 3s
      failureCondition: result > 0
      failureLimit: 0
      provider: {berth: {restarts: {}}}
"#;
    apply(&d, &(rollout("v1", false, 2, strategy) + template));
    healthy(&d, 90);
    let ip = vip(&d, "app");
    // v2 exits at once: its pod never becomes ready, so it never gets
    // traffic, and its restarts fail the background analysis.
    let crashing = rollout("v2", false, 2, strategy).replace(&serve("v2", false), "exit 1");
    assert!(crashing.contains("exit 1"));
    apply(&d, &(crashing + template));
    let r = wait_status(&d, "the abort", 90, |s| s["abort"] == true);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("background analysis failed") && message.contains("restarts"), "{message}");
    assert_eq!(sample(&ip, 100), BTreeMap::from([("v1".to_string(), 100)]));
    wait_for("the canary's pod to go", 30, || {
        (d.json(&["get", "pods"])["items"].as_array().unwrap().len() == 2).then_some(())
    });
}

#[test]
fn a_canary_that_makes_no_progress_is_aborted_at_its_deadline_unless_turned_off() {
    let d = daemon();
    let steps = "    canary:\n      steps:\n        - setWeight: 50\n        - pause: {}";
    let app = |v: &str, crashing: bool| {
        let text = rollout(v, false, 2, steps)
            .replace("spec:\n  replicas: 2", "spec:\n  progressDeadlineSeconds: 6\n  replicas: 2");
        if crashing {
            text.replace(&serve(v, false), "exit 1")
        } else {
            text
        }
    };
    apply(&d, &app("v1", false));
    healthy(&d, 90);
    let ip = vip(&d, "app");
    apply(&d, &app("v2", true));
    let started = Instant::now();
    let r = wait_status(&d, "the abort at the deadline", 60, |s| s["abort"] == true);
    assert!(started.elapsed() >= Duration::from_secs(5), "aborted before the deadline: {}", r["status"]);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("progressDeadlineSeconds (6 s)"), "{message}");
    assert_eq!(sample(&ip, 50), BTreeMap::from([("v1".to_string(), 50)]));

    // Turned off: the rollout only waits.
    let off = app("v3", true).replace(
        "metadata:\n  name: app\n",
        "metadata:\n  name: app\n  annotations: {berth.dev/auto-rollback: \"false\"}\n",
    );
    assert!(off.contains("auto-rollback"));
    apply(&d, &off);
    std::thread::sleep(Duration::from_secs(12));
    let r = get(&d);
    assert_eq!(r["status"]["abort"], false, "{}", r["status"]);
    assert_eq!(r["status"]["phase"], "Progressing", "{}", r["status"]);
    assert_eq!(sample(&ip, 50), BTreeMap::from([("v1".to_string(), 50)]));
}
