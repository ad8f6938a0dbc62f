//! Containers: identities, names, states and the rules that move between
//! them, and restart policies with their backoff. Pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// 64 lowercase hex digits, as docker's container IDs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container ID {0:?}: expected 64 lowercase hex digits")]
    BadId(String),
    #[error("invalid container name {0:?}: use 1 to 128 of [a-zA-Z0-9_.-], starting with a letter or digit")]
    BadName(String),
    #[error("invalid restart policy {0:?}: use no, always, unless-stopped or on-failure[:MAX_RETRIES]")]
    BadRestartPolicy(String),
    #[error("container {id} cannot {action} while {state}")]
    IllegalTransition { id: String, action: &'static str, state: ContainerState },
}

impl ContainerId {
    /// Builds an ID from 32 random bytes (the caller supplies randomness, so
    /// this stays pure).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(hex::encode(bytes))
    }

    pub fn parse(s: &str) -> Result<Self, ContainerError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_string()))
        } else {
            Err(ContainerError::BadId(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit form `ps` prints.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.short())
    }
}

impl TryFrom<String> for ContainerId {
    type Error = ContainerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

/// Checks a user-given container name (docker's rule).
pub fn validate_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::BadName(name.to_string()))
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Bundle and root filesystem ready; no process yet.
    Created,
    /// Its shim and process run.
    Running,
    /// The process ended; the exit is recorded.
    Exited,
    /// Waiting out a restart backoff.
    Restarting,
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Restarting => "restarting",
        })
    }
}

/// What happens to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Start,
    Exit,
    ScheduleRestart,
    Remove,
}

impl ContainerState {
    /// The state after `t`, or why `t` is not allowed now.
    pub fn next(self, t: Transition, id: &str) -> Result<ContainerState, ContainerError> {
        use ContainerState::*;
        use Transition::*;
        let illegal = |action| Err(ContainerError::IllegalTransition { id: id.to_string(), action, state: self });
        match (self, t) {
            (Created | Exited | Restarting, Start) => Ok(Running),
            (Running, Start) => illegal("start"),
            (Running, Exit) => Ok(Exited),
            (Created | Exited | Restarting, Exit) => illegal("exit"),
            (Exited, ScheduleRestart) => Ok(Restarting),
            (Created | Running | Restarting, ScheduleRestart) => illegal("schedule a restart"),
            (Created | Exited | Restarting, Remove) => Ok(Exited),
            (Running, Remove) => illegal("be removed (stop it first or use -f)"),
        }
    }
}

/// `--restart`. On the wire and in the store it is docker's spelling
/// (`on-failure:3`), so a request with an unknown policy is refused when
/// it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        /// 0 means no limit.
        max_retries: u32,
    },
}

impl FromStr for RestartPolicy {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ContainerError::BadRestartPolicy(s.to_string());
        match s {
            "" | "no" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => Ok(Self::OnFailure { max_retries: 0 }),
            other => match other.strip_prefix("on-failure:") {
                Some(n) => n.parse().map(|max_retries| Self::OnFailure { max_retries }).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = ContainerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RestartPolicy> for String {
    fn from(p: RestartPolicy) -> String {
        p.to_string()
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::Always => f.write_str("always"),
            Self::UnlessStopped => f.write_str("unless-stopped"),
            Self::OnFailure { max_retries: 0 } => f.write_str("on-failure"),
            Self::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
        }
    }
}

impl RestartPolicy {
    /// Whether a container that exited with `code` (after `restarts`
    /// restarts) should start again. `stopped_by_user` is true after
    /// `berth stop`/`kill`, which no policy overrides.
    pub fn should_restart(self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max_retries } => code != 0 && (max_retries == 0 || restarts < max_retries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_travel_in_dockers_spelling() {
        for text in ["no", "always", "unless-stopped", "on-failure", "on-failure:3"] {
            let p: RestartPolicy = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(text));
        }
        let req = serde_json::from_str::<crate::api::ContainerCreateRequest>(r#"{"image":"x","restart":"sometimes"}"#);
        let e = req.unwrap_err().to_string();
        assert!(e.contains("invalid restart policy \"sometimes\""), "{e}");
    }

    #[test]
    fn ids_and_names() {
        let id = ContainerId::from_bytes([0xab; 32]);
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(id.short(), "abababababab");
        assert_eq!(ContainerId::parse(id.as_str()).unwrap(), id);
        assert!(ContainerId::parse("abc").is_err());
        for ok in ["web", "web-1", "a.b_c", "9lives"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-web", "_x", "a b", "a/b", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn state_machine_is_total_and_strict() {
        use ContainerState::*;
        use Transition::*;
        let states = [Created, Running, Exited, Restarting];
        let transitions = [Start, Exit, ScheduleRestart, Remove];
        let mut allowed = 0;
        for s in states {
            for t in transitions {
                if s.next(t, "x").is_ok() {
                    allowed += 1;
                }
            }
        }
        assert_eq!(allowed, 8);
        assert_eq!(Created.next(Start, "x").unwrap(), Running);
        assert_eq!(Running.next(Exit, "x").unwrap(), Exited);
        let err = Running.next(Remove, "web").unwrap_err().to_string();
        assert!(err.contains("web") && err.contains("-f"), "{err}");
        assert!(Running.next(Start, "x").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!("on-failure:3".parse::<RestartPolicy>().unwrap(), RestartPolicy::OnFailure { max_retries: 3 });
        assert_eq!("unless-stopped".parse::<RestartPolicy>().unwrap().to_string(), "unless-stopped");
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }
}
