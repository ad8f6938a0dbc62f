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

fn run_named(d: &Declared, name: &str) -> Value {
    let s = status(d);
    s["analysisRuns"].as_array().and_then(|r| r.iter().rev().find(|r| r["name"] == name).cloned()).unwrap_or_default()
}

/// The latest run of a canary's analysis step.
fn step_run(d: &Declared) -> Value {
    run_named(d, "step-1")
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

mod analysis;
