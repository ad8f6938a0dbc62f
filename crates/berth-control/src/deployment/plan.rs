//! The pure decisions of the reconcilers: which pods a Deployment needs
//! created or removed next, and which backends a Service has. Values in,
//! values out; no clock, no I/O.

use std::net::{Ipv4Addr, SocketAddrV4};

use berth_core::net::{Backend, Protocol as NetProtocol, Weights};
use berth_manifest::model::{DeploymentSpec, PodTemplate, Protocol, ServiceSpec, TargetPort};

use crate::pod::{LastExit, PodContainer};

/// What the Deployment reconciler knows about one of its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    /// The template hash it was made from.
    pub hash: String,
    pub ready: bool,
    /// Deletion was asked for; it is draining or stopping.
    pub terminating: bool,
    /// Creation time as RFC 3339 (sorts by time).
    pub created: String,
}

/// The next step for a Deployment. Idempotent: after a crash the same
/// facts give the same step, and a step already taken shows in the facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// New pods of the current template to create.
    pub create: u32,
    /// Pods to terminate, by name.
    pub delete: Vec<String>,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        self.create == 0 && self.delete.is_empty()
    }
}

/// Decides the next step toward `replicas` ready pods of the template with
/// hash `hash`, within the strategy's bounds: `RollingUpdate` keeps at most
/// `replicas + maxSurge` pods and at least `replicas - maxUnavailable`
/// ready ones while it replaces old pods; `Recreate` removes every old pod
/// and waits for them to be gone before it creates new ones. Pods that are
/// terminating count for neither bound (as in Kubernetes).
pub fn deployment_step(spec: &DeploymentSpec, hash: &str, pods: &[PodFacts]) -> Step {
    let replicas = spec.replicas as usize;
    let live: Vec<&PodFacts> = pods.iter().filter(|p| !p.terminating).collect();
    let (new, old): (Vec<&PodFacts>, Vec<&PodFacts>) = live.iter().partition(|p| p.hash == hash);
    let Some((surge, unavailable)) = spec.strategy.resolve(spec.replicas) else {
        // Recreate: every old pod goes, and is gone, before a new one starts.
        if !old.is_empty() {
            return Step { create: 0, delete: old.iter().map(|p| p.name.clone()).collect() };
        }
        if pods.iter().any(|p| p.terminating && p.hash != hash) {
            return Step::default();
        }
        return scale(&new, replicas);
    };
    if old.is_empty() {
        return scale(&new, replicas);
    }
    let max_total = replicas + surge as usize;
    let min_ready = replicas.saturating_sub(unavailable as usize);
    let mut step = Step::default();
    let room = max_total.saturating_sub(live.len());
    step.create = room.min(replicas.saturating_sub(new.len())) as u32;
    // Old pods that are not ready serve nobody: they go first and cost no
    // availability. Ready ones go while enough others are ready.
    let mut old_sorted = old.clone();
    old_sorted.sort_by(|a, b| a.ready.cmp(&b.ready).then(a.created.cmp(&b.created)));
    let ready = live.iter().filter(|p| p.ready).count();
    let mut may_remove_ready = ready.saturating_sub(min_ready);
    for p in old_sorted {
        if p.ready {
            if may_remove_ready == 0 {
                break;
            }
            may_remove_ready -= 1;
        }
        step.delete.push(p.name.clone());
    }
    step
}

/// Creates or removes pods of the current template to reach `replicas`;
/// removal prefers unready pods, then the newest.
fn scale(current: &[&PodFacts], replicas: usize) -> Step {
    if current.len() < replicas {
        return Step { create: (replicas - current.len()) as u32, delete: Vec::new() };
    }
    let mut sorted: Vec<&&PodFacts> = current.iter().collect();
    sorted.sort_by(|a, b| a.ready.cmp(&b.ready).then(b.created.cmp(&a.created)));
    Step { create: 0, delete: sorted.iter().take(current.len() - replicas).map(|p| p.name.clone()).collect() }
}

/// A pod as a possible Service endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint<'a> {
    pub name: &'a str,
    pub ip: Option<Ipv4Addr>,
    pub ready: bool,
    pub terminating: bool,
    pub template: &'a PodTemplate,
    /// The template hash the pod was made from.
    pub hash: &'a str,
}

/// Which of its selected pods a Service sends to. A Service in front of an
/// Argo Rollout sends by revision: its stable/canary split, or only one
/// revision (the active or preview one of a blue-green rollout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Every selected pod, weighted equally.
    All,
    /// Only pods of this template hash.
    Only(&'a str),
    /// `weight` % of new connections to the canary's pods, the rest to the
    /// stable ones, whatever the pod counts.
    Split { stable: &'a str, canary: &'a str, weight: u8 },
}

impl Route<'_> {
    /// Whether a pod of `hash` is one of this route's endpoints.
    pub fn admits(&self, hash: &str) -> bool {
        match self {
            Route::All => true,
            Route::Only(h) => *h == hash,
            Route::Split { stable, canary, .. } => *stable == hash || *canary == hash,
        }
    }
}

/// The backends of one Service port: every ready, not terminating pod with
/// an address whose template resolves the target port, weighted equally
/// (or split between a rollout's revisions as `route` says).
pub fn service_backends(svc: &ServiceSpec, port_index: usize, pods: &[Endpoint<'_>], route: Route<'_>) -> Vec<Backend> {
    let Some(port) = svc.ports.get(port_index) else { return Vec::new() };
    let targets = |hash: Option<&str>| -> Vec<SocketAddrV4> {
        let mut t: Vec<SocketAddrV4> = pods
            .iter()
            .filter(|p| p.ready && !p.terminating && route.admits(p.hash) && hash.is_none_or(|h| h == p.hash))
            .filter_map(|p| Some(SocketAddrV4::new(p.ip?, target_port(&port.target_port, port.protocol, p.template)?)))
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let weights = match route {
        Route::Split { stable, canary, weight } if stable != canary => {
            Weights::split(&targets(Some(stable)), &targets(Some(canary)), weight)
        }
        _ => Weights::equal(&targets(None)),
    };
    weights.map(|w| w.backends().to_vec()).unwrap_or_default()
}

/// The container port a Service's `targetPort` means in this pod.
pub fn target_port(target: &TargetPort, protocol: Protocol, template: &PodTemplate) -> Option<u16> {
    match target {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Name(name) => template
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol == protocol)
            .map(|p| p.port),
    }
}

/// What a pod container's berth container is doing, as the store says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed<'a> {
    /// Not created yet (or removed behind berth's back).
    Missing,
    Running,
    /// Created and never started (a crash between create and start).
    Created,
    Exited {
        exit_code: i32,
        oom_killed: bool,
        started_at: Option<&'a str>,
        finished_at: &'a str,
    },
}

/// The next step for one container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStep {
    /// Pull if needed, create, start.
    Create,
    /// Running: run its due probes.
    Probe,
    /// An init container finished with 0: it is done.
    Completed(LastExit),
    /// A new exit: record it and wait out this back-off.
    BackOff { exit: LastExit, delay: std::time::Duration },
    /// The back-off is still in force for this long.
    Wait(std::time::Duration),
    /// Start the same container again (the exit counts as a restart).
    Restart { after_exit: bool },
}

/// Decides a container's next step from its recorded state and what the
/// store says of its berth container, at wall-clock `now`. An exit already
/// recorded (same finish time) is not counted twice, so replaying after a
/// crash is harmless.
pub fn container_step(
    st: &PodContainer,
    observed: Observed<'_>,
    init: bool,
    now: chrono::DateTime<chrono::Utc>,
    backoff: &crate::CrashBackoff,
) -> ContainerStep {
    let until = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| (t.with_timezone(&chrono::Utc) - now).to_std().ok())
            .unwrap_or_default()
    };
    match observed {
        Observed::Missing => match until(&st.backoff_until) {
            d if d.is_zero() => ContainerStep::Create,
            d => ContainerStep::Wait(d),
        },
        Observed::Running => ContainerStep::Probe,
        Observed::Created => ContainerStep::Restart { after_exit: false },
        Observed::Exited { exit_code, oom_killed, started_at, finished_at } => {
            let seen = st.last_exit.as_ref().is_some_and(|l| l.finished_at == finished_at);
            if !seen {
                let reason = if oom_killed {
                    "OOMKilled"
                } else if exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                let exit = LastExit {
                    exit_code,
                    reason: reason.into(),
                    started_at: started_at.map(str::to_string),
                    finished_at: finished_at.to_string(),
                };
                if init && exit_code == 0 {
                    return ContainerStep::Completed(exit);
                }
                let parse =
                    |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&chrono::Utc));
                let ran_for = match (started_at.and_then(parse), parse(finished_at)) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
                    _ => std::time::Duration::ZERO,
                };
                let delay = backoff.next_delay(st.backoff_ms.map(std::time::Duration::from_millis), ran_for);
                return ContainerStep::BackOff { exit, delay };
            }
            if st.completed {
                return ContainerStep::Completed(st.last_exit.clone().expect("seen"));
            }
            match until(&st.backoff_until) {
                d if d.is_zero() => ContainerStep::Restart { after_exit: true },
                d => ContainerStep::Wait(d),
            }
        }
    }
}

pub fn net_protocol(p: Protocol) -> NetProtocol {
    match p {
        Protocol::Tcp => NetProtocol::Tcp,
        Protocol::Udp => NetProtocol::Udp,
    }
}

#[cfg(test)]
mod tests;
