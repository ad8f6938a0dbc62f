//! Deployments and Services.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pod::{PodTemplate, Protocol};
use super::ObjectMeta;
use crate::selector::{Labels, Selector};

/// A Deployment: keep `replicas` pods of `template` running, replaced by
/// `strategy` when the template changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    pub meta: ObjectMeta,
    pub replicas: u32,
    /// Never empty; always matches the template's labels.
    pub selector: Selector,
    pub template: PodTemplate,
    pub strategy: Strategy,
    pub min_ready: Duration,
    pub progress_deadline: Duration,
    pub revision_history_limit: u32,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Stop every old pod, then start the new ones.
    Recreate,
    /// Replace pods a few at a time.
    RollingUpdate { max_surge: IntOrPercent, max_unavailable: IntOrPercent },
}

/// A count or a percentage of the replicas (Kubernetes' IntOrString).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntOrPercent {
    Count(u32),
    Percent(u32),
}

impl IntOrPercent {
    /// The count for `replicas`, a percentage rounded up or down.
    pub fn of(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Count(n) => n,
            IntOrPercent::Percent(p) => {
                let scaled = u64::from(p) * u64::from(replicas);
                let n = if round_up { scaled.div_ceil(100) } else { scaled / 100 };
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        }
    }
}

impl Strategy {
    /// Kubernetes' default: RollingUpdate with 25% surge and 25% unavailable.
    pub const DEFAULT: Strategy =
        Strategy::RollingUpdate { max_surge: IntOrPercent::Percent(25), max_unavailable: IntOrPercent::Percent(25) };

    /// `(max_surge, max_unavailable)` as pod counts for `replicas`, as
    /// Kubernetes resolves them: surge rounds up, unavailable rounds down,
    /// and when both come to 0 one pod may be unavailable so the rollout can
    /// move. `None` for Recreate.
    pub fn resolve(&self, replicas: u32) -> Option<(u32, u32)> {
        match *self {
            Strategy::Recreate => None,
            Strategy::RollingUpdate { max_surge, max_unavailable } => {
                let surge = max_surge.of(replicas, true);
                let unavailable = max_unavailable.of(replicas, false);
                Some(if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) })
            }
        }
    }
}

/// A Service: a stable address for the pods its selector matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub meta: ObjectMeta,
    pub service_type: ServiceType,
    /// Equality-only, as Kubernetes Services select.
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
    pub cluster_ip: ClusterIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    /// A virtual IP from berth's configured range.
    ClusterIp,
    /// A virtual IP plus a port published on the host.
    NodePort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterIp {
    /// berth picks one from its range.
    Auto,
    /// `clusterIP: None`: no VIP; the name resolves to the pods.
    Headless,
    /// Asked for; the daemon checks it lies in its range and is free.
    Fixed(Ipv4Addr),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: TargetPort,
    pub protocol: Protocol,
    /// NodePort services only; `None` means berth picks one.
    pub node_port: Option<u16>,
}

/// Where a Service port sends traffic: a number, or a container port name
/// resolved per pod at run time (pods of one Service may differ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}
