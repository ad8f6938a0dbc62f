//! `argoproj.io/v1alpha1 AnalysisTemplate`, and the pieces Rollouts share
//! with it: durations, counts and analysis references.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{object_meta, NameRule};
use super::{non_negative, Report};
use crate::argo::{self, AnalysisRunArgument, AnalysisTemplateRef, IntOrStr};
use crate::expr::{Condition, Var};
use crate::model::{
    is_arg_name, placeholders, AnalysisRef, AnalysisTemplateSpec, Measure, Metric, ProbeKind, Provider, TemplateArg,
};
use crate::names;
use crate::path::FieldPath;

const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 4;
const CONDITION_EXAMPLE: &str = "write a condition over result (and stable), e.g. result >= 0.95";

pub(super) fn analysis_template(a: &argo::AnalysisTemplate, report: &mut Report<'_>) -> Option<AnalysisTemplateSpec> {
    let meta = object_meta(&a.metadata.clone().unwrap_or_default(), NameRule::Subdomain, report);
    let path = FieldPath::of(&["spec"]);
    let Some(spec) = &a.spec else {
        report.invalid(&path, "the AnalysisTemplate has no spec", "add spec.metrics");
        return None;
    };
    let args = template_args(&path.field("args"), spec.args.as_deref().unwrap_or_default(), report);
    let declared: BTreeSet<&str> = args.iter().map(|a| a.name.as_str()).collect();
    let metrics_path = path.field("metrics");
    let list = spec.metrics.as_deref().unwrap_or_default();
    if list.is_empty() {
        report.invalid(&metrics_path, "the template has no metrics", "add at least one metric with a provider");
    }
    let mut metrics = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in list.iter().enumerate() {
        let at = metrics_path.index(i);
        if let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) {
            if let Some(first) = seen.insert(name, i) {
                report.invalid(
                    &at.field("name"),
                    format!("metrics[{first}] is also named {name:?}"),
                    "give each metric its own name",
                );
            }
        }
        if let Some(metric) = metric(&at, m, &declared, report) {
            metrics.push(metric);
        }
    }
    report.ok().then_some(AnalysisTemplateSpec { meta, args, metrics })
}

fn template_args(path: &FieldPath, list: &[argo::Argument], report: &mut Report<'_>) -> Vec<TemplateArg> {
    let mut out: Vec<TemplateArg> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let at = path.index(i);
        let Some(name) = arg_name(&at, a.name.as_deref(), report) else {
            continue;
        };
        if out.iter().any(|o| o.name == name) {
            report.invalid(
                &at.field("name"),
                format!("another argument is also named {name:?}"),
                "declare each argument once",
            );
            continue;
        }
        out.push(TemplateArg { name: name.to_string(), value: a.value.clone() });
    }
    out
}

fn arg_name<'a>(path: &FieldPath, name: Option<&'a str>, report: &mut Report<'_>) -> Option<&'a str> {
    match name {
        None | Some("") => {
            report.invalid(&path.field("name"), "the argument has no name", "set name");
            None
        }
        Some(n) if !is_arg_name(n) => {
            report.invalid(
                &path.field("name"),
                format!("{n:?} is not an argument name"),
                "use letters, digits, - and _ (the name is written {{args.NAME}})",
            );
            None
        }
        Some(n) => Some(n),
    }
}

fn metric(path: &FieldPath, m: &argo::Metric, declared: &BTreeSet<&str>, report: &mut Report<'_>) -> Option<Metric> {
    let errors_before = report.errors.len();
    let name = match m.name.as_deref() {
        None | Some("") => {
            report.invalid(&path.field("name"), "the metric has no name", "set name");
            String::new()
        }
        Some(n) => n.to_string(),
    };
    let interval = duration(&path.field("interval"), m.interval.as_ref(), report);
    if interval == Some(Duration::ZERO) {
        report.invalid(
            &path.field("interval"),
            "an interval of 0 would measure without pause",
            "give a duration such as 30s or 5m, or leave interval out to measure once",
        );
    }
    let initial_delay = duration(&path.field("initialDelay"), m.initial_delay.as_ref(), report).unwrap_or_default();
    let count_path = path.field("count");
    let count =
        int_field(report, &count_path, m.count.as_ref(), 1).map(|c| non_negative(report, &count_path, Some(c), 1, 1));
    let count = match (interval, count) {
        (None, Some(c)) if c > 1 => {
            report.invalid(
                &count_path,
                format!("measuring {c} times needs an interval between the measurements"),
                "add interval, or leave count out to measure once",
            );
            Some(c)
        }
        (None, _) => Some(1),
        (Some(_), c) => c,
    };
    let limit = |field: &str, value: &IntOrStr, default: u32, report: &mut Report<'_>| {
        let at = path.field(field);
        let n = int_field(report, &at, value.as_ref(), 0)
            .map_or(default, |n| non_negative(report, &at, Some(n), default, 0));
        if let Some(c) = count.filter(|c| n > *c && field != "consecutiveErrorLimit") {
            report.invalid(
                &at,
                format!("{n} is more than count ({c}), so the limit can never be passed"),
                format!("lower {field} below count"),
            );
        }
        n
    };
    let failure_limit = limit("failureLimit", &m.failure_limit, 0, report);
    let inconclusive_limit = limit("inconclusiveLimit", &m.inconclusive_limit, 0, report);
    let consecutive_error_limit =
        limit("consecutiveErrorLimit", &m.consecutive_error_limit, DEFAULT_CONSECUTIVE_ERROR_LIMIT, report);
    let success = condition(&path.field("successCondition"), m.success_condition.as_deref(), report);
    let failure = condition(&path.field("failureCondition"), m.failure_condition.as_deref(), report);
    let provider = provider(&path.field("provider"), m.provider.as_ref(), declared, report);
    if let Some(provider) = &provider {
        if !matches!(provider, Provider::HttpCheck { .. }) {
            for (field, c) in [("successCondition", &success), ("failureCondition", &failure)] {
                if c.as_ref().is_some_and(|c| c.uses(Var::Stable)) {
                    report.invalid(
                        &path.field(field),
                        "this provider measures only the new pods, so the condition has no stable to read",
                        "compare result with a number; berth.httpCheck gives stable",
                    );
                }
            }
        }
    }
    if report.errors.len() > errors_before {
        return None;
    }
    Some(Metric {
        name,
        interval,
        count,
        success,
        failure,
        failure_limit,
        inconclusive_limit,
        consecutive_error_limit,
        initial_delay,
        provider: provider?,
    })
}

fn condition(path: &FieldPath, text: Option<&str>, report: &mut Report<'_>) -> Option<Condition> {
    match Condition::parse(text?) {
        Ok(c) => Some(c),
        Err(e) => {
            report.invalid(path, e.to_string(), CONDITION_EXAMPLE);
            None
        }
    }
}

fn provider(
    path: &FieldPath,
    p: Option<&argo::MetricProvider>,
    declared: &BTreeSet<&str>,
    report: &mut Report<'_>,
) -> Option<Provider> {
    let Some(p) = p else {
        report.invalid(path, "the metric has no provider", "add provider.prometheus or provider.berth");
        return None;
    };
    match (&p.prometheus, &p.berth) {
        (Some(prom), None) => prometheus(&path.field("prometheus"), prom, declared, report),
        (None, Some(b)) => berth(&path.field("berth"), b, report),
        (Some(_), Some(_)) => {
            report.invalid(path, "a metric has one provider, this one names prometheus and berth", "keep one");
            None
        }
        (None, None) => {
            // A provider berth does not support (or a typo) was refused by name already.
            if !report.declares(path) {
                report.invalid(path, "the provider names no source", "use prometheus or berth");
            }
            None
        }
    }
}

fn prometheus(
    path: &FieldPath,
    p: &argo::PrometheusMetric,
    declared: &BTreeSet<&str>,
    report: &mut Report<'_>,
) -> Option<Provider> {
    let address_path = path.field("address");
    let address =
        required_text(&address_path, p.address.as_deref(), "Prometheus' URL, e.g. http://prometheus:9090", report);
    if let Some(address) = address {
        if args_used(&address_path, address, declared, report) && !address.starts_with("{{") {
            let rest = address.strip_prefix("http://").or_else(|| address.strip_prefix("https://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            let problem = match host {
                None => Some(format!("{address:?} is not an http:// or https:// URL")),
                Some("") => Some(format!("{address:?} names no host")),
                Some(_) if address.chars().any(char::is_whitespace) => Some(format!("{address:?} holds a space")),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                report.invalid(&address_path, problem, "give Prometheus' URL, e.g. http://prometheus:9090");
            }
        }
    }
    let query_path = path.field("query");
    let query = required_text(&query_path, p.query.as_deref(), "a PromQL query giving one number", report);
    if let Some(query) = query {
        args_used(&query_path, query, declared, report);
    }
    Some(Provider::Prometheus { address: address?.to_string(), query: query?.to_string() })
}

fn required_text<'a>(
    path: &FieldPath,
    text: Option<&'a str>,
    example: &str,
    report: &mut Report<'_>,
) -> Option<&'a str> {
    match text {
        Some(t) if !t.trim().is_empty() => Some(t),
        _ => {
            report.invalid(path, "is required", format!("give {example}"));
            None
        }
    }
}

/// Checks the `{{args.NAME}}` placeholders of a text; false when any is
/// wrong.
fn args_used(path: &FieldPath, text: &str, declared: &BTreeSet<&str>, report: &mut Report<'_>) -> bool {
    match placeholders(text) {
        Err(why) => {
            report.invalid(path, why, "write placeholders as {{args.NAME}}");
            false
        }
        Ok(found) => {
            let mut ok = true;
            for p in found {
                if !declared.contains(p.name) {
                    report.invalid(
                        path,
                        format!("{{{{args.{}}}}} names an argument the template does not declare", p.name),
                        format!("declare it under spec.args (name: {}) or fix the name", p.name),
                    );
                    ok = false;
                }
            }
            ok
        }
    }
}

fn berth(path: &FieldPath, b: &argo::BerthMetric, report: &mut Report<'_>) -> Option<Provider> {
    let given: Vec<&str> = [
        b.http_check.as_ref().map(|_| "httpCheck"),
        b.probe.as_ref().map(|_| "probe"),
        b.restarts.as_ref().map(|_| "restarts"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        let problem = match given.len() {
            // What it does declare (a typo) was refused by name already.
            0 if report.declares(path) => return None,
            0 => "names no measure".to_string(),
            _ => format!("names {}: a metric takes one measure", given.join(" and ")),
        };
        report.invalid(path, problem, "give exactly one of httpCheck, probe or restarts");
        return None;
    }
    if let Some(h) = &b.http_check {
        let at = path.field("httpCheck");
        let check_path = h.path.clone().unwrap_or_else(|| "/".to_string());
        if !check_path.starts_with('/') {
            report.invalid(
                &at.field("path"),
                format!("{check_path:?} does not start with /"),
                "write an absolute path such as /healthz",
            );
        }
        let port = match h.port {
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => {
                report.invalid(&at.field("port"), format!("{p} is not a port"), "use a port from 1 to 65535");
                None
            }
            None => {
                report.invalid(&at.field("port"), "is required", "give the container port to send requests to");
                None
            }
        };
        let measure = match h.measure.as_deref() {
            None | Some("successRatio") => Some(Measure::SuccessRatio),
            Some("latencyP99Ms") => Some(Measure::LatencyP99Ms),
            Some(other) => {
                report.invalid(
                    &at.field("measure"),
                    format!("{other:?} is not a measure"),
                    "use successRatio or latencyP99Ms",
                );
                None
            }
        };
        return Some(Provider::HttpCheck { path: check_path, port: port?, measure: measure? });
    }
    if let Some(probe) = &b.probe {
        let kind = match probe.as_str() {
            "readiness" => ProbeKind::Readiness,
            "liveness" => ProbeKind::Liveness,
            "startup" => ProbeKind::Startup,
            other => {
                report.invalid(
                    &path.field("probe"),
                    format!("{other:?} is not a probe"),
                    "use readiness, liveness or startup",
                );
                return None;
            }
        };
        return Some(Provider::Probe(kind));
    }
    Some(Provider::Restarts)
}

/// A duration written as whole seconds (`30`) or with units (`30s`, `5m`,
/// `1h`, `1h30m`, `500ms`); `None` when absent or wrong (reported).
pub(super) fn duration(path: &FieldPath, value: Option<&IntOrString>, report: &mut Report<'_>) -> Option<Duration> {
    let parsed = match value? {
        IntOrString::Int(n) if *n < 0 => Err(format!("{n} is negative")),
        IntOrString::Int(n) => Ok(Duration::from_secs(n.unsigned_abs().into())),
        IntOrString::String(s) => parse_duration(s),
    };
    match parsed {
        Ok(d) => Some(d),
        Err(why) => {
            report.invalid(path, why, "give a duration of 0 or more, such as 30s, 5m, 1h or a number of seconds");
            None
        }
    }
}

/// `1h30m`, `30s`, `500ms`: whole numbers with units ms, s, m, h.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} has no unit (write {s}s, or {s} unquoted for seconds)"));
    }
    let bad = || format!("{text:?} is not a duration");
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
        if digits == 0 || unit_len == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let part = match &rest[digits..digits + unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => return Err(format!("{text:?} is not a duration: the units are ms, s, m and h")),
        };
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(|| format!("{text:?} is too long"))?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// A whole number Argo lets one write as a number or a string; `None`
/// when absent or wrong (reported). `min` is only for the message.
fn int_field(report: &mut Report<'_>, path: &FieldPath, value: Option<&IntOrString>, min: i64) -> Option<i64> {
    match value? {
        IntOrString::Int(n) => Some(i64::from(*n)),
        IntOrString::String(s) => match s.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                report.invalid(
                    path,
                    format!("{s:?} is not a whole number"),
                    format!("write a number of {min} or more (berth does not fill arguments into this field)"),
                );
                None
            }
        },
    }
}

/// An analysis to run, as a Rollout names it; `None` when wrong (reported).
pub(super) fn analysis_ref(
    path: &FieldPath,
    templates: Option<&[AnalysisTemplateRef]>,
    args: Option<&[AnalysisRunArgument]>,
    report: &mut Report<'_>,
) -> Option<AnalysisRef> {
    let errors_before = report.errors.len();
    let templates_path = path.field("templates");
    let list = templates.unwrap_or_default();
    if list.is_empty() {
        report.invalid(&templates_path, "the analysis names no template", "add templates: [{templateName: NAME}]");
    }
    let mut names: Vec<String> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = templates_path.index(i).field("templateName");
        match t.template_name.as_deref() {
            None | Some("") => {
                // clusterScope (a ClusterAnalysisTemplate) was refused by name already.
                if !report.declares(&templates_path.index(i).field("clusterScope")) {
                    report.invalid(&at, "is required", "name an AnalysisTemplate of the Rollout's namespace");
                }
            }
            Some(name) => {
                if let Err(why) = names::dns1123_subdomain(name) {
                    report.invalid(&at, why, "name an AnalysisTemplate of the Rollout's namespace");
                } else if names.iter().any(|n| n == name) {
                    report.invalid(&at, format!("{name:?} is named twice"), "name each template once");
                } else {
                    names.push(name.to_string());
                }
            }
        }
    }
    let mut values = BTreeMap::new();
    for (i, a) in args.unwrap_or_default().iter().enumerate() {
        let at = path.field("args").index(i);
        let Some(name) = arg_name(&at, a.name.as_deref(), report) else {
            continue;
        };
        if values.contains_key(name) {
            report.invalid(&at.field("name"), format!("argument {name:?} is given twice"), "give each argument once");
            continue;
        }
        match &a.value {
            Some(v) => {
                values.insert(name.to_string(), v.clone());
            }
            // valueFrom was refused by name already.
            None if report.declares(&at.field("valueFrom")) => {}
            None => report.invalid(&at.field("value"), format!("argument {name:?} has no value"), "set value"),
        }
    }
    (report.errors.len() == errors_before).then_some(AnalysisRef { templates: names, args: values })
}

#[cfg(test)]
mod tests;
