//! The canary strategy of an Argo Rollout as a state machine, on virtual
//! time (`now` is time since any fixed origin; no clock is read here).
//!
//! Berth owns the load balancer, so the traffic weight is exact (1 %
//! steps, whatever the replica counts) and separate from how many canary
//! pods run. The machine never sends a step's weight to the canary before
//! enough canary pods are available to take it. The stable pods stay at
//! full size until the canary is promoted, so an abort is one atomic
//! change of the VIP back to 0 %.
//!
//! [`next`] takes the status and an event and returns the new status with
//! what the controller must make true ([`Desired`]); an event that makes no
//! sense in the status (promoting a rollout that is not paused) is an
//! [`IllegalTransition`] and changes nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use berth_manifest::model::{CanaryScale, CanarySpec, CanaryStep};

/// Why a rollout holds where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// `berth rollout pause`.
    User,
    /// An analysis was inconclusive: a person decides (promote or abort).
    Inconclusive,
}

/// Where a canary rollout is. Persisted after every change, so a restarted
/// daemon continues from here without changing the traffic split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStatus {
    /// The template hash that serves when nothing is being rolled out.
    pub stable: String,
    /// The template hash being rolled out (equal to `stable` when done).
    pub canary: String,
    /// The current step; `steps.len()` once every step is done.
    pub step: usize,
    /// The share of new connections the canary gets, 0-100.
    pub weight: u8,
    /// A `setCanaryScale` in force.
    pub scale: Option<CanaryScale>,
    /// When the current `pause` step began.
    pub paused_at: Option<Duration>,
    pub hold: Option<Hold>,
    /// The step whose analysis runs and is waited for.
    pub analysis_step: Option<usize>,
    /// Set when aborted: all traffic is back on stable.
    pub aborted: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The controller looked at the pods.
    Observe { now: Duration, canary_available: u32 },
    /// A new template (hash) was applied.
    NewRevision { hash: String },
    /// `berth rollout promote [--full]`.
    Promote { full: bool },
    /// `berth rollout abort`, or a failed analysis.
    Abort { reason: String },
    /// `berth rollout pause`.
    Pause,
    /// `berth rollout resume` (also retries an aborted rollout).
    Resume,
    /// The outcome of the analysis of step `step`.
    StepAnalysis { step: usize, outcome: AnalysisOutcome },
    /// The background analysis concluded.
    BackgroundAnalysis { outcome: AnalysisOutcome },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisOutcome {
    Successful,
    Failed(String),
    Inconclusive,
}

/// What the controller makes true after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Pods of the stable template.
    pub stable_replicas: u32,
    /// Pods of the canary template (0 when there is no canary).
    pub canary_replicas: u32,
    /// The canary's share of new connections.
    pub weight: u8,
    /// Run (or keep running) the analysis of this step.
    pub step_analysis: Option<usize>,
    /// Look again at this time at the latest (a timed pause ends).
    pub wake_at: Option<Duration>,
    /// The rollout is complete: the canary is the stable revision.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    #[error("the rollout is not paused; there is nothing to promote (use --full to skip every remaining step)")]
    NotPaused,
    #[error("there is no rollout in progress; apply a new template first")]
    NothingToRollOut,
    #[error("the rollout is aborted; resume it to try again, or apply another template")]
    Aborted,
    #[error("the rollout is not paused")]
    NotHeld,
}

impl CanaryStatus {
    /// A rollout with nothing to do: `hash` serves.
    pub fn stable(hash: &str) -> Self {
        CanaryStatus {
            stable: hash.to_string(),
            canary: hash.to_string(),
            step: 0,
            weight: 0,
            scale: None,
            paused_at: None,
            hold: None,
            analysis_step: None,
            aborted: None,
        }
    }

    pub fn in_progress(&self) -> bool {
        self.canary != self.stable
    }
}

/// Canary pods for `weight` (or the `setCanaryScale` in force) out of
/// `replicas`: at least one while the weight is above 0.
pub fn canary_replicas(replicas: u32, weight: u8, scale: Option<CanaryScale>) -> u32 {
    let of_percent = |p: u8| -> u32 {
        let n = (u64::from(replicas) * u64::from(p)).div_ceil(100) as u32;
        if p > 0 {
            n.max(1)
        } else {
            0
        }
    };
    match scale {
        Some(CanaryScale::Replicas(n)) => n,
        Some(CanaryScale::Weight(p)) => of_percent(p),
        Some(CanaryScale::MatchTrafficWeight) | None => of_percent(weight),
    }
}

/// One transition. Pure; the same status and event always give the same
/// answer.
pub fn next(
    spec: &CanarySpec,
    replicas: u32,
    status: &CanaryStatus,
    event: Event,
) -> Result<(CanaryStatus, Desired), IllegalTransition> {
    let mut s = status.clone();
    match event {
        Event::NewRevision { hash } => {
            if hash == s.canary && s.aborted.is_none() {
                // Nothing new (a re-apply).
            } else if hash == s.stable {
                // Back to the stable template: the canary goes at once.
                s = CanaryStatus::stable(&hash);
            } else {
                let stable = s.stable.clone();
                s = CanaryStatus::stable(&stable);
                s.canary = hash;
            }
        }
        Event::Observe { now, canary_available } => {
            return Ok(advance(spec, replicas, s, now, canary_available));
        }
        Event::Promote { full } => {
            if !s.in_progress() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            if s.aborted.is_some() {
                return Err(IllegalTransition::Aborted);
            }
            let at = spec.steps.get(s.step);
            let pausing = matches!(at, Some(CanaryStep::Pause(_))) && s.paused_at.is_some();
            let analysing = matches!(at, Some(CanaryStep::Analysis(_))) && s.analysis_step.is_some();
            if full {
                s.step = spec.steps.len();
                s.paused_at = None;
                s.hold = None;
                s.analysis_step = None;
            } else if s.hold.take().is_some() {
                // Held (by the user, or an inconclusive analysis): go on, and
                // past the pause or analysis it held at.
                if pausing || analysing {
                    s.paused_at = None;
                    s.analysis_step = None;
                    s.step += 1;
                }
            } else if pausing {
                s.paused_at = None;
                s.step += 1;
            } else {
                return Err(IllegalTransition::NotPaused);
            }
        }
        Event::Abort { reason } => {
            if !s.in_progress() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            s.aborted = Some(reason);
            s.weight = 0;
            s.paused_at = None;
            s.hold = None;
            s.analysis_step = None;
        }
        Event::Pause => {
            if !s.in_progress() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            s.hold = Some(Hold::User);
        }
        Event::Resume => {
            if s.aborted.take().is_some() {
                // Retry from the first step.
                s.step = 0;
                s.scale = None;
            } else if s.hold.take().is_none() {
                return Err(IllegalTransition::NotHeld);
            }
        }
        Event::StepAnalysis { step, outcome } => {
            if s.analysis_step == Some(step) && s.aborted.is_none() {
                match outcome {
                    AnalysisOutcome::Successful => {
                        s.analysis_step = None;
                        s.step += 1;
                    }
                    AnalysisOutcome::Failed(why) => {
                        s.aborted = Some(format!("analysis of step {step} failed: {why}"));
                        s.weight = 0;
                        s.analysis_step = None;
                    }
                    AnalysisOutcome::Inconclusive => s.hold = Some(Hold::Inconclusive),
                }
            }
        }
        Event::BackgroundAnalysis { outcome } => {
            if s.in_progress() && s.aborted.is_none() {
                match outcome {
                    AnalysisOutcome::Successful => {}
                    AnalysisOutcome::Failed(why) => {
                        s.aborted = Some(format!("background analysis failed: {why}"));
                        s.weight = 0;
                        s.analysis_step = None;
                        s.paused_at = None;
                    }
                    AnalysisOutcome::Inconclusive => s.hold = Some(Hold::Inconclusive),
                }
            }
        }
    }
    let desired = desired(spec, replicas, &s, None);
    Ok((s, desired))
}

/// Takes every step that can be taken now.
fn advance(
    spec: &CanarySpec,
    replicas: u32,
    mut s: CanaryStatus,
    now: Duration,
    available: u32,
) -> (CanaryStatus, Desired) {
    let mut wake = None;
    while s.in_progress() && s.aborted.is_none() && s.hold.is_none() {
        match spec.steps.get(s.step) {
            None => {
                // Every step done: promote once every canary pod is there.
                if available >= replicas {
                    s.weight = 100;
                    s = CanaryStatus::stable(&s.canary);
                }
                break;
            }
            Some(CanaryStep::SetWeight(w)) => {
                let needed = canary_replicas(replicas, *w, s.scale);
                if available < needed {
                    break;
                }
                s.weight = *w;
                s.step += 1;
            }
            Some(CanaryStep::SetCanaryScale(scale)) => {
                s.scale = match scale {
                    CanaryScale::MatchTrafficWeight => None,
                    other => Some(*other),
                };
                s.step += 1;
            }
            Some(CanaryStep::Pause(duration)) => {
                let since = *s.paused_at.get_or_insert(now);
                match duration {
                    Some(d) if now >= since + *d => {
                        s.paused_at = None;
                        s.step += 1;
                    }
                    Some(d) => {
                        wake = Some(since + *d);
                        break;
                    }
                    None => break,
                }
            }
            Some(CanaryStep::Analysis(_)) => {
                s.analysis_step = Some(s.step);
                break;
            }
        }
    }
    let d = desired(spec, replicas, &s, wake);
    (s, d)
}

fn desired(spec: &CanarySpec, replicas: u32, s: &CanaryStatus, wake_at: Option<Duration>) -> Desired {
    if !s.in_progress() {
        return Desired {
            stable_replicas: replicas,
            canary_replicas: 0,
            weight: 0,
            step_analysis: None,
            wake_at: None,
            complete: true,
        };
    }
    if s.aborted.is_some() {
        return Desired {
            stable_replicas: replicas,
            canary_replicas: 0,
            weight: 0,
            step_analysis: None,
            wake_at: None,
            complete: false,
        };
    }
    // Pods for the weight of the step being worked toward, so they are up
    // before the weight moves.
    let target = match spec.steps.get(s.step) {
        Some(CanaryStep::SetWeight(w)) => (*w).max(s.weight),
        None => 100,
        _ => s.weight,
    };
    let canary = if spec.steps.get(s.step).is_none() { replicas } else { canary_replicas(replicas, target, s.scale) };
    Desired {
        stable_replicas: replicas,
        canary_replicas: canary,
        weight: s.weight,
        step_analysis: s.analysis_step,
        wake_at,
        complete: false,
    }
}

#[cfg(test)]
mod tests;
