//! An Argo Rollout's state as its reconciler keeps it (revisions, where
//! the strategy stands, analysis runs), and the [`machine`] that moves it.
//! Plain data and pure functions; the daemon stores and acts.

pub mod machine;

use std::collections::BTreeMap;
use std::time::Duration;

use berth_core::record::Record;
use serde::{Deserialize, Serialize};

use crate::analysis_run::{AnalysisRun, RunPhase};
use crate::bluegreen::BlueGreenStatus;
use crate::canary::CanaryStatus;
use crate::deployment::revisions::DeploymentState;
use berth_manifest::model::Metric;

/// How many finished analysis runs a rollout keeps for `describe`.
pub const FINISHED_KEPT: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyStatus {
    Canary(CanaryStatus),
    BlueGreen(BlueGreenStatus),
}

impl StrategyStatus {
    /// The hash the rollout is moving to (the stable one when idle).
    pub fn target(&self) -> &str {
        match self {
            StrategyStatus::Canary(c) => &c.canary,
            StrategyStatus::BlueGreen(b) => b.preview.as_deref().unwrap_or(&b.active),
        }
    }

    /// The hash that serves when nothing is being rolled out (blue-green:
    /// the active one).
    pub fn stable(&self) -> &str {
        match self {
            StrategyStatus::Canary(c) => &c.stable,
            StrategyStatus::BlueGreen(b) => &b.active,
        }
    }

    pub fn aborted(&self) -> Option<&str> {
        match self {
            StrategyStatus::Canary(c) => c.aborted.as_deref(),
            StrategyStatus::BlueGreen(b) => b.aborted.as_deref(),
        }
    }
}

/// One analysis run of a rollout, with the metrics it was started with
/// (arguments rendered), so a template changed meanwhile does not change a
/// run under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `step-N`, `background`, `pre-promotion` or `post-promotion`.
    pub name: String,
    /// The template hash measured (`result`), and the one compared against
    /// (`stable`).
    pub canary: String,
    pub stable: Option<String>,
    pub metrics: Vec<Metric>,
    pub run: AnalysisRun,
    /// The last value measured per metric, as text.
    pub last_values: Vec<Option<String>>,
    /// Counter readings at the last measurement, per metric (restarts;
    /// probe successes and attempts), for figures "during the interval".
    pub baselines: Vec<Option<(u64, u64)>>,
    /// Set when the run ended, or could not start (a missing template).
    pub outcome: Option<RunPhase>,
}

impl RunRecord {
    pub fn new(name: String, canary: String, stable: Option<String>, metrics: Vec<Metric>, now: Duration) -> Self {
        let n = metrics.len();
        RunRecord {
            name,
            canary,
            stable,
            run: AnalysisRun::start(&metrics, now),
            metrics,
            last_values: vec![None; n],
            baselines: vec![None; n],
            outcome: None,
        }
    }

    /// A run that could not start; it fails at once with `why`.
    pub fn failed_to_start(name: String, canary: String, why: String, now: Duration) -> Self {
        let mut r = RunRecord::new(name, canary, None, Vec::new(), now);
        r.outcome = Some(RunPhase::Failed(why));
        r
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Revision history, numbered as a Deployment's.
    pub revisions: DeploymentState,
    pub strategy: Option<StrategyStatus>,
    /// Runs under way, by name.
    pub runs: BTreeMap<String, RunRecord>,
    /// The last finished runs, oldest first.
    pub finished: Vec<RunRecord>,
    /// When the current pause or hold began (RFC 3339), for the status.
    pub paused_since: Option<String>,
    pub observed_generation: u64,
    /// The last progress seen (status and available pods), and when: the
    /// progress deadline counts from there.
    #[serde(default)]
    pub progress_mark: Option<String>,
    #[serde(default)]
    pub progress_at: Option<Duration>,
}

impl Record for RolloutState {
    const KIND: &'static str = "k8s/RolloutState";
    const WHAT: &'static str = "rollout state";
}
