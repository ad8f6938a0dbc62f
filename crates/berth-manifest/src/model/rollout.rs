//! Argo Rollouts' `Rollout`: a Deployment whose updates go through canary
//! steps or a blue-green switch, gated by analysis.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pod::PodTemplate;
use super::workload::IntOrPercent;
use super::ObjectMeta;
use crate::path::FieldPath;
use crate::selector::Selector;

/// A Rollout: keep `replicas` pods of `template` running; move to a new
/// template by `strategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSpec {
    pub meta: ObjectMeta,
    pub replicas: u32,
    /// Never empty; always matches the template's labels.
    pub selector: Selector,
    /// Checked and normalised exactly as a Deployment's, so the same
    /// template has the same [`PodTemplate::hash`] in both.
    pub template: PodTemplate,
    pub strategy: RolloutStrategy,
    pub min_ready: Duration,
    pub progress_deadline: Duration,
    pub revision_history_limit: u32,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutStrategy {
    Canary(CanarySpec),
    BlueGreen(BlueGreenSpec),
}

/// Shift pods (and with them traffic) to the new template step by step.
/// Without steps, the update is a rolling update bounded by `max_surge` and
/// `max_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanarySpec {
    pub steps: Vec<CanaryStep>,
    /// Runs beside the steps from `starting_step` on; failing aborts.
    pub analysis: Option<BackgroundAnalysis>,
    /// Default 25%, as Argo.
    pub max_surge: IntOrPercent,
    /// Default 25%, as Argo. Never 0 together with `max_surge`.
    pub max_unavailable: IntOrPercent,
    /// A Service berth points at the stable pods only, while a canary runs.
    pub stable_service: Option<String>,
    /// A Service berth points at the canary pods only; never the same as
    /// `stable_service`.
    pub canary_service: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CanaryStep {
    /// The share of pods (so of traffic) on the new template, 1-100.
    SetWeight(u8),
    /// Wait this long, or (`None`) until promoted.
    Pause(Option<Duration>),
    /// Size the canary apart from the weight.
    SetCanaryScale(CanaryScale),
    /// Run an analysis; the next step waits for it to succeed.
    Analysis(AnalysisRef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CanaryScale {
    Replicas(u32),
    /// A percentage of `replicas`, 0-100.
    Weight(u8),
    /// Back to following the last `SetWeight`.
    MatchTrafficWeight,
}

/// An analysis to run: the metrics of every named AnalysisTemplate (same
/// namespace) together, with these argument values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisRef {
    /// Never empty.
    pub templates: Vec<String>,
    pub args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundAnalysis {
    pub analysis: AnalysisRef,
    /// The index of the step at which the analysis starts (0: with the
    /// update); at most the number of steps.
    pub starting_step: u32,
}

/// Bring the new template up beside the old one, then switch the active
/// Service to it at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenSpec {
    /// The Service that carries production traffic.
    pub active_service: String,
    /// A Service pointed at the new pods before the switch; never the same
    /// as `active_service`.
    pub preview_service: Option<String>,
    /// Default true: switch as soon as the new pods are ready (and the
    /// pre-promotion analysis succeeded). False: wait to be promoted.
    pub auto_promotion_enabled: bool,
    /// Only with `auto_promotion_enabled`: wait this long after the new pods
    /// are ready before switching.
    pub auto_promotion_delay: Option<Duration>,
    /// How long the old pods keep running after the switch (default 30 s).
    pub scale_down_delay: Duration,
    pub pre_promotion_analysis: Option<AnalysisRef>,
    pub post_promotion_analysis: Option<AnalysisRef>,
}

impl RolloutSpec {
    /// Every analysis the Rollout may run, with the manifest path of its
    /// `templates` list (`spec.strategy.canary.steps[2].analysis`), in
    /// document order.
    pub fn analysis_refs(&self) -> Vec<(FieldPath, &AnalysisRef)> {
        let mut out = Vec::new();
        let strategy = FieldPath::of(&["spec", "strategy"]);
        match &self.strategy {
            RolloutStrategy::Canary(c) => {
                let canary = strategy.field("canary");
                for (i, step) in c.steps.iter().enumerate() {
                    if let CanaryStep::Analysis(a) = step {
                        out.push((canary.field("steps").index(i).field("analysis"), a));
                    }
                }
                if let Some(b) = &c.analysis {
                    out.push((canary.field("analysis"), &b.analysis));
                }
            }
            RolloutStrategy::BlueGreen(b) => {
                let blue_green = strategy.field("blueGreen");
                if let Some(a) = &b.pre_promotion_analysis {
                    out.push((blue_green.field("prePromotionAnalysis"), a));
                }
                if let Some(a) = &b.post_promotion_analysis {
                    out.push((blue_green.field("postPromotionAnalysis"), a));
                }
            }
        }
        out
    }
}
