//! Argo Rollouts' `argoproj.io/v1alpha1` kinds as written in a manifest:
//! `Rollout` and `AnalysisTemplate`, decoded the way [`mod@crate::parse`]
//! decodes the Kubernetes kinds (k8s-openapi has no Argo types).
//!
//! Every field Argo Rollouts defines is declared here, so that decoding
//! records only real typos as unknown fields; the fields berth does not act
//! on are held as [`Unsupported`] and refused by name by the field walk,
//! because the allow-list in [`crate::schema`] does not list them. Every
//! field is optional at this stage: what is required, and what values are
//! allowed, the validators check, with messages that say what to do.
//! `berth:` metric providers are berth's own extension.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

/// A field Argo Rollouts defines and berth does not support: kept as
/// written only so that it is not mistaken for a typo.
pub type Unsupported = Option<serde_json::Value>;

/// A count or duration Argo accepts as a number or a string.
pub type IntOrStr = Option<IntOrString>;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<ObjectMeta>,
    pub spec: Option<RolloutSpec>,
    pub status: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    pub replicas: Option<i64>,
    pub selector: Option<LabelSelector>,
    pub template: Option<PodTemplateSpec>,
    pub min_ready_seconds: Option<i64>,
    pub revision_history_limit: Option<i64>,
    pub progress_deadline_seconds: Option<i64>,
    pub paused: Option<bool>,
    pub strategy: Option<RolloutStrategy>,
    pub workload_ref: Unsupported,
    pub analysis: Unsupported,
    pub progress_deadline_abort: Unsupported,
    pub restart_at: Unsupported,
    pub rollback_window: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    pub canary: Option<CanaryStrategy>,
    pub blue_green: Option<BlueGreenStrategy>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    pub steps: Option<Vec<CanaryStep>>,
    pub analysis: Option<BackgroundAnalysis>,
    pub max_surge: IntOrStr,
    pub max_unavailable: IntOrStr,
    pub stable_service: Option<String>,
    pub canary_service: Option<String>,
    pub canary_metadata: Unsupported,
    pub stable_metadata: Unsupported,
    pub scale_down_delay_seconds: Unsupported,
    pub scale_down_delay_revision_limit: Unsupported,
    pub abort_scale_down_delay_seconds: Unsupported,
    pub min_pods_per_replica_set: Unsupported,
    pub traffic_routing: Unsupported,
    pub anti_affinity: Unsupported,
    pub dynamic_stable_scale: Unsupported,
    pub ping_pong: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    pub set_weight: Option<i64>,
    pub pause: Option<RolloutPause>,
    pub set_canary_scale: Option<SetCanaryScale>,
    pub analysis: Option<RolloutAnalysis>,
    pub experiment: Unsupported,
    pub set_header_route: Unsupported,
    pub set_mirror_route: Unsupported,
    pub plugin: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    pub duration: IntOrStr,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    pub replicas: Option<i64>,
    pub weight: Option<i64>,
    pub match_traffic_weight: Option<bool>,
}

/// An analysis run by a step, or before or after a blue-green promotion.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    pub args: Option<Vec<AnalysisRunArgument>>,
    pub dry_run: Unsupported,
    pub measurement_retention: Unsupported,
    pub analysis_run_metadata: Unsupported,
}

/// The analysis that runs beside a canary's steps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    pub args: Option<Vec<AnalysisRunArgument>>,
    pub starting_step: Option<i64>,
    pub dry_run: Unsupported,
    pub measurement_retention: Unsupported,
    pub analysis_run_metadata: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    pub template_name: Option<String>,
    pub cluster_scope: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    pub name: Option<String>,
    pub value: Option<String>,
    pub value_from: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    pub active_service: Option<String>,
    pub preview_service: Option<String>,
    pub auto_promotion_enabled: Option<bool>,
    pub auto_promotion_seconds: Option<i64>,
    pub scale_down_delay_seconds: Option<i64>,
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    pub preview_replica_count: Unsupported,
    pub max_unavailable: Unsupported,
    pub scale_down_delay_revision_limit: Unsupported,
    pub abort_scale_down_delay_seconds: Unsupported,
    pub anti_affinity: Unsupported,
    pub active_metadata: Unsupported,
    pub preview_metadata: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplate {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<ObjectMeta>,
    pub spec: Option<AnalysisTemplateSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    pub args: Option<Vec<Argument>>,
    pub metrics: Option<Vec<Metric>>,
    pub dry_run: Unsupported,
    pub measurement_retention: Unsupported,
}

/// An argument an AnalysisTemplate declares; without a value, every
/// reference must give one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    pub name: Option<String>,
    pub value: Option<String>,
    pub value_from: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: Option<String>,
    pub interval: IntOrStr,
    pub initial_delay: IntOrStr,
    pub count: IntOrStr,
    pub success_condition: Option<String>,
    pub failure_condition: Option<String>,
    pub failure_limit: IntOrStr,
    pub inconclusive_limit: IntOrStr,
    pub consecutive_error_limit: IntOrStr,
    pub provider: Option<MetricProvider>,
    pub consecutive_success_limit: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    pub prometheus: Option<PrometheusMetric>,
    pub berth: Option<BerthMetric>,
    pub web: Unsupported,
    pub job: Unsupported,
    pub datadog: Unsupported,
    pub wavefront: Unsupported,
    pub new_relic: Unsupported,
    pub kayenta: Unsupported,
    pub cloud_watch: Unsupported,
    pub graphite: Unsupported,
    pub influxdb: Unsupported,
    pub skywalking: Unsupported,
    pub plugin: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    pub address: Option<String>,
    pub query: Option<String>,
    pub authentication: Unsupported,
    pub timeout: Unsupported,
    pub insecure: Unsupported,
    pub headers: Unsupported,
    pub range_query: Unsupported,
}

/// berth's own providers, measured by the daemon itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BerthMetric {
    pub http_check: Option<BerthHttpCheck>,
    pub probe: Option<String>,
    pub restarts: Option<BerthRestarts>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BerthHttpCheck {
    pub path: Option<String>,
    pub port: Option<i64>,
    pub measure: Option<String>,
}

/// `restarts: {}`: takes no fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BerthRestarts {}
