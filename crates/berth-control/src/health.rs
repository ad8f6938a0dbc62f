//! Probe evaluation with Kubernetes semantics, on virtual time: callers pass
//! `now` (time since any fixed origin, e.g. the daemon's clock trait) and
//! never read a clock here.
//!
//! A [`ProbeTracker`] follows one probe: it changes its state only after
//! `successThreshold` consecutive successes or `failureThreshold`
//! consecutive failures (a timeout is a failure), and runs no earlier than
//! `initialDelaySeconds` after the container started, then every
//! `periodSeconds`. [`ContainerHealth`] combines a container's three probes:
//! the startup probe gates the other two; a failed startup or liveness probe
//! asks for a restart; the container is ready when started and its
//! readiness probe (if any) passes.

use std::time::Duration;

use berth_manifest::model::{ContainerSpec, ProbeKind, ProbeSpec};

/// The outcome of running a probe once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    /// No answer within `timeoutSeconds`; counts as a failure.
    Timeout,
}

/// What one probe currently says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeState {
    /// Not enough results yet.
    Unknown,
    Success,
    Failure,
}

/// One probe of one container instance. Make a new one when the container
/// restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTracker {
    spec: ProbeSpec,
    started_at: Duration,
    state: ProbeState,
    /// The last result (true for success) and how many in a row.
    streak: Option<(bool, u32)>,
    last_run: Option<Duration>,
}

impl ProbeTracker {
    /// A tracker for a container that started at `started_at`.
    pub fn new(spec: ProbeSpec, started_at: Duration) -> Self {
        ProbeTracker { spec, started_at, state: ProbeState::Unknown, streak: None, last_run: None }
    }

    pub fn spec(&self) -> &ProbeSpec {
        &self.spec
    }

    pub fn state(&self) -> ProbeState {
        self.state
    }

    /// The result seen last and how many times in a row.
    pub fn streak(&self) -> Option<(ProbeResult, u32)> {
        self.streak.map(|(ok, n)| (if ok { ProbeResult::Success } else { ProbeResult::Failure }, n))
    }

    /// When the next run is due: `initialDelaySeconds` after the start,
    /// then `periodSeconds` after the previous run. Due now when in the
    /// past.
    pub fn next_due(&self, now: Duration) -> Duration {
        let first = self.started_at + self.spec.initial_delay;
        let due = match self.last_run {
            None => first,
            Some(last) => (last + self.spec.period).max(first),
        };
        due.max(now)
    }

    /// Records a result that came in at `now` and returns the new state. A
    /// result from before `initialDelaySeconds` has passed is ignored, as
    /// Kubernetes would not have probed yet.
    pub fn observe(&mut self, result: ProbeResult, now: Duration) -> ProbeState {
        if now < self.started_at + self.spec.initial_delay {
            return self.state;
        }
        let ok = result == ProbeResult::Success;
        let run = match self.streak {
            Some((last, n)) if last == ok => n.saturating_add(1),
            _ => 1,
        };
        self.streak = Some((ok, run));
        self.last_run = Some(now);
        let threshold = if ok { self.spec.success_threshold } else { self.spec.failure_threshold };
        if run >= threshold {
            self.state = if ok { ProbeState::Success } else { ProbeState::Failure };
        }
        self.state
    }
}

/// Why the probes want the container restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    StartupProbeFailed,
    LivenessProbeFailed,
}

impl std::fmt::Display for RestartCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartCause::StartupProbeFailed => "Startup probe failed",
            RestartCause::LivenessProbeFailed => "Liveness probe failed",
        })
    }
}

/// The combined verdict of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The startup probe passed, or there is none.
    pub started: bool,
    /// Started, and the readiness probe passes (or there is none):
    /// the container may receive traffic.
    pub ready: bool,
    /// Set once a startup or liveness probe has failed; stays set.
    pub restart: Option<RestartCause>,
}

/// The three probes of one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHealth {
    startup: Option<ProbeTracker>,
    liveness: Option<ProbeTracker>,
    readiness: Option<ProbeTracker>,
    /// When the startup probe passed (the start itself when there is none).
    started_at: Option<Duration>,
    restart: Option<RestartCause>,
}

impl ContainerHealth {
    /// Trackers for a container instance that started at `started_at`.
    pub fn new(container: &ContainerSpec, started_at: Duration) -> Self {
        Self::from_probes(
            container.startup_probe.clone(),
            container.liveness_probe.clone(),
            container.readiness_probe.clone(),
            started_at,
        )
    }

    pub fn from_probes(
        startup: Option<ProbeSpec>,
        liveness: Option<ProbeSpec>,
        readiness: Option<ProbeSpec>,
        started_at: Duration,
    ) -> Self {
        let track = |spec: Option<ProbeSpec>| spec.map(|s| ProbeTracker::new(s, started_at));
        ContainerHealth {
            started_at: if startup.is_none() { Some(started_at) } else { None },
            startup: track(startup),
            liveness: track(liveness),
            readiness: track(readiness),
            restart: None,
        }
    }

    /// Trackers for a container found running after a daemon restart:
    /// what the probes had concluded before (`started`, `ready`) holds
    /// until new results change it, so adopting a healthy container does
    /// not take it out of its Services.
    pub fn adopted(container: &ContainerSpec, started_at: Duration, started: bool, ready: bool) -> Self {
        let mut h = Self::new(container, started_at);
        if started {
            h.started_at.get_or_insert(started_at);
            if let Some(s) = h.startup.as_mut() {
                s.state = ProbeState::Success;
            }
        }
        if ready {
            if let Some(r) = h.readiness.as_mut() {
                r.state = ProbeState::Success;
            }
        }
        h
    }

    pub fn health(&self) -> Health {
        let started = self.started_at.is_some();
        let readiness_ok = self.readiness.as_ref().is_none_or(|r| r.state() == ProbeState::Success);
        Health { started, ready: started && readiness_ok && self.restart.is_none(), restart: self.restart }
    }

    /// Records a result of the probe `kind`. Results of liveness and
    /// readiness probes before the startup probe passed are ignored (those
    /// probes do not run yet), as are results of the startup probe after it
    /// passed and of any probe after a restart was asked for.
    pub fn observe(&mut self, kind: ProbeKind, result: ProbeResult, now: Duration) -> Health {
        if self.restart.is_some() {
            return self.health();
        }
        match kind {
            ProbeKind::Startup => {
                if let (Some(tracker), None) = (self.startup.as_mut(), self.started_at) {
                    match tracker.observe(result, now) {
                        ProbeState::Success => self.started_at = Some(now),
                        ProbeState::Failure => self.restart = Some(RestartCause::StartupProbeFailed),
                        ProbeState::Unknown => {}
                    }
                }
            }
            ProbeKind::Liveness => {
                if let (Some(tracker), Some(_)) = (self.liveness.as_mut(), self.started_at) {
                    if tracker.observe(result, now) == ProbeState::Failure {
                        self.restart = Some(RestartCause::LivenessProbeFailed);
                    }
                }
            }
            ProbeKind::Readiness => {
                if let (Some(tracker), Some(_)) = (self.readiness.as_mut(), self.started_at) {
                    tracker.observe(result, now);
                }
            }
        }
        self.health()
    }

    /// The probes that run now, each with when it is next due. Before the
    /// startup probe passes only it runs; after, liveness and readiness;
    /// after a restart was asked for, none.
    pub fn due(&self, now: Duration) -> Vec<(ProbeKind, Duration)> {
        if self.restart.is_some() {
            return Vec::new();
        }
        match self.started_at {
            None => self.startup.iter().map(|t| (ProbeKind::Startup, t.next_due(now))).collect(),
            Some(since) => [(ProbeKind::Liveness, &self.liveness), (ProbeKind::Readiness, &self.readiness)]
                .into_iter()
                .filter_map(|(kind, t)| t.as_ref().map(|t| (kind, t.next_due(now).max(since))))
                .collect(),
        }
    }

    /// The earliest due probe, if any probe runs.
    pub fn next_due(&self, now: Duration) -> Option<(ProbeKind, Duration)> {
        self.due(now).into_iter().min_by_key(|(_, at)| *at)
    }

    pub fn tracker(&self, kind: ProbeKind) -> Option<&ProbeTracker> {
        match kind {
            ProbeKind::Startup => self.startup.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
            ProbeKind::Readiness => self.readiness.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests;
