//! Deployment rollouts: numbered revisions of the pod template, progress
//! toward the newest one, and the verdict on it, all pure. Beyond
//! Kubernetes: when the new revision misses its progress deadline or its
//! pods crash-loop, berth rolls back to the last revision that was fully
//! available (unless the annotation `berth.dev/auto-rollback: "false"`
//! says not to).

use std::time::Duration;

use berth_core::record::Record;
use berth_manifest::model::DeploymentSpec;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The annotation that turns automatic rollback off.
pub const AUTO_ROLLBACK: &str = "berth.dev/auto-rollback";
/// kubectl's annotation for why a revision was made.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// One revision of a Deployment's pod template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u64,
    pub hash: String,
    /// `spec.template` as written.
    pub template: serde_json::Value,
    pub change_cause: Option<String>,
    pub created: String,
    pub images: Vec<String>,
}

/// Why berth rolled a Deployment back on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The template hash that failed.
    pub from: String,
    /// The template rolled back to.
    pub to: String,
    pub to_revision: u64,
    pub reason: String,
    pub at: String,
}

/// What the reconciler keeps per Deployment besides its manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// Oldest first; the last is the current one.
    pub revisions: Vec<Revision>,
    /// The hash of the last revision that was fully available.
    pub stable: Option<String>,
    /// When the current revision last made progress (its rollout started,
    /// or one more of its pods became available).
    pub progress_at: Option<String>,
    /// Available pods of the current revision at `progress_at`.
    pub progress_available: usize,
    pub rolled_back: Option<RolledBack>,
    /// The progress deadline passed and nothing was rolled back.
    pub deadline_exceeded: bool,
    /// The manifest generation last acted on.
    pub observed_generation: u64,
}

impl Record for DeploymentState {
    const KIND: &'static str = "k8s/DeploymentState";
    const WHAT: &'static str = "deployment state";
}

impl DeploymentState {
    pub fn current(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    pub fn revision(&self, n: u64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.revision == n)
    }

    pub fn by_hash(&self, hash: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.hash == hash)
    }
}

/// Makes `hash` the current revision. A template seen before (a rollback)
/// moves to the end with the next number, as in Kubernetes. Keeps the
/// current revision and `history_limit` older ones. Returns whether
/// anything changed; a new revision restarts the progress clock.
pub fn record_revision(
    state: &mut DeploymentState,
    hash: &str,
    template: &serde_json::Value,
    change_cause: Option<String>,
    images: Vec<String>,
    now: &str,
    history_limit: u32,
) -> bool {
    if state.current().is_some_and(|r| r.hash == hash) {
        return false;
    }
    let next = state.revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    // A template seen before keeps when it was made and why, as the
    // Kubernetes ReplicaSet it would have been does.
    let (created, change_cause) = match state.revisions.iter().position(|r| r.hash == hash) {
        Some(i) => {
            let old = state.revisions.remove(i);
            (old.created, old.change_cause)
        }
        None => (now.to_string(), change_cause),
    };
    state.revisions.push(Revision {
        revision: next,
        hash: hash.to_string(),
        template: template.clone(),
        change_cause,
        created,
        images,
    });
    let keep = history_limit as usize + 1;
    if state.revisions.len() > keep {
        let drop = state.revisions.len() - keep;
        // The stable revision is what a rollback needs: never pruned.
        let stable = state.stable.clone();
        let mut dropped = 0;
        state.revisions.retain(|r| {
            if dropped < drop && Some(&r.hash) != stable.as_ref() {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }
    state.progress_at = Some(now.to_string());
    state.progress_available = 0;
    state.deadline_exceeded = false;
    // A rollback is reported until some other template is rolled out.
    if state.rolled_back.as_ref().is_some_and(|r| r.to != hash) {
        state.rolled_back = None;
    }
    true
}

/// One pod as the rollout judge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProgress {
    pub hash: String,
    pub available: bool,
    pub terminating: bool,
    /// Waiting in CrashLoopBackOff after restarting at least twice.
    pub crash_looping: bool,
}

/// What to do about the current revision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still rolling out (or nothing to do).
    Progressing,
    /// Every replica is of the current revision and available.
    Complete,
    /// The deadline passed; automatic rollback is off or has nothing to go
    /// back to.
    DeadlineExceeded,
    /// Go back to this revision.
    RollBack { to: Revision, reason: String },
}

/// Judges the current revision's rollout at `now`. Updates the progress
/// clock when one more new pod became available.
pub fn judge(
    state: &mut DeploymentState,
    d: &DeploymentSpec,
    hash: &str,
    pods: &[PodProgress],
    now: DateTime<Utc>,
) -> Verdict {
    let live: Vec<&PodProgress> = pods.iter().filter(|p| !p.terminating).collect();
    let new_available = live.iter().filter(|p| p.hash == hash && p.available).count();
    let complete = live.len() == d.replicas as usize
        && live.iter().all(|p| p.hash == hash)
        && new_available == d.replicas as usize
        && !pods.iter().any(|p| p.terminating && p.hash != hash);
    if complete {
        state.stable = Some(hash.to_string());
        state.deadline_exceeded = false;
        return Verdict::Complete;
    }
    if new_available > state.progress_available {
        state.progress_available = new_available;
        state.progress_at = Some(now.to_rfc3339());
    }
    if d.paused {
        // A paused rollout makes no progress and misses no deadline.
        state.progress_at = Some(now.to_rfc3339());
        return Verdict::Progressing;
    }
    let since = state
        .progress_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (now - t.with_timezone(&Utc)).to_std().unwrap_or_default())
        .unwrap_or_default();
    let crash_loop = live.iter().any(|p| p.hash == hash && p.crash_looping);
    let late = since > d.progress_deadline;
    if !crash_loop && !late {
        return Verdict::Progressing;
    }
    let reason = if crash_loop {
        "pods of the new revision are crash-looping".to_string()
    } else {
        format!("the rollout made no progress for {}s (progressDeadlineSeconds)", d.progress_deadline.as_secs())
    };
    let auto = d.meta.annotations.get(AUTO_ROLLBACK).is_none_or(|v| v != "false");
    let target = state.stable.as_deref().filter(|s| *s != hash).and_then(|s| state.by_hash(s)).cloned();
    match (auto, target) {
        (true, Some(to)) => Verdict::RollBack { to, reason },
        _ if late => {
            state.deadline_exceeded = true;
            Verdict::DeadlineExceeded
        }
        _ => Verdict::Progressing,
    }
}

/// Whether a pod counts as available: ready for `min_ready` already.
pub fn available(ready: bool, ready_since: Option<&str>, min_ready: Duration, now: DateTime<Utc>) -> bool {
    if !ready {
        return false;
    }
    if min_ready.is_zero() {
        return true;
    }
    ready_since
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| (now - t.with_timezone(&Utc)).to_std().unwrap_or_default() >= min_ready)
}

#[cfg(test)]
mod tests;
