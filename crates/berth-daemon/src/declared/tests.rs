//! The Deployment reconciler and pod workers on a fake host, pass by pass
//! on virtual time: no root, no runc, no sleeping.

use std::sync::Arc;
use std::time::Duration;

use berth_core::api::{ApplyRequest, ManifestFile, RolloutRequest};

use super::records::{self, PodRecord};
use super::Declared;
use crate::testlab::Lab;

fn deployment(replicas: u32, version: &str) -> ApplyRequest {
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec:\n      containers:\n        - name: web\n          image: app:1\n          \
         env: [{{name: VERSION, value: \"{version}\"}}]\n"
    );
    ApplyRequest { files: vec![ManifestFile { name: "web.yaml".into(), text }], dry_run: false }
}

pub(super) fn pods(d: &Declared) -> Vec<PodRecord> {
    records::pods(d.store.as_ref()).unwrap()
}

/// Live pods whose every container runs.
pub(super) fn running(d: &Declared) -> Vec<PodRecord> {
    pods(d)
        .into_iter()
        .filter(|p| p.deleting.is_none() && !p.containers.is_empty() && p.containers.values().all(|c| c.id.is_some()))
        .collect()
}

/// Reconcile passes (and the pod workers they start) until `done`, on
/// virtual time, the wall clock moving with it; panics after a minute of
/// it with `describe`'s account of where things stand.
pub(super) async fn until_with(
    lab: &Lab,
    d: &Arc<Declared>,
    what: &str,
    done: impl Fn(&Declared) -> bool,
    describe: impl Fn(&Declared) -> String,
) {
    for _ in 0..600 {
        d.reconcile().await.unwrap();
        if done(d) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        lab.fakes.clock.advance(Duration::from_millis(100));
    }
    panic!("{what}: not reached; {}", describe(d));
}

async fn until(lab: &Lab, d: &Arc<Declared>, what: &str, done: impl Fn(&Declared) -> bool) {
    until_with(lab, d, what, done, |d| format!("pods: {:#?}", pods(d))).await
}

#[tokio::test(start_paused = true)]
async fn a_deployment_gets_its_pods_and_a_repeated_pass_changes_nothing() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(deployment(2, "v1")).await.unwrap();
    until(&lab, &d, "two running pods", |d| running(d).len() == 2).await;
    let launched = lab.fakes.shims.launched().len();
    assert_eq!(launched, 2, "one container per pod");
    assert_eq!(lab.fakes.namespaces.live().len(), 2, "one sandbox per pod");
    let ips: std::collections::BTreeSet<_> = running(&d).iter().map(|p| p.ip.clone().unwrap()).collect();
    assert_eq!(ips.len(), 2, "each pod has an address of its own");

    // The same state, reconciled again and again (as after a crash and a
    // restart of the daemon): nothing is created twice.
    for _ in 0..5 {
        d.reconcile().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pods(&d).len(), 2);
    assert_eq!(lab.fakes.shims.launched().len(), launched);
}

#[tokio::test(start_paused = true)]
async fn scaling_and_a_new_template_roll_the_pods() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(deployment(2, "v1")).await.unwrap();
    until(&lab, &d, "two running pods", |d| running(d).len() == 2).await;
    let first_hash = running(&d)[0].hash.clone();

    d.apply(deployment(3, "v1")).await.unwrap();
    until(&lab, &d, "three running pods", |d| running(d).len() == 3).await;
    assert!(running(&d).iter().all(|p| p.hash == first_hash), "scaling keeps the template");

    d.apply(deployment(3, "v2")).await.unwrap();
    until(&lab, &d, "three pods of the new template and none of the old", |d| {
        let all = pods(d);
        all.len() == 3 && running(d).len() == 3 && all.iter().all(|p| p.hash != first_hash)
    })
    .await;
    // The old pods' containers were stopped through the runtime and are gone.
    assert_eq!(lab.fakes.shims.running().len(), 3);
    assert_eq!(lab.fakes.namespaces.live().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_crashing_container_is_restarted_in_its_pod() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(deployment(1, "v1")).await.unwrap();
    until(&lab, &d, "a running pod", |d| running(d).len() == 1).await;
    let pod = running(&d).remove(0);
    let id = pod.containers["web"].id.clone().unwrap();
    lab.fakes.shims.exit(&id, 1, None);
    until(&lab, &d, "the container restarted in the same pod", |d| {
        let now = pods(d);
        now.len() == 1 && now[0].uid == pod.uid && now[0].containers["web"].restarts == 1 && running(d).len() == 1
    })
    .await;
    assert_eq!(lab.fakes.shims.running().len(), 1);
    assert_eq!(lab.fakes.namespaces.live().len(), 1, "the pod kept its sandbox");
    assert_eq!(pods(&d)[0].ip, pod.ip, "and its address");
}

fn probed_web() -> ApplyRequest {
    let text = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: web-conf}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: app:1
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1, failureThreshold: 1}
          volumeMounts: [{name: conf, mountPath: /conf}, {name: scratch, mountPath: /scratch}]
      volumes:
        - {name: conf, configMap: {name: web-conf}}
        - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 1Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;
    ApplyRequest { files: vec![ManifestFile { name: "web.yaml".into(), text: text.into() }], dry_run: false }
}

/// (ready, not ready) addresses of the Service `web`.
fn endpoints(d: &Declared) -> (usize, usize) {
    let ep = d.get("endpoints", "default", "web", false).unwrap_or_default();
    let count = |field: &str| {
        ep["subsets"].as_array().into_iter().flatten().map(|s| s[field].as_array().map_or(0, Vec::len)).sum()
    };
    (count("addresses"), count("notReadyAddresses"))
}

#[tokio::test(start_paused = true)]
async fn readiness_probes_decide_the_service_endpoints_and_pod_volumes_live_on_tmpfs() {
    use berth_control::ProbeResult;
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(probed_web()).await.unwrap();
    until(&lab, &d, "two ready endpoints", |d| endpoints(d) == (2, 0)).await;
    let asked = lab.fakes.probes.asked();
    assert!(asked.iter().all(|(_, port)| *port == 8080) && !asked.is_empty(), "{asked:?}");
    let pods_dir = lab.dir.path().join("run/pods");
    let mounted: Vec<_> = lab.fakes.mounts.mounted().into_iter().filter(|m| m.starts_with(&pods_dir)).collect();
    // Per pod: its in-memory directory and the memory emptyDir inside it.
    assert_eq!(mounted.len(), 4, "{mounted:?}");

    lab.fakes.probes.answer(8080, ProbeResult::Failure);
    until(&lab, &d, "no ready endpoint", |d| endpoints(d) == (0, 2)).await;
    lab.fakes.probes.answer(8080, ProbeResult::Success);
    until(&lab, &d, "ready again", |d| endpoints(d) == (2, 0)).await;

    let delete = berth_core::api::DeleteRequest { files: probed_web().files, ignore_not_found: false };
    d.delete(delete).await.unwrap();
    until(&lab, &d, "every pod gone", |d| pods(d).is_empty()).await;
    assert!(
        !lab.fakes.mounts.mounted().iter().any(|m| m.starts_with(&pods_dir)),
        "the pods' tmpfs mounts go with them: {:?}",
        lab.fakes.mounts.mounted()
    );
    assert!(lab.fakes.shims.running().is_empty());
}

fn rollout(version: &str) -> ApplyRequest {
    let text = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
        - name: web
          image: app:1
          env: [{{name: VERSION, value: "{version}"}}]
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {{}}
---
apiVersion: v1
kind: Service
metadata: {{name: app}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    );
    ApplyRequest { files: vec![ManifestFile { name: "app.yaml".into(), text }], dry_run: false }
}

fn status(d: &Declared) -> serde_json::Value {
    d.get("rollouts", "default", "app", false).map(|r| r["status"].clone()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn an_argo_canary_pauses_at_its_weight_then_promotes_or_aborts() {
    let lab = Lab::new().await;
    let d = lab.declared();
    d.apply(rollout("v1")).await.unwrap();
    until(&lab, &d, "the first revision healthy", |d| status(d)["phase"] == "Healthy").await;
    let stable = status(&d)["stableRS"].clone();

    // v2: canary pods beside stable, half the new connections, paused.
    d.apply(rollout("v2")).await.unwrap();
    until(&lab, &d, "paused at 50 %", |d| {
        let s = status(d);
        s["phase"] == "Paused" && s["canary"]["weights"]["canary"]["weight"] == 50
    })
    .await;
    let s = status(&d);
    assert_eq!(s["stableRS"], stable, "stable stays while the canary runs");
    assert_eq!(s["currentStepIndex"], 1);
    let hashes: std::collections::BTreeSet<String> = running(&d).iter().map(|p| p.hash.clone()).collect();
    assert_eq!(hashes.len(), 2, "stable and canary pods run side by side");
    // Promote is refused when there is nothing to promote, and taken here.
    d.rollout_argo("default", "app", RolloutRequest::Promote { full: false }).await.unwrap();
    until(&lab, &d, "v2 healthy and alone", |d| {
        let s = status(d);
        let hashes: std::collections::BTreeSet<String> = running(d).iter().map(|p| p.hash.clone()).collect();
        s["phase"] == "Healthy" && s["stableRS"] != stable && hashes.len() == 1 && pods(d).len() == 2
    })
    .await;
    let v2 = status(&d)["stableRS"].clone();

    // v3 is aborted at its pause: every connection back on v2, v3's pods go.
    d.apply(rollout("v3")).await.unwrap();
    until(&lab, &d, "v3 paused", |d| status(d)["phase"] == "Paused").await;
    d.rollout_argo("default", "app", RolloutRequest::Abort {}).await.unwrap();
    until(&lab, &d, "aborted, back on v2", |d| {
        let s = status(d);
        s["phase"] == "Degraded"
            && s["stableRS"] == v2
            && running(d).iter().all(|p| Some(p.hash.as_str()) == v2.as_str())
    })
    .await;
    let e = d.rollout_argo("default", "app", RolloutRequest::Promote { full: false }).await.unwrap_err().to_string();
    assert!(e.contains("app"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn apply_warns_about_fields_without_effect_and_keeps_them() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let mut req = deployment(1, "v1");
    req.files[0].text = req.files[0].text.replace("    spec:\n", "    spec:\n      serviceAccountName: web\n");
    let resp = d.apply(req.clone()).await.unwrap();
    assert_eq!(resp.warnings.len(), 1, "{:?}", resp.warnings);
    assert!(
        resp.warnings[0]
            .starts_with("web.yaml:10: deployment/web: spec.template.spec.serviceAccountName has no effect"),
        "{:?}",
        resp.warnings
    );
    let stored = d.get("deployments", "default", "web", false).unwrap();
    assert_eq!(stored["spec"]["template"]["spec"]["serviceAccountName"], "web", "kept as written");
    // The same warning on every apply, as kubectl's.
    assert_eq!(d.apply(req).await.unwrap().warnings.len(), 1);
}
