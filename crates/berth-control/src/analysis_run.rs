//! An analysis run as Argo Rollouts counts it, on virtual time: each metric
//! is measured after its `initialDelay`, then every `interval`, up to
//! `count` times; failed, inconclusive and errored measurements are counted
//! against `failureLimit`, `inconclusiveLimit` and `consecutiveErrorLimit`.
//! A measurement that could not be taken (a Prometheus server that cannot be
//! reached) is an error, never a success.
//!
//! This only counts; taking measurements is the daemon's business.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use berth_manifest::model::{Assessment, Metric};

/// One measurement's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measurement {
    Assessed(Assessment),
    /// No value could be had; the reason.
    Error(String),
}

/// Where a metric, or a whole run, stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunPhase {
    Running,
    Successful,
    Failed(String),
    Inconclusive(String),
}

/// The counts of one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRun {
    pub name: String,
    pub measured: u32,
    pub successful: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub errors: u32,
    pub consecutive_errors: u32,
    pub last_at: Option<Duration>,
    pub last_error: Option<String>,
    pub phase: RunPhase,
}

/// An analysis run: every metric of the templates it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisRun {
    pub started_at: Duration,
    pub metrics: Vec<MetricRun>,
}

impl AnalysisRun {
    pub fn start(metrics: &[Metric], now: Duration) -> Self {
        AnalysisRun {
            started_at: now,
            metrics: metrics
                .iter()
                .map(|m| MetricRun {
                    name: m.name.clone(),
                    measured: 0,
                    successful: 0,
                    failed: 0,
                    inconclusive: 0,
                    errors: 0,
                    consecutive_errors: 0,
                    last_at: None,
                    last_error: None,
                    phase: RunPhase::Running,
                })
                .collect(),
        }
    }

    /// The metrics (by index) due at `now`.
    pub fn due(&self, metrics: &[Metric], now: Duration) -> Vec<usize> {
        self.metrics
            .iter()
            .enumerate()
            .filter(|(i, r)| r.phase == RunPhase::Running && self.next_due(&metrics[*i], r) <= now)
            .map(|(i, _)| i)
            .collect()
    }

    /// When the next measurement of any running metric is due.
    pub fn wake_at(&self, metrics: &[Metric]) -> Option<Duration> {
        self.metrics
            .iter()
            .enumerate()
            .filter(|(_, r)| r.phase == RunPhase::Running)
            .map(|(i, r)| self.next_due(&metrics[i], r))
            .min()
    }

    fn next_due(&self, m: &Metric, r: &MetricRun) -> Duration {
        match (r.last_at, m.interval) {
            (None, _) => self.started_at + m.initial_delay,
            (Some(last), Some(interval)) => last + interval,
            // Measured once already and no interval: never again.
            (Some(_), None) => Duration::MAX,
        }
    }

    /// Records a measurement of metric `i` taken at `now`; returns the run's
    /// phase.
    pub fn record(&mut self, metrics: &[Metric], i: usize, m: Measurement, now: Duration) -> RunPhase {
        let spec = &metrics[i];
        let r = &mut self.metrics[i];
        if r.phase != RunPhase::Running {
            return self.phase();
        }
        r.last_at = Some(now);
        match m {
            Measurement::Error(why) => {
                r.errors += 1;
                r.consecutive_errors += 1;
                if r.consecutive_errors > spec.consecutive_error_limit {
                    r.phase = RunPhase::Failed(format!(
                        "metric {}: {} consecutive errors (limit {}), last: {why}",
                        r.name, r.consecutive_errors, spec.consecutive_error_limit
                    ));
                }
                r.last_error = Some(why);
                return self.phase();
            }
            Measurement::Assessed(a) => {
                r.consecutive_errors = 0;
                r.measured += 1;
                match a {
                    Assessment::Successful => r.successful += 1,
                    Assessment::Failed => r.failed += 1,
                    Assessment::Inconclusive => r.inconclusive += 1,
                }
            }
        }
        if r.failed > spec.failure_limit {
            r.phase = RunPhase::Failed(format!(
                "metric {}: {} failed measurement(s) (limit {})",
                r.name, r.failed, spec.failure_limit
            ));
        } else if r.inconclusive > spec.inconclusive_limit {
            r.phase = RunPhase::Inconclusive(format!(
                "metric {}: {} inconclusive measurement(s) (limit {})",
                r.name, r.inconclusive, spec.inconclusive_limit
            ));
        } else if spec.count.is_some_and(|c| r.measured >= c) {
            r.phase = RunPhase::Successful;
        }
        self.phase()
    }

    /// Failed if any metric failed, else inconclusive if any was, else
    /// successful once every metric is, else running. A metric without a
    /// `count` runs until the run is stopped ([`AnalysisRun::stop`]).
    pub fn phase(&self) -> RunPhase {
        if let Some(f) = self.metrics.iter().find(|r| matches!(r.phase, RunPhase::Failed(_))) {
            return f.phase.clone();
        }
        if let Some(f) = self.metrics.iter().find(|r| matches!(r.phase, RunPhase::Inconclusive(_))) {
            return f.phase.clone();
        }
        if self.metrics.iter().all(|r| r.phase == RunPhase::Successful) {
            return RunPhase::Successful;
        }
        RunPhase::Running
    }

    /// Ends a run whose metrics have no count (a background analysis when
    /// the rollout completes): what has not failed has passed.
    pub fn stop(&mut self) -> RunPhase {
        for r in &mut self.metrics {
            if r.phase == RunPhase::Running {
                r.phase = RunPhase::Successful;
            }
        }
        self.phase()
    }
}

#[cfg(test)]
mod tests;
