//! Argo Rollouts' `AnalysisTemplate`: metrics measured while a Rollout
//! updates, each decided by conditions over the measured value.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pod::ProbeKind;
use super::ObjectMeta;
use crate::expr::{Condition, EvalError, Vars};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisTemplateSpec {
    pub meta: ObjectMeta,
    /// Names unique.
    pub args: Vec<TemplateArg>,
    /// At least one; names unique.
    pub metrics: Vec<Metric>,
}

/// An argument, used as `{{args.NAME}}` in a provider's text fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateArg {
    pub name: String,
    /// The default; `None` means every reference must give a value.
    pub value: Option<String>,
}

/// One measure, taken `count` times `interval` apart after `initial_delay`.
///
/// Each measurement is judged by [`Metric::assess`]. A measurement the
/// provider could not take, or whose conditions could not be evaluated, is
/// an error. The metric fails after more than `failure_limit` failed
/// measurements, is inconclusive after more than `inconclusive_limit`
/// inconclusive ones, and errs after more than `consecutive_error_limit`
/// errors in a row (Argo Rollouts' rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    /// `None`: measure once.
    pub interval: Option<Duration>,
    /// `None`: no limit, until the analysis is stopped (only with an
    /// interval). Without an interval it is always `Some(1)`.
    pub count: Option<u32>,
    pub success: Option<Condition>,
    pub failure: Option<Condition>,
    /// Default 0.
    pub failure_limit: u32,
    /// Default 0.
    pub inconclusive_limit: u32,
    /// Default 4.
    pub consecutive_error_limit: u32,
    /// Default 0.
    pub initial_delay: Duration,
    pub provider: Provider,
}

/// What one measurement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assessment {
    Successful,
    Failed,
    Inconclusive,
}

impl Metric {
    /// Judges one measurement as Argo Rollouts' controller does: both
    /// conditions are evaluated (an error in either is the measurement's
    /// error); a holding `failure` fails it, else a holding `success`
    /// passes it. With only `success`, not holding fails; with only
    /// `failure`, not holding passes; with both, neither holding is
    /// inconclusive; with neither condition, every measurement passes.
    pub fn assess(&self, vars: &Vars) -> Result<Assessment, EvalError> {
        let success = self.success.as_ref().map(|c| c.eval(vars)).transpose()?;
        let failure = self.failure.as_ref().map(|c| c.eval(vars)).transpose()?;
        Ok(match (success, failure) {
            (_, Some(true)) => Assessment::Failed,
            (Some(true), _) | (None, Some(false)) | (None, None) => Assessment::Successful,
            (Some(false), None) => Assessment::Failed,
            (Some(false), Some(false)) => Assessment::Inconclusive,
        })
    }
}

/// Where a measurement comes from and what `result` (and `stable`) hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Provider {
    /// `result` is the value of an instant query (one number; an empty
    /// result is an error). No `stable`. Both fields may hold
    /// `{{args.NAME}}` placeholders naming declared arguments: see
    /// [`render_args`].
    Prometheus { address: String, query: String },
    /// berth sends `GET path` to `port` of each new (canary or preview) pod
    /// over the interval; `result` is that measure over the new pods and
    /// `stable` the same over the stable pods, when there are any.
    HttpCheck { path: String, port: u16, measure: Measure },
    /// `result`: the share (0 to 1) of the new pods whose probe of this kind
    /// passes.
    Probe(ProbeKind),
    /// `result`: container restarts of the new pods since the analysis
    /// started.
    Restarts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// Share of requests answered with a status below 500, 0 to 1.
    SuccessRatio,
    /// The 99th percentile of response times, in milliseconds.
    LatencyP99Ms,
}

/// Why arguments do not fit a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("argument {0:?} is required by the template but not given")]
    Missing(String),
    #[error("argument {0:?} is not declared by the template")]
    Undeclared(String),
    #[error("{0}")]
    Malformed(String),
}

impl AnalysisTemplateSpec {
    /// The value of every argument for a run given `given`: declared
    /// defaults, overridden by given values. Every error, in name order.
    pub fn resolve_args(&self, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Vec<ArgsError>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for arg in &self.args {
            match given.get(&arg.name).or(arg.value.as_ref()) {
                Some(v) => {
                    out.insert(arg.name.clone(), v.clone());
                }
                None => errors.push(ArgsError::Missing(arg.name.clone())),
            }
        }
        for name in given.keys() {
            if !self.args.iter().any(|a| &a.name == name) {
                errors.push(ArgsError::Undeclared(name.clone()));
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// One `{{args.NAME}}` placeholder in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder<'a> {
    /// Byte range of the whole `{{ ... }}`.
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
}

/// The placeholders of `text` in order; `{{ args.NAME }}` may have spaces
/// inside the braces. Any other `{{...}}` is an error naming it.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder<'_>>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let Some(close) = text[open..].find("}}").map(|i| open + i) else {
            return Err("a {{ is never closed with }}".to_string());
        };
        let inner = text[open + 2..close].trim();
        match inner.strip_prefix("args.") {
            Some(name) if is_arg_name(name) => out.push(Placeholder { start: open, end: close + 2, name }),
            _ => return Err(format!("{{{{{inner}}}}} is not a placeholder berth knows; write {{{{args.NAME}}}}")),
        }
        from = close + 2;
    }
    Ok(out)
}

/// An argument name: letters, digits, `-` and `_`.
pub fn is_arg_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `text` with every `{{args.NAME}}` replaced by its value (from
/// [`AnalysisTemplateSpec::resolve_args`]). Texts in a model were checked
/// at load time, so an error here means `args` lacks a name.
pub fn render_args(text: &str, args: &BTreeMap<String, String>) -> Result<String, ArgsError> {
    let found = placeholders(text).map_err(ArgsError::Malformed)?;
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for p in found {
        let value = args.get(p.name).ok_or_else(|| ArgsError::Missing(p.name.to_string()))?;
        out.push_str(&text[at..p.start]);
        out.push_str(value);
        at = p.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}
