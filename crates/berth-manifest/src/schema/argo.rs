//! The supported subset of Argo Rollouts' `Rollout` and `AnalysisTemplate`
//! (and berth's own `berth:` metric provider).

use super::{list, object, value, TypeSchema, API_VERSION, KIND, LABEL_SELECTOR, OBJECT_META, POD_TEMPLATE_SPEC};

pub static ROLLOUT: TypeSchema = TypeSchema {
    name: "Rollout",
    fields: &[API_VERSION, KIND, object("metadata", &OBJECT_META, ""), object("spec", &ROLLOUT_SPEC, "required")],
};

pub static ROLLOUT_SPEC: TypeSchema = TypeSchema {
    name: "RolloutSpec",
    fields: &[
        value("replicas", "default 1; 0 or more"),
        object("selector", &LABEL_SELECTOR, "required, non-empty; must match the template labels"),
        object("template", &POD_TEMPLATE_SPEC, "required (workloadRef is not supported)"),
        object("strategy", &ROLLOUT_STRATEGY, "required"),
        value("minReadySeconds", "default 0"),
        value("progressDeadlineSeconds", "default 600; more than minReadySeconds"),
        value("revisionHistoryLimit", "default 10"),
        value("paused", "default false"),
    ],
};

pub static ROLLOUT_STRATEGY: TypeSchema = TypeSchema {
    name: "RolloutStrategy",
    fields: &[
        object("canary", &CANARY_STRATEGY, "exactly one of canary, blueGreen"),
        object("blueGreen", &BLUE_GREEN_STRATEGY, ""),
    ],
};

pub static CANARY_STRATEGY: TypeSchema = TypeSchema {
    name: "CanaryStrategy",
    fields: &[
        list("steps", &CANARY_STEP, "default none: replace every pod as a rolling update"),
        object("analysis", &ROLLOUT_ANALYSIS_BACKGROUND, "runs beside the steps"),
        value("maxSurge", "count or percentage, default 25%"),
        value("maxUnavailable", "count or percentage up to 100%, default 25%; not 0 when maxSurge is 0"),
        value("stableService", "a Service name; berth points it at the stable pods"),
        value("canaryService", "a Service name, not stableService; berth points it at the canary pods"),
    ],
};

pub static CANARY_STEP: TypeSchema = TypeSchema {
    name: "CanaryStep",
    fields: &[
        value("setWeight", "exactly one of setWeight, pause, setCanaryScale, analysis; 1-100"),
        object("pause", &ROLLOUT_PAUSE, "`{}` waits for a promotion"),
        object("setCanaryScale", &SET_CANARY_SCALE, ""),
        object("analysis", &ROLLOUT_ANALYSIS, "the next step waits for it"),
    ],
};

pub static ROLLOUT_PAUSE: TypeSchema = TypeSchema {
    name: "RolloutPause",
    fields: &[value("duration", "seconds, or a duration such as 30s, 5m, 1h or 1h30m; 0 or more")],
};

pub static SET_CANARY_SCALE: TypeSchema = TypeSchema {
    name: "SetCanaryScale",
    fields: &[
        value("replicas", "exactly one of replicas, weight, matchTrafficWeight; 0 or more"),
        value("weight", "0-100, a percentage of spec.replicas"),
        value("matchTrafficWeight", "true"),
    ],
};

pub static ROLLOUT_ANALYSIS: TypeSchema = TypeSchema {
    name: "RolloutAnalysis",
    fields: &[
        list("templates", &ANALYSIS_TEMPLATE_REF, "at least one; AnalysisTemplates of the Rollout's namespace"),
        list("args", &ANALYSIS_RUN_ARGUMENT, "every argument the templates declare without a value"),
    ],
};

pub static ROLLOUT_ANALYSIS_BACKGROUND: TypeSchema = TypeSchema {
    name: "RolloutAnalysisBackground",
    fields: &[
        list("templates", &ANALYSIS_TEMPLATE_REF, "at least one; AnalysisTemplates of the Rollout's namespace"),
        list("args", &ANALYSIS_RUN_ARGUMENT, "every argument the templates declare without a value"),
        value("startingStep", "default 0; the index of the step the analysis starts with"),
    ],
};

pub static ANALYSIS_TEMPLATE_REF: TypeSchema =
    TypeSchema { name: "AnalysisTemplateRef", fields: &[value("templateName", "required")] };

pub static ANALYSIS_RUN_ARGUMENT: TypeSchema = TypeSchema {
    name: "AnalysisRunArgument",
    fields: &[value("name", "an argument a referenced template declares"), value("value", "required")],
};

pub static BLUE_GREEN_STRATEGY: TypeSchema = TypeSchema {
    name: "BlueGreenStrategy",
    fields: &[
        value("activeService", "required; a Service name"),
        value("previewService", "a Service name, not activeService"),
        value("autoPromotionEnabled", "default true"),
        value("autoPromotionSeconds", "promote this long after the new pods are ready; needs autoPromotionEnabled"),
        value("scaleDownDelaySeconds", "default 30"),
        object("prePromotionAnalysis", &ROLLOUT_ANALYSIS, "must succeed before the active Service switches"),
        object("postPromotionAnalysis", &ROLLOUT_ANALYSIS, "runs after the switch; failing switches back"),
    ],
};

pub static ANALYSIS_TEMPLATE: TypeSchema = TypeSchema {
    name: "AnalysisTemplate",
    fields: &[
        API_VERSION,
        KIND,
        object("metadata", &OBJECT_META, ""),
        object("spec", &ANALYSIS_TEMPLATE_SPEC, "required"),
    ],
};

pub static ANALYSIS_TEMPLATE_SPEC: TypeSchema = TypeSchema {
    name: "AnalysisTemplateSpec",
    fields: &[list("args", &ARGUMENT, ""), list("metrics", &METRIC, "at least one; names unique")],
};

pub static ARGUMENT: TypeSchema = TypeSchema {
    name: "Argument",
    fields: &[
        value("name", "letters, digits, `-` and `_`; unique; used as `{{args.NAME}}`"),
        value("value", "the default; without one every reference must give the argument"),
    ],
};

pub static METRIC: TypeSchema = TypeSchema {
    name: "Metric",
    fields: &[
        value("name", "required"),
        value("interval", "a duration; default: measure once"),
        value("initialDelay", "a duration, default 0"),
        value("count", "default 1 without interval, unlimited with it; at least 1"),
        value("successCondition", "a condition over result (and stable), e.g. `result >= 0.95`"),
        value("failureCondition", "a condition; wins over successCondition; with neither, every measurement passes"),
        value("failureLimit", "default 0"),
        value("inconclusiveLimit", "default 0"),
        value("consecutiveErrorLimit", "default 4"),
        object("provider", &METRIC_PROVIDER, "required"),
    ],
};

pub static METRIC_PROVIDER: TypeSchema = TypeSchema {
    name: "MetricProvider",
    fields: &[
        object("prometheus", &PROMETHEUS_METRIC, "exactly one of prometheus, berth"),
        object("berth", &BERTH_METRIC, "berth's own measures"),
    ],
};

pub static PROMETHEUS_METRIC: TypeSchema = TypeSchema {
    name: "PrometheusMetric",
    fields: &[
        value("address", "required; an http:// or https:// URL; may use `{{args.NAME}}`"),
        value("query", "required; PromQL giving one number; may use `{{args.NAME}}`"),
    ],
};

pub static BERTH_METRIC: TypeSchema = TypeSchema {
    name: "BerthMetric",
    fields: &[
        object("httpCheck", &BERTH_HTTP_CHECK, "exactly one of httpCheck, probe, restarts"),
        value("probe", "readiness, liveness or startup: the share of pods passing it"),
        object("restarts", &BERTH_RESTARTS, "`{}`: container restarts of the new pods"),
    ],
};

pub static BERTH_HTTP_CHECK: TypeSchema = TypeSchema {
    name: "BerthHttpCheck",
    fields: &[
        value("path", "default /; starts with /"),
        value("port", "required; 1-65535"),
        value("measure", "successRatio (default) or latencyP99Ms"),
    ],
};

pub static BERTH_RESTARTS: TypeSchema = TypeSchema { name: "BerthRestarts", fields: &[] };

/// What to say instead of the generic "remove it" for some unsupported
/// fields.
pub fn unsupported_hint(t: &TypeSchema, field: &str) -> Option<&'static str> {
    if std::ptr::eq(t, &METRIC_PROVIDER) {
        return Some("use prometheus or berth");
    }
    match field {
        "trafficRouting" if std::ptr::eq(t, &CANARY_STRATEGY) => Some(
            "remove it; berth splits traffic by the number of canary and stable pods, behind canaryService and stableService",
        ),
        "workloadRef" if std::ptr::eq(t, &ROLLOUT_SPEC) => Some("remove it and write the pod template under spec.template"),
        _ => None,
    }
}
