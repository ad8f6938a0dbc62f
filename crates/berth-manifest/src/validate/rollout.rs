//! `argoproj.io/v1alpha1 Rollout`: a Deployment's fields (checked by the
//! same code) plus a canary or blue-green strategy.

use std::time::Duration;

use super::analysis::{analysis_ref, duration};
use super::deployment::{int_or_percent, label_selector, selector_selects_template, timing};
use super::meta::{object_meta, NameRule};
use super::{non_negative, pod, Report};
use crate::argo;
use crate::model::{
    BackgroundAnalysis, BlueGreenSpec, CanaryScale, CanarySpec, CanaryStep, IntOrPercent, RolloutSpec, RolloutStrategy,
};
use crate::names;
use crate::path::FieldPath;

const DEFAULT_SCALE_DOWN_DELAY_SECONDS: u32 = 30;

pub(super) fn rollout(r: &argo::Rollout, report: &mut Report<'_>) -> Option<RolloutSpec> {
    let meta = object_meta(&r.metadata.clone().unwrap_or_default(), NameRule::Subdomain, report);
    let path = FieldPath::of(&["spec"]);
    let Some(spec) = &r.spec else {
        report.invalid(&path, "the Rollout has no spec", "add a spec with selector, template and strategy");
        return None;
    };
    let replicas = non_negative(report, &path.field("replicas"), spec.replicas, 1, 0);
    let selector = match &spec.selector {
        Some(s) => label_selector(&path.field("selector"), s, report),
        None => {
            report.invalid(
                &path.field("selector"),
                "the Rollout has no selector",
                "add a selector matching the template labels, e.g. matchLabels: {app: web}",
            );
            None
        }
    };
    let template = match &spec.template {
        Some(t) => pod::template(&path.field("template"), t, report),
        None => {
            report.invalid(
                &path.field("template"),
                "the Rollout has no pod template",
                "add spec.template (berth does not read workloadRef)",
            );
            None
        }
    };
    if let (Some(selector), Some(template)) = (&selector, &template) {
        selector_selects_template(&path, selector, template, report);
    }
    let timing =
        timing(&path, [spec.min_ready_seconds, spec.progress_deadline_seconds, spec.revision_history_limit], report);
    let strategy = strategy(&path.field("strategy"), spec.strategy.as_ref(), report);
    Some(RolloutSpec {
        meta,
        replicas,
        selector: selector?,
        template: template?,
        strategy: strategy?,
        min_ready: timing.min_ready,
        progress_deadline: timing.progress_deadline,
        revision_history_limit: timing.revision_history_limit,
        paused: spec.paused.unwrap_or(false),
    })
}

fn strategy(path: &FieldPath, s: Option<&argo::RolloutStrategy>, report: &mut Report<'_>) -> Option<RolloutStrategy> {
    match s.map(|s| (&s.canary, &s.blue_green)) {
        Some((Some(c), None)) => canary(&path.field("canary"), c, report).map(RolloutStrategy::Canary),
        Some((None, Some(b))) => blue_green(&path.field("blueGreen"), b, report).map(RolloutStrategy::BlueGreen),
        Some((Some(_), Some(_))) => {
            report.invalid(path, "a Rollout has one strategy, this one names canary and blueGreen", "keep one");
            None
        }
        _ => {
            report.invalid(
                path,
                "the Rollout has no strategy",
                "add strategy.canary (with steps) or strategy.blueGreen (with activeService)",
            );
            None
        }
    }
}

fn canary(path: &FieldPath, c: &argo::CanaryStrategy, report: &mut Report<'_>) -> Option<CanarySpec> {
    let errors_before = report.errors.len();
    let step_list = c.steps.as_deref().unwrap_or_default();
    let steps: Vec<CanaryStep> =
        step_list.iter().enumerate().filter_map(|(i, s)| step(&path.field("steps").index(i), s, report)).collect();
    let analysis = c.analysis.as_ref().and_then(|a| {
        let at = path.field("analysis");
        let analysis = analysis_ref(&at, a.templates.as_deref(), a.args.as_deref(), report);
        let starting_step = match a.starting_step {
            None => 0,
            Some(n) if n == 0 || (n > 0 && (n as usize) < step_list.len()) => n as u32,
            Some(n) => {
                let fix = match step_list.len() {
                    0 => "leave it out: there are no steps".to_string(),
                    len => format!("use a step index from 0 to {}", len - 1),
                };
                report.invalid(
                    &at.field("startingStep"),
                    format!("{n} is not the index of a step ({} steps)", step_list.len()),
                    fix,
                );
                0
            }
        };
        Some(BackgroundAnalysis { analysis: analysis?, starting_step })
    });
    let max_surge = int_or_percent(&path.field("maxSurge"), c.max_surge.as_ref(), None, report);
    let max_unavailable = int_or_percent(&path.field("maxUnavailable"), c.max_unavailable.as_ref(), Some(100), report);
    let zero = |v: IntOrPercent| matches!(v, IntOrPercent::Count(0) | IntOrPercent::Percent(0));
    if zero(max_surge) && zero(max_unavailable) {
        report.invalid(
            &path.field("maxUnavailable"),
            "maxUnavailable and maxSurge are both 0, so no pod could ever be replaced",
            "allow at least one of them",
        );
    }
    let stable_service = service_name(&path.field("stableService"), c.stable_service.as_deref(), report);
    let canary_service = service_name(&path.field("canaryService"), c.canary_service.as_deref(), report);
    if stable_service.is_some() && stable_service == canary_service {
        report.invalid(
            &path.field("canaryService"),
            "is the same Service as stableService",
            "use two Services: one for the stable pods, one for the canary pods",
        );
    }
    (report.errors.len() == errors_before).then_some(CanarySpec {
        steps,
        analysis,
        max_surge,
        max_unavailable,
        stable_service,
        canary_service,
    })
}

fn step(path: &FieldPath, s: &argo::CanaryStep, report: &mut Report<'_>) -> Option<CanaryStep> {
    let given: Vec<&str> = [
        s.set_weight.map(|_| "setWeight"),
        s.pause.as_ref().map(|_| "pause"),
        s.set_canary_scale.as_ref().map(|_| "setCanaryScale"),
        s.analysis.as_ref().map(|_| "analysis"),
    ]
    .into_iter()
    .flatten()
    .collect();
    match given.len() {
        1 => {}
        0 => {
            // Whatever the step does declare, the field walk refused by name.
            if !report.declares(path) {
                report.invalid(
                    path,
                    "the step does nothing",
                    "give one of setWeight, pause, setCanaryScale or analysis",
                );
            }
            return None;
        }
        _ => {
            report.invalid(
                path,
                format!("a step does one thing, this one names {}", given.join(" and ")),
                "split it into one step per action",
            );
            return None;
        }
    }
    if let Some(w) = s.set_weight {
        if !(1..=100).contains(&w) {
            report.invalid(
                &path.field("setWeight"),
                format!("must be 1 to 100, got {w}"),
                "give the percentage of pods to run the new template",
            );
            return None;
        }
        return Some(CanaryStep::SetWeight(w as u8));
    }
    if let Some(p) = &s.pause {
        let at = path.field("pause").field("duration");
        return match &p.duration {
            None => Some(CanaryStep::Pause(None)),
            Some(d) => duration(&at, Some(d), report).map(|d| CanaryStep::Pause(Some(d))),
        };
    }
    if let Some(scale) = &s.set_canary_scale {
        return canary_scale(&path.field("setCanaryScale"), scale, report).map(CanaryStep::SetCanaryScale);
    }
    let a = s.analysis.as_ref()?;
    analysis_ref(&path.field("analysis"), a.templates.as_deref(), a.args.as_deref(), report).map(CanaryStep::Analysis)
}

fn canary_scale(path: &FieldPath, s: &argo::SetCanaryScale, report: &mut Report<'_>) -> Option<CanaryScale> {
    match (s.replicas, s.weight, s.match_traffic_weight) {
        (Some(n), None, None) => {
            let at = path.field("replicas");
            let errors_before = report.errors.len();
            let n = non_negative(report, &at, Some(n), 0, 0);
            (report.errors.len() == errors_before).then_some(CanaryScale::Replicas(n))
        }
        (None, Some(w), None) if (0..=100).contains(&w) => Some(CanaryScale::Weight(w as u8)),
        (None, Some(w), None) => {
            report.invalid(
                &path.field("weight"),
                format!("must be 0 to 100, got {w}"),
                "give a percentage of spec.replicas",
            );
            None
        }
        (None, None, Some(true)) => Some(CanaryScale::MatchTrafficWeight),
        (None, None, Some(false)) => {
            report.invalid(
                &path.field("matchTrafficWeight"),
                "false does nothing",
                "set it to true to follow setWeight again, or give replicas or weight",
            );
            None
        }
        _ => {
            report.invalid(
                path,
                "give exactly one of replicas, weight or matchTrafficWeight",
                "write e.g. setCanaryScale: {replicas: 2}",
            );
            None
        }
    }
}

fn blue_green(path: &FieldPath, b: &argo::BlueGreenStrategy, report: &mut Report<'_>) -> Option<BlueGreenSpec> {
    let errors_before = report.errors.len();
    let active_path = path.field("activeService");
    let active = service_name(&active_path, b.active_service.as_deref(), report);
    if b.active_service.as_deref().unwrap_or_default().is_empty() {
        report.invalid(&active_path, "is required", "name the Service that carries production traffic");
    }
    let preview = service_name(&path.field("previewService"), b.preview_service.as_deref(), report);
    if preview.is_some() && preview == active {
        report.invalid(
            &path.field("previewService"),
            "is the same Service as activeService",
            "use two Services, or leave previewService out",
        );
    }
    let auto = b.auto_promotion_enabled.unwrap_or(true);
    let delay_path = path.field("autoPromotionSeconds");
    let auto_delay = b.auto_promotion_seconds.map(|s| non_negative(report, &delay_path, Some(s), 0, 0));
    if !auto && auto_delay.is_some() {
        report.invalid(
            &delay_path,
            "has no effect with autoPromotionEnabled: false (the rollout waits to be promoted)",
            "remove autoPromotionSeconds, or autoPromotionEnabled: false",
        );
    }
    let scale_down = non_negative(
        report,
        &path.field("scaleDownDelaySeconds"),
        b.scale_down_delay_seconds,
        DEFAULT_SCALE_DOWN_DELAY_SECONDS,
        0,
    );
    let analysis = |field: &str, a: &Option<argo::RolloutAnalysis>, report: &mut Report<'_>| {
        a.as_ref().map(|a| analysis_ref(&path.field(field), a.templates.as_deref(), a.args.as_deref(), report))
    };
    let pre = analysis("prePromotionAnalysis", &b.pre_promotion_analysis, report);
    let post = analysis("postPromotionAnalysis", &b.post_promotion_analysis, report);
    if report.errors.len() > errors_before {
        return None;
    }
    Some(BlueGreenSpec {
        active_service: active?,
        preview_service: preview,
        auto_promotion_enabled: auto,
        auto_promotion_delay: auto_delay.map(|s| Duration::from_secs(s.into())),
        scale_down_delay: Duration::from_secs(scale_down.into()),
        pre_promotion_analysis: pre.flatten(),
        post_promotion_analysis: post.flatten(),
    })
}

/// A Service's name, checked as Kubernetes checks Service names.
fn service_name(path: &FieldPath, name: Option<&str>, report: &mut Report<'_>) -> Option<String> {
    let name = name.filter(|n| !n.is_empty())?;
    match names::dns1035_label(name) {
        Ok(()) => Some(name.to_string()),
        Err(why) => {
            report.invalid(path, why, "name a Service of the Rollout's namespace");
            None
        }
    }
}

#[cfg(test)]
mod tests;
