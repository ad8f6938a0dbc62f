//! `apps/v1 Deployment`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{object_meta, NameRule};
use super::{non_negative, pod, Report};
use crate::model::{DeploymentSpec, IntOrPercent, PodTemplate, Strategy};
use crate::path::FieldPath;
use crate::selector::{Operator, Requirement, Selector};

const DEFAULT_PROGRESS_DEADLINE: u32 = 600;
const DEFAULT_REVISION_HISTORY: u32 = 10;

pub(super) fn deployment(d: &Deployment, report: &mut Report<'_>) -> Option<DeploymentSpec> {
    let meta = object_meta(&d.metadata, NameRule::Subdomain, report);
    let path = FieldPath::of(&["spec"]);
    let Some(spec) = &d.spec else {
        report.invalid(&path, "the Deployment has no spec", "add a spec with selector and template");
        return None;
    };
    let replicas = non_negative(report, &path.field("replicas"), spec.replicas.map(i64::from), 1, 0);
    let selector = label_selector(&path.field("selector"), &spec.selector, report);
    let template = pod::template(&path.field("template"), &spec.template, report);
    if let (Some(selector), Some(template)) = (&selector, &template) {
        selector_selects_template(&path, selector, template, report);
    }
    let strategy = strategy(&path.field("strategy"), spec.strategy.as_ref(), report);
    let timing = timing(
        &path,
        [spec.min_ready_seconds, spec.progress_deadline_seconds, spec.revision_history_limit].map(|v| v.map(i64::from)),
        report,
    );
    Some(DeploymentSpec {
        meta,
        replicas,
        selector: selector?,
        template: template?,
        strategy,
        min_ready: timing.min_ready,
        progress_deadline: timing.progress_deadline,
        revision_history_limit: timing.revision_history_limit,
        paused: spec.paused.unwrap_or(false),
    })
}

/// The selector must be non-empty and select the template's own labels.
pub(super) fn selector_selects_template(
    spec_path: &FieldPath,
    selector: &Selector,
    template: &PodTemplate,
    report: &mut Report<'_>,
) {
    let labels_path = spec_path.field("template").field("metadata").field("labels");
    if selector.is_empty() {
        report.invalid(
            &spec_path.field("selector"),
            "the selector is empty, so it would match every pod",
            "select the template's labels, e.g. matchLabels: {app: web}",
        );
    } else if template.labels.is_empty() {
        report.invalid(
            &labels_path,
            "the pod template has no labels",
            format!("add labels that match spec.selector ({selector})"),
        );
    } else if !selector.matches(&template.labels) {
        let labels: Vec<String> = template.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        report.invalid(
            &labels_path,
            format!("the template labels ({}) do not match spec.selector ({selector})", labels.join(",")),
            "make the template labels satisfy the selector",
        );
    }
}

/// `minReadySeconds`, `progressDeadlineSeconds` and `revisionHistoryLimit`
/// with Kubernetes' defaults (Argo's are the same).
pub(super) struct Timing {
    pub min_ready: Duration,
    pub progress_deadline: Duration,
    pub revision_history_limit: u32,
}

/// Takes `[minReadySeconds, progressDeadlineSeconds, revisionHistoryLimit]`.
pub(super) fn timing(
    spec_path: &FieldPath,
    [min_ready_seconds, progress_deadline_seconds, revision_history_limit]: [Option<i64>; 3],
    report: &mut Report<'_>,
) -> Timing {
    let min_ready = non_negative(report, &spec_path.field("minReadySeconds"), min_ready_seconds, 0, 0);
    let progress_path = spec_path.field("progressDeadlineSeconds");
    let progress = non_negative(report, &progress_path, progress_deadline_seconds, DEFAULT_PROGRESS_DEADLINE, 1);
    if progress <= min_ready {
        report.invalid(
            &progress_path,
            format!("must be more than minReadySeconds ({min_ready}), got {progress}"),
            "raise progressDeadlineSeconds or lower minReadySeconds",
        );
    }
    let history = non_negative(
        report,
        &spec_path.field("revisionHistoryLimit"),
        revision_history_limit,
        DEFAULT_REVISION_HISTORY,
        0,
    );
    Timing {
        min_ready: Duration::from_secs(min_ready.into()),
        progress_deadline: Duration::from_secs(progress.into()),
        revision_history_limit: history,
    }
}

/// A Kubernetes LabelSelector as a [`Selector`]; `None` when invalid.
pub(super) fn label_selector(path: &FieldPath, s: &LabelSelector, report: &mut Report<'_>) -> Option<Selector> {
    let mut requirements = Vec::new();
    let mut ok = true;
    for (key, value) in s.match_labels.iter().flatten() {
        match Requirement::try_new(key.clone(), Operator::Equals, [value.clone()]) {
            Ok(r) => requirements.push(r),
            Err(e) => {
                report.invalid(&path.field("matchLabels").key(key), e.to_string(), "use a valid label key and value");
                ok = false;
            }
        }
    }
    for (i, expr) in s.match_expressions.iter().flatten().enumerate() {
        let at = path.field("matchExpressions").index(i);
        let operator = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                report.invalid(
                    &at.field("operator"),
                    format!("{other:?} is not a selector operator"),
                    "use In, NotIn, Exists or DoesNotExist",
                );
                ok = false;
                continue;
            }
        };
        match Requirement::try_new(expr.key.clone(), operator, expr.values.iter().flatten().cloned()) {
            Ok(r) => requirements.push(r),
            Err(e) => {
                report.invalid(
                    &at,
                    e.to_string(),
                    "give In and NotIn at least one value and Exists and DoesNotExist none",
                );
                ok = false;
            }
        }
    }
    ok.then(|| Selector::new(requirements))
}

fn strategy(path: &FieldPath, s: Option<&DeploymentStrategy>, report: &mut Report<'_>) -> Strategy {
    let Some(s) = s else {
        return Strategy::DEFAULT;
    };
    match s.type_.as_deref() {
        None | Some("RollingUpdate") => {}
        Some("Recreate") => {
            if s.rolling_update.is_some() {
                report.invalid(
                    &path.field("rollingUpdate"),
                    "rollingUpdate only applies to type RollingUpdate",
                    "remove rollingUpdate or use type RollingUpdate",
                );
            }
            return Strategy::Recreate;
        }
        Some(other) => {
            report.invalid(
                &path.field("type"),
                format!("{other:?} is not a strategy"),
                "use RollingUpdate or Recreate",
            );
            return Strategy::DEFAULT;
        }
    }
    let rolling = s.rolling_update.as_ref();
    let at = path.field("rollingUpdate");
    let surge = int_or_percent(&at.field("maxSurge"), rolling.and_then(|r| r.max_surge.as_ref()), None, report);
    let unavailable = int_or_percent(
        &at.field("maxUnavailable"),
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        Some(100),
        report,
    );
    let zero = |v: IntOrPercent| matches!(v, IntOrPercent::Count(0) | IntOrPercent::Percent(0));
    if zero(surge) && zero(unavailable) {
        report.invalid(
            &at.field("maxUnavailable"),
            "maxUnavailable and maxSurge are both 0, so no pod could ever be replaced",
            "allow at least one of them",
        );
    }
    Strategy::RollingUpdate { max_surge: surge, max_unavailable: unavailable }
}

pub(super) fn int_or_percent(
    path: &FieldPath,
    value: Option<&IntOrString>,
    max_percent: Option<u32>,
    report: &mut Report<'_>,
) -> IntOrPercent {
    let default = IntOrPercent::Percent(25);
    let parsed = match value {
        None => return default,
        Some(IntOrString::Int(n)) => u32::try_from(*n).map(IntOrPercent::Count).map_err(|_| format!("{n} is negative")),
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .map(IntOrPercent::Percent)
            .ok_or_else(|| format!("{s:?} is neither a count nor a percentage")),
    };
    match parsed {
        Ok(IntOrPercent::Percent(p)) if max_percent.is_some_and(|max| p > max) => {
            report.invalid(path, format!("{p}% is more than 100%"), "use at most 100%");
            default
        }
        Ok(v) => v,
        Err(why) => {
            report.invalid(path, why, "use a count such as 1 or a percentage such as 25%");
            default
        }
    }
}
