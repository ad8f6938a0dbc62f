//! The strategy machines behind one interface: what happened goes in, the
//! new status and what to make true (pods per revision, analysis runs)
//! come out. Pure; the reconciler persists and acts.

use std::time::Duration;

use crate::bluegreen::{self, BlueGreenStatus, Phase};
use crate::canary::{self, AnalysisOutcome, CanaryStatus, IllegalTransition};
use berth_manifest::model::{AnalysisRef, CanaryStep, RolloutSpec, RolloutStrategy};

use super::StrategyStatus;
use crate::deployment::plan::Route;

/// What happened to a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// The reconciler looked: `available` pods of the revision being
    /// rolled out.
    Observe {
        available: u32,
    },
    NewRevision(String),
    Promote {
        full: bool,
    },
    Abort(String),
    Pause,
    Resume,
    /// The analysis run of this name ended.
    Analysis {
        run: String,
        outcome: AnalysisOutcome,
    },
}

/// An analysis run the status asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRun {
    pub name: String,
    pub analysis: AnalysisRef,
    /// The revision measured, and the one it is compared with.
    pub canary: String,
    pub stable: Option<String>,
}

/// What to make true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Pods per template hash.
    pub replicas: Vec<(String, u32)>,
    pub runs: Vec<WantedRun>,
    pub complete: bool,
}

pub fn fresh(strategy: &RolloutStrategy, hash: &str) -> StrategyStatus {
    match strategy {
        RolloutStrategy::Canary(_) => StrategyStatus::Canary(CanaryStatus::stable(hash)),
        RolloutStrategy::BlueGreen(_) => StrategyStatus::BlueGreen(BlueGreenStatus::stable(hash)),
    }
}

pub fn same_strategy(strategy: &RolloutStrategy, status: &StrategyStatus) -> bool {
    matches!(
        (strategy, status),
        (RolloutStrategy::Canary(_), StrategyStatus::Canary(_))
            | (RolloutStrategy::BlueGreen(_), StrategyStatus::BlueGreen(_))
    )
}

/// Held by the user or an inconclusive analysis.
pub fn held(status: &StrategyStatus) -> bool {
    match status {
        StrategyStatus::Canary(c) => c.hold.is_some(),
        StrategyStatus::BlueGreen(b) => b.hold.is_some(),
    }
}

/// Waiting at a pause step, or for a blue-green promote.
pub fn pausing(r: &RolloutSpec, status: &StrategyStatus) -> bool {
    match (status, &r.strategy) {
        (StrategyStatus::Canary(c), _) => c.paused_at.is_some(),
        (StrategyStatus::BlueGreen(b), RolloutStrategy::BlueGreen(spec)) => {
            b.preview.is_some()
                && b.ready_at.is_some()
                && b.aborted.is_none()
                && b.analysis.is_none()
                && !spec.auto_promotion_enabled
        }
        _ => false,
    }
}

/// Waiting for a blocking analysis (a canary step's, or a blue-green
/// pre- or post-promotion one).
pub fn analysing(status: &StrategyStatus) -> bool {
    match status {
        StrategyStatus::Canary(c) => c.analysis_step.is_some(),
        StrategyStatus::BlueGreen(b) => b.analysis.is_some(),
    }
}

/// One transition of whichever machine the rollout's strategy uses.
pub fn next(
    r: &RolloutSpec,
    status: &StrategyStatus,
    ev: Ev,
    now: Duration,
) -> Result<(StrategyStatus, Plan), IllegalTransition> {
    let replicas = r.replicas;
    match (&r.strategy, status) {
        (RolloutStrategy::Canary(spec), StrategyStatus::Canary(s)) => {
            let ev = match ev {
                Ev::Observe { available } => canary::Event::Observe { now, canary_available: available },
                Ev::NewRevision(hash) => canary::Event::NewRevision { hash },
                Ev::Promote { full } => canary::Event::Promote { full },
                Ev::Abort(reason) => canary::Event::Abort { reason },
                Ev::Pause => canary::Event::Pause,
                Ev::Resume => canary::Event::Resume,
                Ev::Analysis { run, outcome } => match run.strip_prefix("step-").and_then(|n| n.parse().ok()) {
                    Some(step) => canary::Event::StepAnalysis { step, outcome },
                    None => canary::Event::BackgroundAnalysis { outcome },
                },
            };
            let (s, d) = canary::next(spec, replicas, s, ev)?;
            let mut pods = vec![(s.stable.clone(), d.stable_replicas)];
            if s.in_progress() {
                pods.push((s.canary.clone(), d.canary_replicas));
            }
            let mut runs = Vec::new();
            // A held rollout waits for a person; its analysis is not rerun.
            let held = s.hold.is_some();
            if let Some(step) = d.step_analysis.filter(|_| !held) {
                if let Some(CanaryStep::Analysis(a)) = spec.steps.get(step) {
                    runs.push(WantedRun {
                        name: format!("step-{step}"),
                        analysis: a.clone(),
                        canary: s.canary.clone(),
                        stable: Some(s.stable.clone()),
                    });
                }
            }
            if let Some(b) = &spec.analysis {
                if s.in_progress() && s.aborted.is_none() && !held && s.step >= b.starting_step as usize {
                    runs.push(WantedRun {
                        name: "background".into(),
                        analysis: b.analysis.clone(),
                        canary: s.canary.clone(),
                        stable: Some(s.stable.clone()),
                    });
                }
            }
            Ok((StrategyStatus::Canary(s), Plan { replicas: pods, runs, complete: d.complete }))
        }
        (RolloutStrategy::BlueGreen(spec), StrategyStatus::BlueGreen(s)) => {
            let ev = match ev {
                Ev::Observe { available } => bluegreen::Event::Observe { now, preview_available: available },
                Ev::NewRevision(hash) => bluegreen::Event::NewRevision { hash },
                Ev::Promote { full } => bluegreen::Event::Promote { now, full },
                Ev::Abort(reason) => bluegreen::Event::Abort { reason },
                Ev::Pause => bluegreen::Event::Pause,
                Ev::Resume => bluegreen::Event::Resume,
                Ev::Analysis { run, outcome } => {
                    let phase = if run == "pre-promotion" { Phase::PrePromotion } else { Phase::PostPromotion };
                    bluegreen::Event::Analysis { phase, outcome, now }
                }
            };
            let (s, d) = bluegreen::next(spec, replicas, s, ev)?;
            let mut runs = Vec::new();
            match d.analysis.filter(|_| s.hold.is_none()) {
                Some(Phase::PrePromotion) => {
                    if let (Some(a), Some(preview)) = (&spec.pre_promotion_analysis, &s.preview) {
                        runs.push(WantedRun {
                            name: "pre-promotion".into(),
                            analysis: a.clone(),
                            canary: preview.clone(),
                            stable: Some(s.active.clone()),
                        });
                    }
                }
                Some(Phase::PostPromotion) => {
                    if let Some(a) = &spec.post_promotion_analysis {
                        runs.push(WantedRun {
                            name: "post-promotion".into(),
                            analysis: a.clone(),
                            canary: s.active.clone(),
                            stable: s.switched_from.as_ref().map(|(blue, _)| blue.clone()),
                        });
                    }
                }
                None => {}
            }
            Ok((StrategyStatus::BlueGreen(s), Plan { replicas: d.replicas, runs, complete: d.complete }))
        }
        // A strategy changed under a status: start over from what serves.
        (strategy, other) => next(r, &fresh(strategy, other.stable()), ev, now),
    }
}

/// The events a status change is worth: (warning, reason, message).
pub fn changes(
    old: Option<&StrategyStatus>,
    new: &StrategyStatus,
    r: &RolloutSpec,
) -> Vec<(bool, &'static str, String)> {
    let mut out = Vec::new();
    match (old, new) {
        (Some(StrategyStatus::Canary(o)), StrategyStatus::Canary(n)) => {
            if n.canary != o.canary && n.in_progress() {
                out.push((false, "RolloutUpdated", format!("Rollout of revision {} started", n.canary)));
            }
            if n.weight != o.weight && n.aborted.is_none() {
                out.push((false, "SetWeight", format!("Set canary weight to {}%", n.weight)));
            }
            if n.step != o.step && n.in_progress() && n.aborted.is_none() {
                let total = match &r.strategy {
                    RolloutStrategy::Canary(c) => c.steps.len(),
                    RolloutStrategy::BlueGreen(_) => 0,
                };
                out.push((false, "RolloutStepCompleted", format!("Rollout step {}/{total} completed", n.step)));
            }
            if n.paused_at.is_some() && o.paused_at.is_none() {
                out.push((false, "RolloutPaused", format!("Rollout paused at step {}", n.step + 1)));
            }
            if let (Some(why), None) = (&n.aborted, &o.aborted) {
                out.push((true, "RolloutAborted", format!("Rollout aborted, all traffic back on stable: {why}")));
            }
            if n.hold.is_some() && o.hold.is_none() {
                out.push((false, "RolloutPaused", "Rollout held; promote or abort it".to_string()));
            }
            if o.in_progress() && !n.in_progress() && n.stable == o.canary {
                out.push((false, "RolloutCompleted", format!("Rollout completed: revision {} is stable", n.stable)));
            }
        }
        (Some(StrategyStatus::BlueGreen(o)), StrategyStatus::BlueGreen(n)) => {
            if n.preview != o.preview {
                if let Some(p) = &n.preview {
                    if n.aborted.is_none() {
                        out.push((false, "RolloutUpdated", format!("Preview of revision {p} started")));
                    }
                }
            }
            if n.active != o.active {
                out.push((false, "SwitchActive", format!("Switched the active service to revision {}", n.active)));
            }
            if let (Some(why), None) = (&n.aborted, &o.aborted) {
                out.push((
                    true,
                    "RolloutAborted",
                    format!("Rollout aborted, all traffic on revision {}: {why}", n.active),
                ));
            }
            if o.switched_from.is_some() && n.switched_from.is_none() && n.aborted.is_none() {
                out.push((false, "RolloutCompleted", format!("Rollout completed: revision {} is active", n.active)));
            }
        }
        _ => {}
    }
    out
}

/// What one rollout asks of the Services in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRoute {
    pub namespace: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Services the strategy names, and the revision each sends to.
    pub named: Vec<(String, String)>,
    /// Any other Service selecting the rollout's pods.
    pub default: OwnedRoute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedRoute {
    Only(String),
    Split { stable: String, canary: String, weight: u8 },
}

impl OwnedRoute {
    pub fn borrow(&self) -> Route<'_> {
        match self {
            OwnedRoute::Only(h) => Route::Only(h),
            OwnedRoute::Split { stable, canary, weight } => Route::Split { stable, canary, weight: *weight },
        }
    }
}

impl RolloutRoute {
    pub fn of(r: &RolloutSpec, status: &StrategyStatus) -> Self {
        let mut named = Vec::new();
        let default = match (&r.strategy, status) {
            (RolloutStrategy::Canary(spec), StrategyStatus::Canary(s)) => {
                let live = s.in_progress() && s.aborted.is_none();
                if let Some(n) = &spec.stable_service {
                    named.push((n.clone(), s.stable.clone()));
                }
                if let Some(n) = &spec.canary_service {
                    named.push((n.clone(), if live { s.canary.clone() } else { s.stable.clone() }));
                }
                if live {
                    OwnedRoute::Split { stable: s.stable.clone(), canary: s.canary.clone(), weight: s.weight }
                } else {
                    OwnedRoute::Only(s.stable.clone())
                }
            }
            (RolloutStrategy::BlueGreen(spec), StrategyStatus::BlueGreen(s)) => {
                named.push((spec.active_service.clone(), s.active.clone()));
                if let Some(n) = &spec.preview_service {
                    named.push((n.clone(), s.preview.clone().unwrap_or_else(|| s.active.clone())));
                }
                OwnedRoute::Only(s.active.clone())
            }
            (_, other) => OwnedRoute::Only(other.stable().to_string()),
        };
        RolloutRoute { namespace: r.meta.namespace.clone(), labels: r.template.labels.clone(), named, default }
    }

    /// The route for a Service, if it is in front of this rollout: named
    /// by the strategy, or selecting the rollout's pods.
    pub fn route_for(
        &self,
        namespace: &str,
        name: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Option<Route<'_>> {
        if namespace != self.namespace {
            return None;
        }
        if let Some((_, hash)) = self.named.iter().find(|(n, _)| n == name) {
            return Some(Route::Only(hash));
        }
        let selects = !selector.is_empty() && selector.iter().all(|(k, v)| self.labels.get(k) == Some(v));
        selects.then(|| self.default.borrow())
    }
}

#[cfg(test)]
mod tests;
