//! The blue-green strategy of an Argo Rollout as a state machine, on
//! virtual time (`now` is time since any fixed origin).
//!
//! The new (green) pods come up beside the old (blue) ones, reachable
//! through the preview Service; the switch is one atomic change of the
//! active Service's VIP from blue to green. Blue keeps running for
//! `scaleDownDelaySeconds` (and until the post-promotion analysis passed),
//! so a failed post-promotion analysis switches straight back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::canary::{AnalysisOutcome, Hold, IllegalTransition};
use berth_manifest::model::BlueGreenSpec;

/// Which analysis of a blue-green rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    PrePromotion,
    PostPromotion,
}

/// Where a blue-green rollout is; persisted after every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenStatus {
    /// The template hash the active Service points at.
    pub active: String,
    /// The new template being brought up, if any.
    pub preview: Option<String>,
    /// When every preview pod was first seen available.
    pub ready_at: Option<Duration>,
    /// The pre-promotion analysis passed.
    pub pre_passed: bool,
    /// The post-promotion analysis passed.
    pub post_passed: bool,
    /// Switched: the old template's hash, and when.
    pub switched_from: Option<(String, Duration)>,
    pub analysis: Option<Phase>,
    pub hold: Option<Hold>,
    pub aborted: Option<String>,
    /// A person promoted while the pre-promotion analysis ran: the switch
    /// happens as soon as it passes (a plain promote never skips it).
    #[serde(default)]
    pub promoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Observe {
        now: Duration,
        preview_available: u32,
    },
    NewRevision {
        hash: String,
    },
    /// `full` also skips a pre-promotion analysis under way.
    Promote {
        now: Duration,
        full: bool,
    },
    Abort {
        reason: String,
    },
    Pause,
    Resume,
    Analysis {
        phase: Phase,
        outcome: AnalysisOutcome,
        now: Duration,
    },
}

/// What the controller makes true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The hash the active Service's VIP sends to.
    pub active: String,
    /// The hash the preview Service's VIP sends to (the active one when
    /// there is nothing to preview).
    pub preview: String,
    /// Pods per template hash.
    pub replicas: Vec<(String, u32)>,
    pub analysis: Option<Phase>,
    pub wake_at: Option<Duration>,
    pub complete: bool,
}

impl BlueGreenStatus {
    pub fn stable(hash: &str) -> Self {
        BlueGreenStatus {
            active: hash.to_string(),
            preview: None,
            ready_at: None,
            pre_passed: false,
            post_passed: false,
            switched_from: None,
            analysis: None,
            hold: None,
            aborted: None,
            promoted: false,
        }
    }

    fn in_progress(&self) -> bool {
        self.preview.is_some() || self.switched_from.is_some()
    }
}

/// One transition; pure.
pub fn next(
    spec: &BlueGreenSpec,
    replicas: u32,
    status: &BlueGreenStatus,
    event: Event,
) -> Result<(BlueGreenStatus, Desired), IllegalTransition> {
    let mut s = status.clone();
    let mut wake = None;
    match event {
        Event::NewRevision { hash } => {
            if Some(&hash) == s.preview.as_ref() && s.aborted.is_none() {
            } else if hash == s.active {
                s = BlueGreenStatus::stable(&hash);
            } else {
                let active = s.active.clone();
                s = BlueGreenStatus::stable(&active);
                s.preview = Some(hash);
            }
        }
        Event::Observe { now, preview_available } => {
            wake = advance(spec, replicas, &mut s, now, preview_available);
        }
        Event::Promote { now, full } => {
            if s.preview.is_none() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            if s.aborted.is_some() {
                return Err(IllegalTransition::Aborted);
            }
            if s.ready_at.is_none() || (spec.auto_promotion_enabled && s.hold.is_none() && s.analysis.is_none()) {
                return Err(IllegalTransition::NotPaused);
            }
            // An inconclusive analysis holds for a person's verdict; a
            // promote is that verdict.
            let decided = s.hold.take() == Some(Hold::Inconclusive);
            if full || decided || s.analysis.is_none() {
                s.analysis = None;
                s.pre_passed = true;
                switch(&mut s, now);
            } else {
                // As Argo: a plain promote lifts the pause; the switch
                // still waits for the pre-promotion analysis to pass.
                s.promoted = true;
            }
        }
        Event::Abort { reason } => {
            if !s.in_progress() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            abort(&mut s, reason);
        }
        Event::Pause => {
            if !s.in_progress() {
                return Err(IllegalTransition::NothingToRollOut);
            }
            s.hold = Some(Hold::User);
        }
        Event::Resume => {
            if s.aborted.take().is_some() {
                s.ready_at = None;
                s.pre_passed = false;
                s.post_passed = false;
            } else if s.hold.take().is_none() {
                return Err(IllegalTransition::NotHeld);
            }
        }
        Event::Analysis { phase, outcome, now } => {
            if s.analysis == Some(phase) && s.aborted.is_none() {
                match (phase, outcome) {
                    (_, AnalysisOutcome::Inconclusive) => s.hold = Some(Hold::Inconclusive),
                    (Phase::PrePromotion, AnalysisOutcome::Successful) => {
                        s.analysis = None;
                        s.pre_passed = true;
                        wake = advance(spec, replicas, &mut s, now, replicas);
                    }
                    (Phase::PostPromotion, AnalysisOutcome::Successful) => {
                        s.analysis = None;
                        s.post_passed = true;
                        wake = advance(spec, replicas, &mut s, now, replicas);
                    }
                    (phase, AnalysisOutcome::Failed(why)) => {
                        let which = if phase == Phase::PrePromotion { "pre" } else { "post" };
                        abort(&mut s, format!("{which}-promotion analysis failed: {why}"));
                    }
                }
            }
        }
    }
    let d = desired(replicas, &s, wake);
    Ok((s, d))
}

fn switch(s: &mut BlueGreenStatus, now: Duration) {
    s.promoted = false;
    if let Some(green) = s.preview.take() {
        let blue = std::mem::replace(&mut s.active, green);
        s.switched_from = Some((blue, now));
    }
}

/// Back to blue in one step: after a switch the active VIP returns to the
/// old pods (still running through the scale-down delay).
fn abort(s: &mut BlueGreenStatus, reason: String) {
    if let Some((blue, _)) = s.switched_from.take() {
        let green = std::mem::replace(&mut s.active, blue);
        s.preview = Some(green);
    }
    s.aborted = Some(reason);
    s.analysis = None;
    s.hold = None;
}

/// Takes the steps that can be taken now; returns when to look again.
fn advance(
    spec: &BlueGreenSpec,
    replicas: u32,
    s: &mut BlueGreenStatus,
    now: Duration,
    available: u32,
) -> Option<Duration> {
    if s.aborted.is_some() {
        return None;
    }
    if s.preview.is_some() && available >= replicas {
        s.ready_at.get_or_insert(now);
    }
    if s.hold.is_some() {
        return None;
    }
    if s.preview.is_some() {
        let ready_at = s.ready_at?;
        if spec.pre_promotion_analysis.is_some() && !s.pre_passed {
            s.analysis = Some(Phase::PrePromotion);
            return None;
        }
        if !spec.auto_promotion_enabled && !s.promoted {
            return None;
        }
        if let Some(delay) = spec.auto_promotion_delay {
            if now < ready_at + delay {
                return Some(ready_at + delay);
            }
        }
        switch(s, now);
    }
    if let Some((_, at)) = s.switched_from.clone() {
        if spec.post_promotion_analysis.is_some() && !s.post_passed {
            s.analysis = Some(Phase::PostPromotion);
            return None;
        }
        if now >= at + spec.scale_down_delay {
            let active = s.active.clone();
            *s = BlueGreenStatus::stable(&active);
            return None;
        }
        return Some(at + spec.scale_down_delay);
    }
    None
}

fn desired(replicas: u32, s: &BlueGreenStatus, wake_at: Option<Duration>) -> Desired {
    let mut pods = vec![(s.active.clone(), replicas)];
    if let Some(p) = &s.preview {
        // Aborted before a switch: the preview pods go.
        let n = if s.aborted.is_some() && s.switched_from.is_none() { 0 } else { replicas };
        pods.push((p.clone(), n));
    }
    if let Some((blue, _)) = &s.switched_from {
        pods.push((blue.clone(), replicas));
    }
    Desired {
        active: s.active.clone(),
        preview: s.preview.clone().unwrap_or_else(|| s.active.clone()),
        replicas: pods,
        analysis: s.analysis,
        wake_at,
        complete: !s.in_progress(),
    }
}

#[cfg(test)]
mod tests;
