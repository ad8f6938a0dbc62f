//! `describe` of Argo Rollouts and AnalysisTemplates: where the rollout
//! stands (strategy, step, weights, revisions), its analysis runs with
//! each metric's counts, then the pod template and conditions.

use serde_json::Value;

use super::doc::Doc;
use super::{annotations, conditions, labels, pod};
use crate::declared::age;
use crate::declared::value::{array, int_at, label_selector, name, namespace, str_at};

pub fn rollout(d: &mut Doc, obj: &Value) {
    d.field(0, "Name", name(obj));
    d.field(0, "Namespace", namespace(obj));
    d.field(0, "CreationTimestamp", str_at(obj, "/metadata/creationTimestamp").map(age::long).unwrap_or_default());
    labels(d, 0, "Labels", obj.pointer("/metadata/labels"));
    annotations(d, obj);
    d.field(0, "Selector", obj.pointer("/spec/selector").and_then(label_selector).unwrap_or_else(|| "<none>".into()));
    let status = |f: &str| int_at(obj, &format!("/status/{f}")).unwrap_or(0);
    d.field(
        0,
        "Replicas",
        format!(
            "{} desired | {} updated | {} total | {} ready | {} available",
            int_at(obj, "/spec/replicas").unwrap_or(1),
            status("updatedReplicas"),
            status("replicas"),
            status("readyReplicas"),
            status("availableReplicas"),
        ),
    );
    let phase = str_at(obj, "/status/phase").unwrap_or("Progressing");
    match str_at(obj, "/status/message").filter(|m| !m.is_empty()) {
        Some(m) => d.field(0, "Status", format!("{phase}: {m}")),
        None => d.field(0, "Status", phase),
    }
    let none = || "<none>".to_string();
    if obj.pointer("/spec/strategy/canary").is_some() {
        d.field(0, "Strategy", "Canary");
        let steps = array(obj, "/spec/strategy/canary/steps");
        let step = int_at(obj, "/status/currentStepIndex").map(|i| format!("{i}/{}", steps.len())).unwrap_or_else(none);
        d.field(2, "Step", step);
        let weight = |which: &str| {
            let hash = str_at(obj, &format!("/status/canary/weights/{which}/podTemplateHash")).unwrap_or("-");
            let w = int_at(obj, &format!("/status/canary/weights/{which}/weight")).unwrap_or(0);
            format!("{w}% (revision {hash})")
        };
        d.field(2, "Stable", weight("stable"));
        d.field(2, "Canary", weight("canary"));
        for (key, field) in [("StableService", "stableService"), ("CanaryService", "canaryService")] {
            if let Some(s) = str_at(obj, &format!("/spec/strategy/canary/{field}")) {
                d.field(2, key, s);
            }
        }
    } else {
        d.field(0, "Strategy", "BlueGreen");
        let svc =
            |f: &str| str_at(obj, &format!("/spec/strategy/blueGreen/{f}")).map(String::from).unwrap_or_else(none);
        let sel = |f: &str| str_at(obj, &format!("/status/blueGreen/{f}")).map(String::from).unwrap_or_else(none);
        d.field(2, "ActiveService", format!("{} (revision {})", svc("activeService"), sel("activeSelector")));
        d.field(2, "PreviewService", format!("{} (revision {})", svc("previewService"), sel("previewSelector")));
    }
    if let Some(p) = array(obj, "/status/pauseConditions").first() {
        let since = str_at(p, "/startTime").map(age::long).unwrap_or_default();
        d.field(0, "Paused", format!("{} since {since}", str_at(p, "/reason").unwrap_or_default()));
    }
    analysis_runs(d, obj);
    d.text(0, "Pod Template:");
    if let Some(template) = obj.pointer("/spec/template") {
        pod::template(d, template);
    }
    conditions(d, obj, true);
}

fn analysis_runs(d: &mut Doc, obj: &Value) {
    let runs = array(obj, "/status/analysisRuns");
    if runs.is_empty() {
        d.field(0, "Analysis Runs", "<none>");
        return;
    }
    d.text(0, "Analysis Runs:");
    for run in runs {
        let phase = str_at(run, "/phase").unwrap_or("Running");
        let revision = str_at(run, "/revision").unwrap_or("-");
        d.field(2, str_at(run, "/name").unwrap_or("run"), format!("{phase} (revision {revision})"));
        if let Some(m) = str_at(run, "/message").filter(|m| !m.is_empty()) {
            d.field(4, "Message", m);
        }
        let cell = |m: &Value, f: &str| int_at(m, f).unwrap_or(0).to_string();
        let rows = array(run, "/metrics")
            .iter()
            .map(|m| {
                vec![
                    str_at(m, "/name").unwrap_or_default().to_string(),
                    str_at(m, "/phase").unwrap_or_default().to_string(),
                    cell(m, "/measured"),
                    cell(m, "/successful"),
                    cell(m, "/failed"),
                    cell(m, "/inconclusive"),
                    cell(m, "/errors"),
                    str_at(m, "/lastValue").unwrap_or("-").to_string(),
                ]
            })
            .collect();
        d.table(4, &["Metric", "Phase", "Measured", "Successful", "Failed", "Inconclusive", "Errors", "Last"], rows);
    }
}

pub fn analysis_template(d: &mut Doc, obj: &Value) {
    d.field(0, "Name", name(obj));
    d.field(0, "Namespace", namespace(obj));
    labels(d, 0, "Labels", obj.pointer("/metadata/labels"));
    annotations(d, obj);
    let args: Vec<String> = array(obj, "/spec/args")
        .iter()
        .map(|a| match str_at(a, "/value") {
            Some(v) => format!("{}={v}", str_at(a, "/name").unwrap_or_default()),
            None => str_at(a, "/name").unwrap_or_default().to_string(),
        })
        .collect();
    d.list(0, "Args", args);
    d.text(0, "Metrics:");
    for m in array(obj, "/spec/metrics") {
        d.field(2, str_at(m, "/name").unwrap_or("metric"), "");
        for (key, field) in [
            ("Interval", "/interval"),
            ("Count", "/count"),
            ("SuccessCondition", "/successCondition"),
            ("FailureCondition", "/failureCondition"),
            ("FailureLimit", "/failureLimit"),
            ("InconclusiveLimit", "/inconclusiveLimit"),
            ("ConsecutiveErrorLimit", "/consecutiveErrorLimit"),
        ] {
            if let Some(v) = m.pointer(field) {
                d.field(4, key, v.as_str().map(String::from).unwrap_or_else(|| v.to_string()));
            }
        }
        if let Some(p) = m.get("provider") {
            d.field(4, "Provider", p.to_string());
        }
    }
}
