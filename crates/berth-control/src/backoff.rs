//! Restarting crashed containers the way the kubelet does, on virtual time.
//!
//! [`CrashBackoff`] says how long to wait before a restart: 10 s after the
//! first exit, doubling each time up to 5 minutes, and back to 10 s once a
//! container ran 10 minutes before exiting (all three configurable).
//! [`RestartTracker`] is the per-container state machine that uses it and
//! shows what `berth get` prints: `Waiting (CrashLoopBackOff)`, the restart
//! count and the last exit.

use std::fmt;
use std::time::Duration;

/// Delays between restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashBackoff {
    initial: Duration,
    max: Duration,
    reset_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    #[error("the initial restart delay must be more than 0")]
    ZeroInitial,
    #[error("the maximum restart delay ({max:?}) must be at least the initial delay ({initial:?})")]
    MaxBelowInitial { initial: Duration, max: Duration },
    #[error("the clean-run time that resets the delay must be more than 0")]
    ZeroReset,
}

impl CrashBackoff {
    /// The kubelet's values: 10 s doubling to 5 min, reset after 10 min.
    pub const KUBERNETES: CrashBackoff = CrashBackoff {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(300),
        reset_after: Duration::from_secs(600),
    };

    /// Standalone containers (`--restart`): 100 ms doubling to 1 minute,
    /// reset after a 10 s run, as docker does.
    pub const CONTAINER: CrashBackoff = CrashBackoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(60),
        reset_after: Duration::from_secs(10),
    };

    /// This back-off with another cap (kept at least the initial delay).
    pub fn capped_at(self, max: Duration) -> Self {
        CrashBackoff { max: max.max(self.initial), ..self }
    }

    pub fn try_new(initial: Duration, max: Duration, reset_after: Duration) -> Result<Self, BackoffError> {
        if initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if max < initial {
            return Err(BackoffError::MaxBelowInitial { initial, max });
        }
        if reset_after.is_zero() {
            return Err(BackoffError::ZeroReset);
        }
        Ok(CrashBackoff { initial, max, reset_after })
    }

    pub fn initial(&self) -> Duration {
        self.initial
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    pub fn reset_after(&self) -> Duration {
        self.reset_after
    }

    /// The delay before the next restart, given the delay before the
    /// previous one (none for a first exit) and how long the container ran
    /// this time.
    pub fn next_delay(&self, previous: Option<Duration>, ran_for: Duration) -> Duration {
        match previous {
            Some(previous) if ran_for < self.reset_after => previous.saturating_mul(2).clamp(self.initial, self.max),
            _ => self.initial,
        }
    }
}

impl Default for CrashBackoff {
    fn default() -> Self {
        CrashBackoff::KUBERNETES
    }
}

/// When a container is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartRule {
    /// Every exit (a Deployment's containers).
    Always,
    /// Only a non-zero exit (init containers, which run to completion).
    OnFailure,
}

/// Why a container stopped, with Kubernetes' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit code or a signal.
    Error,
    /// Killed by the kernel for exceeding its memory limit.
    OomKilled,
    /// The runtime could not start the process (bad command, missing binary).
    ContainerCannotRun,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OomKilled => "OOMKilled",
            ExitReason::ContainerCannotRun => "ContainerCannotRun",
        })
    }
}

/// One exit of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub reason: ExitReason,
    pub started_at: Duration,
    pub finished_at: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// Not started yet.
    ContainerCreating,
    /// Exited; waiting out the backoff before the next start.
    CrashLoopBackOff,
}

impl fmt::Display for WaitingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// `until` is when a start is allowed again (CrashLoopBackOff only).
    Waiting {
        reason: WaitingReason,
        until: Option<Duration>,
    },
    Running {
        since: Duration,
    },
    /// Finished for good (an init container that completed).
    Terminated(Termination),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartEvent {
    Started { at: Duration },
    Exited { at: Duration, exit_code: i32, reason: ExitReason },
}

/// What to do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to schedule (it is running).
    None,
    /// Start it again at this time.
    RestartAt(Duration),
    /// Leave it stopped: it completed.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    #[error("the container is already running")]
    AlreadyRunning,
    #[error("the container is in back-off until {until:?}; it was started at {at:?}")]
    StartedDuringBackoff { at: Duration, until: Duration },
    #[error("the container is not running, so it cannot exit")]
    NotRunning,
    #[error("the container completed and is not restarted")]
    Completed,
    #[error("the container exited at {at:?}, before it started at {since:?}")]
    ExitBeforeStart { at: Duration, since: Duration },
}

/// The restart state of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartTracker {
    policy: CrashBackoff,
    rule: RestartRule,
    state: ContainerState,
    restart_count: u32,
    last_delay: Option<Duration>,
    last_termination: Option<Termination>,
}

impl RestartTracker {
    /// A container that has not started yet.
    pub fn new(policy: CrashBackoff, rule: RestartRule) -> Self {
        RestartTracker {
            policy,
            rule,
            state: ContainerState::Waiting { reason: WaitingReason::ContainerCreating, until: None },
            restart_count: 0,
            last_delay: None,
            last_termination: None,
        }
    }

    /// Applies an event. Starting during back-off, exiting when not running
    /// and starting a completed container are refused and change nothing.
    pub fn apply(&mut self, event: RestartEvent) -> Result<Decision, IllegalTransition> {
        match (self.state, event) {
            (ContainerState::Running { .. }, RestartEvent::Started { .. }) => Err(IllegalTransition::AlreadyRunning),
            (ContainerState::Terminated(_), _) => Err(IllegalTransition::Completed),
            (ContainerState::Waiting { .. }, RestartEvent::Exited { .. }) => Err(IllegalTransition::NotRunning),
            (ContainerState::Waiting { reason, until }, RestartEvent::Started { at }) => {
                if let Some(until) = until.filter(|u| at < *u) {
                    return Err(IllegalTransition::StartedDuringBackoff { at, until });
                }
                if reason == WaitingReason::CrashLoopBackOff {
                    self.restart_count = self.restart_count.saturating_add(1);
                }
                self.state = ContainerState::Running { since: at };
                Ok(Decision::None)
            }
            (ContainerState::Running { since }, RestartEvent::Exited { at, exit_code, reason }) => {
                if at < since {
                    return Err(IllegalTransition::ExitBeforeStart { at, since });
                }
                let termination = Termination { exit_code, reason, started_at: since, finished_at: at };
                self.last_termination = Some(termination);
                if self.rule == RestartRule::OnFailure && exit_code == 0 {
                    self.state = ContainerState::Terminated(termination);
                    return Ok(Decision::Done);
                }
                let delay = self.policy.next_delay(self.last_delay, at - since);
                self.last_delay = Some(delay);
                let until = at + delay;
                self.state = ContainerState::Waiting { reason: WaitingReason::CrashLoopBackOff, until: Some(until) };
                Ok(Decision::RestartAt(until))
            }
        }
    }

    pub fn state(&self) -> ContainerState {
        self.state
    }

    /// Times the container was started again after an exit.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    pub fn last_termination(&self) -> Option<Termination> {
        self.last_termination
    }

    /// The back-off delay in force, if it is waiting out one.
    pub fn current_delay(&self) -> Option<Duration> {
        match self.state {
            ContainerState::Waiting { reason: WaitingReason::CrashLoopBackOff, .. } => self.last_delay,
            _ => None,
        }
    }

    /// True when a start is allowed at `now`.
    pub fn may_start(&self, now: Duration) -> bool {
        match self.state {
            ContainerState::Waiting { until, .. } => until.is_none_or(|u| now >= u),
            _ => false,
        }
    }

    /// A one-line status as `berth get` shows it, e.g.
    /// `CrashLoopBackOff (back-off 40s), restarts 3, last exit: Error (code 1)`.
    pub fn summary(&self) -> String {
        let state = match self.state {
            ContainerState::Waiting { reason: WaitingReason::CrashLoopBackOff, .. } => {
                format!("CrashLoopBackOff (back-off {}s)", self.last_delay.unwrap_or_default().as_secs())
            }
            ContainerState::Waiting { reason, .. } => reason.to_string(),
            ContainerState::Running { .. } => "Running".to_string(),
            ContainerState::Terminated(t) => format!("Terminated: {}", t.reason),
        };
        match self.last_termination {
            Some(t) => {
                format!("{state}, restarts {}, last exit: {} (code {})", self.restart_count, t.reason, t.exit_code)
            }
            None => format!("{state}, restarts {}", self.restart_count),
        }
    }
}

#[cfg(test)]
mod tests;
