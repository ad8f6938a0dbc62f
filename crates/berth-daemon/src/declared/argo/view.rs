//! A Rollout in its Kubernetes form, with Argo's status fields.

use berth_control::analysis_run::RunPhase;
use berth_manifest::model::{RolloutSpec, RolloutStrategy};
use serde_json::{json, Value};

use crate::declared::records::{PodRecord, StoredObject};
use crate::declared::{kube, revisions};
use berth_control::argo::{RolloutState, RunRecord, StrategyStatus};

pub fn rollout(
    r: &RolloutSpec,
    stored: &StoredObject,
    pods: &[PodRecord],
    state: Option<&RolloutState>,
    clock: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut o = kube::stored(stored);
    let mine: Vec<&PodRecord> = pods
        .iter()
        .filter(|p| p.namespace == r.meta.namespace && p.owner.as_deref() == Some(r.meta.name.as_str()))
        .filter(|p| p.deleting.is_none())
        .collect();
    let hash = r.template.hash().to_string();
    let available = |p: &&&PodRecord| revisions::available(p.ready, p.ready_since.as_deref(), r.min_ready, clock);
    let mut status = json!({
        "observedGeneration": state.map(|s| s.observed_generation).unwrap_or(0),
        "currentPodHash": hash,
        "replicas": mine.len(),
        "updatedReplicas": mine.iter().filter(|p| p.hash == hash).count(),
        "readyReplicas": mine.iter().filter(|p| p.ready).count(),
        "availableReplicas": mine.iter().filter(available).count(),
    });
    let Some(state) = state else {
        status["phase"] = json!("Progressing");
        status["message"] = json!("waiting for the reconciler");
        o["status"] = status;
        return o;
    };
    let Some(s) = &state.strategy else {
        o["status"] = status;
        return o;
    };
    status["stableRS"] = json!(s.stable());
    status["abort"] = json!(s.aborted().is_some());
    let steps = match &r.strategy {
        RolloutStrategy::Canary(c) => c.steps.len(),
        RolloutStrategy::BlueGreen(_) => 0,
    };
    let target_available = mine.iter().filter(|p| p.hash == s.target()).filter(available).count();
    let (phase, message, pause_reason) = match s {
        StrategyStatus::Canary(c) => {
            status["currentStepIndex"] = json!(c.step.min(steps));
            status["canary"] = json!({"weights": {
                "canary": {"podTemplateHash": c.canary, "weight": c.weight},
                "stable": {"podTemplateHash": c.stable, "weight": 100 - c.weight},
            }});
            if let Some(why) = &c.aborted {
                ("Degraded", format!("rollout aborted, all traffic back on stable: {why}"), None)
            } else if !c.in_progress() {
                ("Healthy", "the stable revision serves all traffic".to_string(), None)
            } else if let Some(h) = c.hold {
                match h {
                    berth_control::canary::Hold::User => {
                        ("Paused", format!("paused by the user at step {}/{steps}", c.step), Some("BerthUserPause"))
                    }
                    berth_control::canary::Hold::Inconclusive => (
                        "Paused",
                        "an analysis was inconclusive; promote or abort".to_string(),
                        Some("InconclusiveAnalysis"),
                    ),
                }
            } else if c.paused_at.is_some() {
                (
                    "Paused",
                    format!("waiting at the pause of step {}/{steps} (canary weight {}%)", c.step + 1, c.weight),
                    Some("CanaryPauseStep"),
                )
            } else if let Some(step) = c.analysis_step {
                ("Progressing", format!("analysing step {}/{steps} (canary weight {}%)", step + 1, c.weight), None)
            } else {
                (
                    "Progressing",
                    format!(
                        "step {}/{steps}, canary weight {}%, {target_available} canary pod(s) available",
                        c.step, c.weight
                    ),
                    None,
                )
            }
        }
        StrategyStatus::BlueGreen(b) => {
            status["blueGreen"] = json!({
                "activeSelector": b.active,
                "previewSelector": b.preview.clone().unwrap_or_else(|| b.active.clone()),
            });
            let auto = matches!(&r.strategy, RolloutStrategy::BlueGreen(g) if g.auto_promotion_enabled);
            if let Some(why) = &b.aborted {
                ("Degraded", format!("rollout aborted, all traffic on revision {}: {why}", b.active), None)
            } else if b.preview.is_none() && b.switched_from.is_none() {
                ("Healthy", "the active revision serves all traffic".to_string(), None)
            } else if b.hold.is_some() {
                ("Paused", "held; promote or abort".to_string(), Some("BerthUserPause"))
            } else if let Some(phase) = b.analysis {
                ("Progressing", format!("{phase:?} analysis running"), None)
            } else if b.preview.is_some() && b.ready_at.is_some() && !auto {
                ("Paused", "preview ready, waiting for promote".to_string(), Some("BlueGreenPause"))
            } else if let Some((blue, _)) = &b.switched_from {
                ("Progressing", format!("switched; revision {blue} kept until the scale-down delay ends"), None)
            } else {
                ("Progressing", format!("{target_available} preview pod(s) available"), None)
            }
        }
    };
    status["phase"] = json!(phase);
    status["message"] = json!(message);
    if let Some(reason) = pause_reason {
        status["pauseConditions"] = json!([{"reason": reason, "startTime": state.paused_since}]);
    }
    let progressing = match phase {
        "Healthy" => {
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": message})
        }
        "Degraded" => json!({"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": message}),
        "Paused" => json!({"type": "Progressing", "status": "Unknown", "reason": "RolloutPaused", "message": message}),
        _ => json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": message}),
    };
    status["conditions"] = json!([progressing]);
    let runs: Vec<Value> = state.finished.iter().chain(state.runs.values()).map(run).collect();
    status["analysisRuns"] = json!(runs);
    o["status"] = status;
    o
}

fn run(r: &RunRecord) -> Value {
    let (phase, message) = match r.outcome.as_ref().cloned().unwrap_or_else(|| r.run.phase()) {
        RunPhase::Running => ("Running", String::new()),
        RunPhase::Successful => ("Successful", String::new()),
        RunPhase::Failed(m) => ("Failed", m),
        RunPhase::Inconclusive(m) => ("Inconclusive", m),
    };
    let metrics: Vec<Value> = r
        .run
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (phase, message) = match &m.phase {
                RunPhase::Running => ("Running", m.last_error.clone().unwrap_or_default()),
                RunPhase::Successful => ("Successful", String::new()),
                RunPhase::Failed(x) => ("Failed", x.clone()),
                RunPhase::Inconclusive(x) => ("Inconclusive", x.clone()),
            };
            json!({
                "name": m.name, "phase": phase, "measured": m.measured, "successful": m.successful,
                "failed": m.failed, "inconclusive": m.inconclusive, "errors": m.errors,
                "lastValue": r.last_values.get(i).cloned().flatten(), "message": message,
            })
        })
        .collect();
    json!({"name": r.name, "revision": r.canary, "phase": phase, "message": message, "metrics": metrics})
}
