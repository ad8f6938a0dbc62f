//! The Argo Rollouts reconciler's blue-green and analysis paths on a fake
//! host, pass by pass on virtual time: no root, no runc, no sleeping. What
//! is checked is what a user or a client sees: the rollout's status, the
//! pods and the containers that run, where each Service's VIP sends new
//! connections, and events. The only network is a tiny fake Prometheus on
//! 127.0.0.1, answering the reconciler's queries with a fixed value.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::api::{ApplyRequest, ManifestFile, RolloutRequest};
use berth_core::clock::Clock;
use serde_json::Value;

use super::tests::{pods, running, until_with};
use super::Declared;
use crate::testlab::Lab;

fn manifest(text: String) -> ApplyRequest {
    ApplyRequest { files: vec![ManifestFile { name: "app.yaml".into(), text }], dry_run: false }
}

/// The pod template of rollout `app` at `version`, indented for
/// `spec.template`.
fn template(version: &str) -> String {
    format!(
        r#"    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
        - name: web
          image: app:1
          env: [{{name: VERSION, value: "{version}"}}]
          ports: [{{containerPort: 8080}}]"#
    )
}

/// Service `name` in front of the rollout's pods.
fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: app}}\n  \
         ports: [{{port: 80, targetPort: 8080}}]\n"
    )
}

/// Blue-green rollout `app` at `version`: active Service `app`, preview
/// Service `app-preview`, promoted by hand, the old pods kept 10 s after
/// the switch.
fn blue_green(version: &str) -> ApplyRequest {
    analysed_blue_green(version, "", "")
}

/// [`blue_green`] with more of `spec.strategy.blueGreen` (`extra`, lines
/// indented by six spaces) and more documents (`docs`, each ending in
/// `---`).
fn analysed_blue_green(version: &str, extra: &str, docs: &str) -> ApplyRequest {
    let template = template(version);
    manifest(format!(
        r#"{docs}apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
{template}
  strategy:
    blueGreen:
      activeService: app
      previewService: app-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 10
{extra}---
{}---
{}"#,
        service("app"),
        service("app-preview")
    ))
}

/// Canary rollout `app` at `version`: half the traffic to the new pods,
/// then the analysis `analysis` (a RolloutAnalysis, inline YAML) of the
/// AnalysisTemplate document `check`, then the rest.
fn analysed_canary(version: &str, analysis: &str, check: &str) -> ApplyRequest {
    let template = template(version);
    manifest(format!(
        r#"{check}---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
{template}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - analysis: {analysis}
---
{}"#,
        service("app")
    ))
}

/// Restarts of the canary's containers, twice, 5 s apart: one fails it.
const NO_RESTARTS: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: no-restarts}
spec:
  metrics:
    - name: restarts
      interval: 5s
      count: 2
      failureCondition: result > 0
      provider:
        berth: {restarts: {}}
"#;

fn running_hashes(d: &Declared) -> BTreeSet<String> {
    running(d).into_iter().map(|p| p.hash).collect()
}

fn set(hashes: &[&str]) -> BTreeSet<String> {
    hashes.iter().map(|h| h.to_string()).collect()
}

fn status(d: &Declared) -> Value {
    d.get("rollouts", "default", "app", false).map(|r| r["status"].clone()).unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// The revisions of the pods Service `name`'s VIP sends new connections
/// to, one entry per backend, sorted: what is programmed into the kernel.
fn served_by(lab: &Lab, d: &Declared, name: &str) -> Vec<String> {
    let Some(net) = lab.nets.service(&format!("default/{name}")).unwrap() else { return Vec::new() };
    let all = pods(d);
    let mut out: Vec<String> = net
        .ports
        .iter()
        .flat_map(|p| p.backends.iter())
        .map(|b| {
            let pod = all.iter().find(|p| p.ip.as_deref().and_then(|i| i.parse::<Ipv4Addr>().ok()) == Some(b.addr));
            pod.map_or_else(|| format!("unknown {}", b.addr), |p| p.hash.clone())
        })
        .collect();
    out.sort();
    out
}

fn sorted(hashes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = hashes.iter().map(|h| h.to_string()).collect();
    v.sort();
    v
}

/// The share (percent) of Service `name`'s new connections each revision
/// gets.
fn shares(lab: &Lab, d: &Declared, name: &str) -> std::collections::BTreeMap<String, u32> {
    let Some(net) = lab.nets.service(&format!("default/{name}")).unwrap() else { return Default::default() };
    let all = pods(d);
    let mut out = std::collections::BTreeMap::new();
    for b in net.ports.iter().take(1).flat_map(|p| p.backends.iter()) {
        let pod = all.iter().find(|p| p.ip.as_deref().and_then(|i| i.parse::<Ipv4Addr>().ok()) == Some(b.addr));
        *out.entry(pod.map_or_else(|| format!("unknown {}", b.addr), |p| p.hash.clone())).or_default() +=
            u32::from(b.weight);
    }
    out
}

async fn until(lab: &Lab, d: &Arc<Declared>, what: &str, done: impl Fn(&Declared) -> bool) {
    until_with(lab, d, what, done, |d| format!("status: {:#}; pods: {:#?}", status(d), pods(d))).await
}

/// Reconcile passes for `span` of virtual time; `holds` must hold after
/// every one of them.
async fn throughout(lab: &Lab, d: &Arc<Declared>, span: Duration, what: &str, holds: impl Fn(&Declared) -> bool) {
    let end = lab.fakes.clock.now() + chrono::Duration::from_std(span).unwrap();
    while lab.fakes.clock.now() < end {
        d.reconcile().await.unwrap();
        assert!(holds(d), "{what}: broken at {}; status: {:#}", lab.fakes.clock.now(), status(d));
        tokio::time::sleep(Duration::from_millis(100)).await;
        lab.fakes.clock.advance(Duration::from_millis(100));
    }
}

/// Everything observable about the rollout and its pods.
#[derive(Debug, PartialEq)]
struct Snapshot {
    status: Value,
    pods: Vec<(Value, Option<String>)>,
    launched: usize,
    running: Vec<String>,
    rule_changes: usize,
    services: Vec<Option<crate::networks::ServiceNet>>,
    events: usize,
}

fn snapshot(lab: &Lab, d: &Declared) -> Snapshot {
    let mut pods: Vec<(Value, Option<String>)> =
        pods(d).into_iter().map(|p| (serde_json::to_value(&p).unwrap(), p.deleting.clone())).collect();
    pods.sort_by_key(|(p, _)| p["name"].as_str().unwrap_or_default().to_string());
    Snapshot {
        status: status(d),
        pods,
        launched: lab.fakes.shims.launched().len(),
        running: lab.fakes.shims.running(),
        rule_changes: lab.fakes.nft.calls().len(),
        services: ["default/app", "default/app-preview"].iter().map(|s| lab.nets.service(s).unwrap()).collect(),
        events: lab.events.history(None).unwrap().len(),
    }
}

/// The same state reconciled again and again with no time passing (passes
/// replayed, as a restarted reconciler replays them; this service's memory
/// is kept): nothing changes, no pod or container is made, no nftables
/// call is made, no event is repeated.
async fn replay(lab: &Lab, d: &Arc<Declared>) {
    let before = snapshot(lab, d);
    for _ in 0..5 {
        d.reconcile().await.unwrap();
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(snapshot(lab, d), before, "a replayed pass changed something");
}

async fn promote(d: &Arc<Declared>) -> Result<Value, String> {
    d.rollout_argo("default", "app", RolloutRequest::Promote { full: false }).await.map_err(|e| e.to_string())
}

async fn abort(d: &Arc<Declared>) -> Value {
    d.rollout_argo("default", "app", RolloutRequest::Abort {}).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_blue_green_previews_the_new_revision_switches_on_promote_and_scales_blue_down_after_the_delay() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(blue_green("v1")).await.unwrap();
    until(&lab, &d, "v1 active and healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let s = status(&d);
    let blue = text(&s["stableRS"]);
    assert_eq!(s["blueGreen"]["activeSelector"], blue);
    assert_eq!(s["blueGreen"]["previewSelector"], blue, "nothing to preview: the preview is the active revision");
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()]);
    assert_eq!(served_by(&lab, &d, "app-preview"), [blue.as_str(), blue.as_str()]);

    // v2: green pods come up beside blue, behind the preview Service only.
    d.apply(blue_green("v2")).await.unwrap();
    d.reconcile().await.unwrap();
    let e = promote(&d).await.unwrap_err();
    assert!(e.contains("not paused"), "no switch before the preview pods are up: {e}");
    until(&lab, &d, "v2's preview up, waiting for a promote", |d| {
        status(d)["phase"] == "Paused" && running(d).len() == 4
    })
    .await;
    let s = status(&d);
    let green = text(&s["currentPodHash"]);
    assert_ne!(green, blue);
    assert_eq!(s["stableRS"], blue);
    assert_eq!(s["blueGreen"]["activeSelector"], blue);
    assert_eq!(s["blueGreen"]["previewSelector"], green);
    assert_eq!(s["pauseConditions"][0]["reason"], "BlueGreenPause");
    assert_eq!(s["updatedReplicas"], 2);
    assert_eq!(running_hashes(&d), set(&[&blue, &green]));
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()], "the active Service still sends to blue");
    assert_eq!(
        served_by(&lab, &d, "app-preview"),
        [green.as_str(), green.as_str()],
        "the preview Service sends to green"
    );
    assert_eq!(lab.events_of("RolloutUpdated"), 1);
    assert_eq!(lab.events_of("SwitchActive"), 0);
    // Waiting for a person is not a stall: a long wait changes nothing.
    throughout(&lab, &d, Duration::from_secs(20), "paused with the preview", |d| {
        status(d)["phase"] == "Paused" && running(d).len() == 4
    })
    .await;
    replay(&lab, &d).await;

    // Promote: the active Service switches before the call returns.
    let promoted_at = lab.fakes.clock.now();
    let r = promote(&d).await.unwrap();
    assert_eq!(r["status"]["blueGreen"]["activeSelector"], green);
    assert_eq!(served_by(&lab, &d, "app"), [green.as_str(), green.as_str()]);
    assert_eq!(lab.events_of("SwitchActive"), 1);
    // Blue keeps running through scaleDownDelaySeconds (for a switch back).
    throughout(&lab, &d, Duration::from_secs(9), "blue kept through the scale-down delay", |d| {
        running_hashes(d) == set(&[&blue, &green]) && status(d)["phase"] == "Progressing"
    })
    .await;
    assert_eq!(served_by(&lab, &d, "app"), [green.as_str(), green.as_str()]);
    replay(&lab, &d).await;
    until(&lab, &d, "blue scaled down, v2 healthy", |d| {
        status(d)["phase"] == "Healthy" && pods(d).len() == 2 && running_hashes(d) == set(&[&green])
    })
    .await;
    let waited = lab.fakes.clock.now() - promoted_at;
    assert!(waited >= chrono::Duration::seconds(10), "blue went {waited} after the switch");
    let s = status(&d);
    assert_eq!(s["stableRS"], green);
    assert_eq!(s["blueGreen"]["activeSelector"], green);
    assert_eq!(s["blueGreen"]["previewSelector"], green);
    assert_eq!(s["abort"], false);
    assert_eq!(lab.events_of("RolloutCompleted"), 1);
    assert_eq!(lab.fakes.shims.running().len(), 2);
    assert_eq!(lab.fakes.shims.launched().len(), 4, "two pods per revision, none restarted");
    assert_eq!(served_by(&lab, &d, "app"), [green.as_str(), green.as_str()]);
    assert_eq!(served_by(&lab, &d, "app-preview"), [green.as_str(), green.as_str()]);
    replay(&lab, &d).await;
}

#[tokio::test(start_paused = true)]
async fn aborting_a_blue_green_keeps_or_switches_back_to_the_old_active_revision() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(blue_green("v1")).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let blue = text(&status(&d)["stableRS"]);
    let blue_pods: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();
    let blue_uids = |d: &Declared| -> BTreeSet<String> {
        running(d).into_iter().filter(|p| p.hash == blue).map(|p| p.uid).collect()
    };

    // Aborted while previewing: the active Service never moved; green goes.
    d.apply(blue_green("v2")).await.unwrap();
    until(&lab, &d, "v2 previewed", |d| status(d)["phase"] == "Paused" && running(d).len() == 4).await;
    let green = text(&status(&d)["currentPodHash"]);
    let r = abort(&d).await;
    assert_eq!(r["status"]["phase"], "Degraded");
    assert_eq!(r["status"]["abort"], true);
    assert_eq!(r["status"]["blueGreen"]["activeSelector"], blue);
    assert_eq!(r["status"]["stableRS"], blue);
    assert_eq!(r["status"]["conditions"][0]["reason"], "RolloutAborted");
    until(&lab, &d, "green's pods gone", |d| pods(d).len() == 2 && running_hashes(d) == set(&[&blue])).await;
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()]);
    assert_eq!(blue_uids(&d), blue_pods, "blue was never touched");
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(lab.events_of("SwitchActive"), 0);
    let e = promote(&d).await.unwrap_err();
    assert!(e.contains("aborted"), "{e}");
    assert_eq!(status(&d)["phase"], "Degraded", "a refused promote changes nothing");
    replay(&lab, &d).await;

    // Re-applying the active template ends the abort.
    d.apply(blue_green("v1")).await.unwrap();
    until(&lab, &d, "v1 healthy again", |d| status(d)["phase"] == "Healthy").await;
    assert_eq!(status(&d)["abort"], false);
    assert_eq!(blue_uids(&d), blue_pods);

    // Aborted after the switch, within the scale-down delay: the active
    // Service goes straight back to blue, which kept running.
    d.apply(blue_green("v2")).await.unwrap();
    until(&lab, &d, "v2 previewed again", |d| status(d)["phase"] == "Paused" && running(d).len() == 4).await;
    promote(&d).await.unwrap();
    assert_eq!(served_by(&lab, &d, "app"), [green.as_str(), green.as_str()]);
    throughout(&lab, &d, Duration::from_secs(3), "switched, blue kept", |d| running_hashes(d) == set(&[&blue, &green]))
        .await;
    let r = abort(&d).await;
    assert_eq!(r["status"]["phase"], "Degraded");
    assert_eq!(r["status"]["blueGreen"]["activeSelector"], blue);
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()], "switched back before the abort returns");
    until(&lab, &d, "green's pods gone again", |d| pods(d).len() == 2 && running_hashes(d) == set(&[&blue])).await;
    assert_eq!(blue_uids(&d), blue_pods, "blue served again without a restart");
    assert_eq!(lab.events_of("RolloutAborted"), 2);
    assert_eq!(lab.events_of("SwitchActive"), 2, "to green, and back to blue");
    assert_eq!(lab.events_of("RolloutCompleted"), 0);
    assert_eq!(lab.fakes.shims.running().len(), 2);
    replay(&lab, &d).await;
}

/// The latest analysis run called `name` (`step-1`, `pre-promotion`,
/// `post-promotion`), as the status reports it.
fn run_named(d: &Declared, name: &str) -> Value {
    let s = status(d);
    s["analysisRuns"].as_array().and_then(|r| r.iter().rev().find(|r| r["name"] == name).cloned()).unwrap_or_default()
}

/// The latest run of a canary's analysis step.
fn step_run(d: &Declared) -> Value {
    run_named(d, "step-1")
}

#[tokio::test(start_paused = true)]
async fn a_canary_analysis_that_passes_lets_the_rollout_complete() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = "{templates: [{templateName: no-restarts}]}";
    d.apply(analysed_canary("v1", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    assert_eq!(lab.events_of("AnalysisRunStarted"), 0, "the first revision is not analysed");
    let stable = text(&status(&d)["stableRS"]);

    let started = lab.fakes.clock.now();
    d.apply(analysed_canary("v2", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "the first measurement counted", |d| step_run(d)["metrics"][0]["measured"] == 1).await;
    let s = status(&d);
    let canary = text(&s["currentPodHash"]);
    assert_eq!(s["phase"], "Progressing");
    assert_eq!(s["stableRS"], stable);
    assert_eq!(s["currentStepIndex"], 1);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 50);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Running");
    assert_eq!(run["revision"], canary);
    assert_eq!(run["metrics"][0]["lastValue"], "0");
    assert_eq!(running_hashes(&d), set(&[&stable, &canary]));
    replay(&lab, &d).await;

    until(&lab, &d, "v2 healthy and alone", |d| {
        let s = status(d);
        s["phase"] == "Healthy" && s["stableRS"] != stable && pods(d).len() == 2 && running_hashes(d).len() == 1
    })
    .await;
    let s = status(&d);
    assert_eq!(s["stableRS"], canary);
    assert_eq!(s["abort"], false);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Successful");
    assert_eq!(run["metrics"][0]["measured"], 2);
    assert_eq!(run["metrics"][0]["successful"], 2);
    assert_eq!(run["metrics"][0]["failed"], 0);
    // Measured 5 s and 10 s in: the rollout waited for both.
    let took = lab.fakes.clock.now() - started;
    assert!(took >= chrono::Duration::seconds(10), "completed {took} after the apply");
    assert_eq!(lab.events_of("AnalysisRunStarted"), 1);
    assert_eq!(lab.events_of("AnalysisRunSuccessful"), 1);
    assert_eq!(lab.events_of("AnalysisRunFailed"), 0);
    assert_eq!(lab.events_of("RolloutAborted"), 0);
    assert_eq!(lab.events_of("RolloutCompleted"), 1);
    assert_eq!(served_by(&lab, &d, "app"), [canary.as_str(), canary.as_str()]);
    replay(&lab, &d).await;
}

#[tokio::test(start_paused = true)]
async fn a_canary_whose_pods_crash_during_its_analysis_is_aborted_back_to_stable() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = "{templates: [{templateName: no-restarts}]}";
    d.apply(analysed_canary("v1", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let stable = text(&status(&d)["stableRS"]);
    let stable_pods: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();

    d.apply(analysed_canary("v2", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "the analysis running", |d| step_run(d)["phase"] == "Running").await;
    let canary = text(&status(&d)["currentPodHash"]);
    assert_eq!(served_by(&lab, &d, "app"), sorted(&[&canary, &stable, &stable]), "one canary pod beside stable");
    let split = shares(&lab, &d, "app");
    assert_eq!(split, [(canary.clone(), 50), (stable.clone(), 50)].into_iter().collect(), "half the traffic");

    // The canary's container crashes; it is restarted, and counted.
    let pod = running(&d).into_iter().find(|p| p.hash == canary).expect("a running canary pod");
    assert!(lab.fakes.shims.exit(pod.containers["web"].id.as_deref().unwrap(), 1, None));
    until(&lab, &d, "aborted, back on stable", |d| {
        let s = status(d);
        s["phase"] == "Degraded" && pods(d).len() == 2 && running_hashes(d) == set(&[&stable])
    })
    .await;
    let s = status(&d);
    assert_eq!(s["abort"], true);
    assert_eq!(s["stableRS"], stable);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 0);
    assert_eq!(s["conditions"][0]["reason"], "RolloutAborted");
    let message = text(&s["message"]);
    assert!(message.contains("analysis of step 1 failed") && message.contains("restarts"), "{message}");
    let run = step_run(&d);
    assert_eq!(run["phase"], "Failed");
    assert_eq!(run["metrics"][0]["failed"], 1);
    assert_eq!(run["metrics"][0]["lastValue"], "1");
    assert_eq!(lab.events_of("AnalysisRunFailed"), 1);
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(lab.events_of("RolloutCompleted"), 0);
    let stable_now: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();
    assert_eq!(stable_now, stable_pods, "the stable pods were never touched");
    assert_eq!(served_by(&lab, &d, "app"), [stable.as_str(), stable.as_str()]);
    let e = promote(&d).await.unwrap_err();
    assert!(e.contains("aborted"), "{e}");
    replay(&lab, &d).await;
}

/// A Prometheus on 127.0.0.1 answering every instant query with `value`
/// (a vector of one sample), recording the queries asked. It lives as long
/// as the test's runtime.
struct FakePrometheus {
    url: String,
    value: Arc<Mutex<String>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl FakePrometheus {
    async fn start(value: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let value = Arc::new(Mutex::new(value.to_string()));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (v, q) = (Arc::clone(&value), Arc::clone(&queries));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 << 10 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
                let query = line.split_whitespace().nth(1).and_then(|t| t.split_once("query=")).map(|(_, q)| q);
                q.lock().unwrap().push(percent_decode(query.unwrap_or_default()));
                let value = v.lock().unwrap().clone();
                let body = serde_json::json!({
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1_767_225_600, value]}]},
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self { url, value, queries }
    }

    fn answer(&self, value: &str) {
        *self.value.lock().unwrap() = value.to_string();
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

/// A URL query value (up to the next `&`), decoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.split('&').next().unwrap_or_default().as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The error rate of Service `{{args.service}}`, from the Prometheus at
/// `{{args.prometheus}}`: below 1 % passes, 5 % or more fails.
const ERROR_RATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  args: [{name: prometheus}, {name: service}]
  metrics:
    - name: error-rate
      successCondition: result < 0.01
      failureCondition: result >= 0.05
      provider:
        prometheus:
          address: "{{args.prometheus}}"
          query: 'sum(rate(http_errors_total{service="{{args.service}}"}[1m]))'
"#;

#[tokio::test(start_paused = true)]
async fn a_prometheus_analysis_promotes_a_good_canary_and_aborts_a_bad_one() {
    let prometheus = FakePrometheus::start("0.001").await;
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = format!(
        "{{templates: [{{templateName: error-rate}}], args: [{{name: prometheus, value: '{}'}}, {{name: service, value: app}}]}}",
        prometheus.url
    );
    d.apply(analysed_canary("v1", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let v1 = text(&status(&d)["stableRS"]);

    // 0.1 % errors: v2 passes and completes.
    d.apply(analysed_canary("v2", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v2 healthy", |d| {
        let s = status(d);
        s["phase"] == "Healthy" && s["stableRS"] != v1 && pods(d).len() == 2 && running_hashes(d).len() == 1
    })
    .await;
    let v2 = text(&status(&d)["stableRS"]);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Successful");
    assert_eq!(run["metrics"][0]["lastValue"], "0.001");
    assert_eq!(prometheus.queries(), [r#"sum(rate(http_errors_total{service="app"}[1m]))"#], "the query, rendered");
    assert_eq!(lab.events_of("AnalysisRunSuccessful"), 1);

    // 20 % errors: v3 fails its analysis and is aborted back to v2.
    prometheus.answer("0.2");
    d.apply(analysed_canary("v3", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v3 aborted, back on v2", |d| {
        status(d)["phase"] == "Degraded" && pods(d).len() == 2 && running_hashes(d) == set(&[&v2])
    })
    .await;
    let s = status(&d);
    assert_eq!(s["stableRS"], v2);
    assert_eq!(s["abort"], true);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 0);
    let message = text(&s["message"]);
    assert!(message.contains("analysis of step 1 failed") && message.contains("error-rate"), "{message}");
    let run = step_run(&d);
    assert_eq!(run["phase"], "Failed");
    assert_eq!(run["metrics"][0]["lastValue"], "0.200");
    assert_eq!(prometheus.queries().len(), 2, "one measurement per run (no interval)");
    assert_eq!(lab.events_of("AnalysisRunFailed"), 1);
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(served_by(&lab, &d, "app"), [v2.as_str(), v2.as_str()]);
    replay(&lab, &d).await;
    assert_eq!(prometheus.queries().len(), 2, "a replayed pass measures nothing again");
}

#[tokio::test(start_paused = true)]
async fn the_endpoints_of_a_blue_green_s_services_list_only_the_pods_they_send_to() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(blue_green("v1")).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let blue = text(&status(&d)["stableRS"]);
    d.apply(blue_green("v2")).await.unwrap();
    until(&lab, &d, "v2 previewed", |d| status(d)["phase"] == "Paused" && running(d).len() == 4).await;
    let green = text(&status(&d)["currentPodHash"]);

    // `berth get endpoints`: the addresses of the pods each Service's VIP
    // sends to (Argo's selector carries rollouts-pod-template-hash).
    let listed = |name: &str| -> Vec<String> {
        let ep = d.get("endpoints", "default", name, false).unwrap();
        let all = pods(&d);
        let mut hashes: Vec<String> = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                let ip = a["ip"].as_str().unwrap_or_default().to_string();
                all.iter().find(|p| p.ip.as_deref() == Some(ip.as_str())).map_or(ip, |p| p.hash.clone())
            })
            .collect();
        hashes.sort();
        hashes
    };
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()]);
    assert_eq!(listed("app"), [blue.as_str(), blue.as_str()], "the active Service's endpoints");
    assert_eq!(listed("app-preview"), [green.as_str(), green.as_str()], "the preview Service's endpoints");
}

/// Both analyses of a blue-green: restarts of the new pods, 5 s and 10 s in.
const BOTH_ANALYSES: &str = "      prePromotionAnalysis: {templates: [{templateName: no-restarts}]}
      postPromotionAnalysis: {templates: [{templateName: no-restarts}]}
";

#[tokio::test(start_paused = true)]
async fn a_blue_green_s_analyses_gate_the_switch_and_a_failed_post_promotion_analysis_switches_back() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let docs = format!("{NO_RESTARTS}---\n");
    d.apply(analysed_blue_green("v1", BOTH_ANALYSES, &docs)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    assert_eq!(lab.events_of("AnalysisRunStarted"), 0, "the first revision is not analysed");
    let blue = text(&status(&d)["stableRS"]);
    let blue_pods: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();

    // Pre-promotion: green is measured behind the preview Service, and
    // only then does the rollout wait for a promote.
    let applied = lab.fakes.clock.now();
    d.apply(analysed_blue_green("v2", BOTH_ANALYSES, &docs)).await.unwrap();
    until(&lab, &d, "the pre-promotion analysis running", |d| {
        run_named(d, "pre-promotion")["phase"] == "Running" && running(d).len() == 4
    })
    .await;
    let s = status(&d);
    let green = text(&s["currentPodHash"]);
    assert_eq!(s["phase"], "Progressing");
    assert_eq!(run_named(&d, "pre-promotion")["revision"], green);
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()]);
    assert_eq!(served_by(&lab, &d, "app-preview"), [green.as_str(), green.as_str()]);
    until(&lab, &d, "the pre-promotion analysis passed, waiting for a promote", |d| status(d)["phase"] == "Paused")
        .await;
    let run = run_named(&d, "pre-promotion");
    assert_eq!(run["phase"], "Successful");
    assert_eq!(run["metrics"][0]["measured"], 2);
    let took = lab.fakes.clock.now() - applied;
    assert!(took >= chrono::Duration::seconds(10), "paused {took} after the apply");
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()], "no switch without a promote");
    replay(&lab, &d).await;

    // Post-promotion: green crashes once while measured; the active
    // Service goes back to blue, which was kept running.
    promote(&d).await.unwrap();
    assert_eq!(served_by(&lab, &d, "app"), [green.as_str(), green.as_str()]);
    until(&lab, &d, "the post-promotion analysis running", |d| run_named(d, "post-promotion")["phase"] == "Running")
        .await;
    let pod = running(&d).into_iter().find(|p| p.hash == green).expect("a running green pod");
    assert!(lab.fakes.shims.exit(pod.containers["web"].id.as_deref().unwrap(), 1, None));
    until(&lab, &d, "switched back to blue, green gone", |d| {
        status(d)["phase"] == "Degraded" && pods(d).len() == 2 && running_hashes(d) == set(&[&blue])
    })
    .await;
    let s = status(&d);
    assert_eq!(s["abort"], true);
    assert_eq!(s["stableRS"], blue);
    assert_eq!(s["blueGreen"]["activeSelector"], blue);
    let message = text(&s["message"]);
    assert!(message.contains("post-promotion analysis failed"), "{message}");
    let run = run_named(&d, "post-promotion");
    assert_eq!(run["phase"], "Failed");
    assert_eq!(run["revision"], green);
    assert_eq!(run["metrics"][0]["lastValue"], "1");
    assert_eq!(served_by(&lab, &d, "app"), [blue.as_str(), blue.as_str()]);
    let blue_now: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();
    assert_eq!(blue_now, blue_pods, "blue served again without a restart");
    assert_eq!(lab.events_of("AnalysisRunStarted"), 2);
    assert_eq!(lab.events_of("AnalysisRunSuccessful"), 1);
    assert_eq!(lab.events_of("AnalysisRunFailed"), 1);
    assert_eq!(lab.events_of("SwitchActive"), 2, "to green, and back to blue");
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(lab.events_of("RolloutCompleted"), 0);
    replay(&lab, &d).await;
}

#[tokio::test(start_paused = true)]
async fn a_promote_during_a_pre_promotion_analysis_does_not_skip_it() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let docs = format!("{NO_RESTARTS}---\n");
    d.apply(analysed_blue_green("v1", BOTH_ANALYSES, &docs)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let blue = text(&status(&d)["stableRS"]);
    d.apply(analysed_blue_green("v2", BOTH_ANALYSES, &docs)).await.unwrap();
    until(&lab, &d, "the pre-promotion analysis running", |d| {
        run_named(d, "pre-promotion")["phase"] == "Running" && running(d).len() == 4
    })
    .await;

    // SUPPORTED.md: prePromotionAnalysis "must succeed before the active
    // Service switches". Argo: a promote (not --full) lifts the pause; the
    // switch still waits for the run to succeed.
    let answer = promote(&d).await;
    d.reconcile().await.unwrap();
    assert_eq!(
        served_by(&lab, &d, "app"),
        [blue.as_str(), blue.as_str()],
        "switched before the pre-promotion analysis passed (promote answered {answer:?})"
    );
    assert_eq!(run_named(&d, "pre-promotion")["phase"], "Running", "the pre-promotion analysis was cut short");
}
