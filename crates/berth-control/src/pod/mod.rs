//! A pod as the Deployment reconciler keeps it: the template it runs, and
//! per container the probes' verdict, restarts, back-off and last exit,
//! everything needed to adopt it after a daemon restart. Plain data; the
//! daemon stores it.

pub mod spec;

use std::collections::BTreeMap;

use berth_core::record::Record;
use berth_manifest::model::PodTemplate;
use serde::{Deserialize, Serialize};

/// The last exit of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: Option<String>,
    pub finished_at: String,
}

/// One container of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodContainer {
    /// The berth container running it, once created.
    pub id: Option<String>,
    pub restarts: u32,
    /// The probes' verdict, kept so a daemon restart adopts it.
    pub started: bool,
    pub ready: bool,
    /// Why it is not running (`ContainerCreating`, `CrashLoopBackOff`,
    /// `ErrImagePull`, ...) and the details.
    pub waiting: Option<(String, String)>,
    pub last_exit: Option<LastExit>,
    /// Init containers: ran to completion.
    pub completed: bool,
    /// The back-off in force (ms), and until when (RFC 3339).
    pub backoff_ms: Option<u64>,
    pub backoff_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The Deployment it belongs to.
    pub owner: Option<String>,
    pub hash: String,
    pub labels: BTreeMap<String, String>,
    pub template: PodTemplate,
    /// `spec.template.spec` as written, for `get -o yaml`.
    pub spec: serde_json::Value,
    pub created: String,
    /// Set when the pod must go (kubectl's deletionTimestamp). Kept in a
    /// record of its own, so a worker writing the pod's status never
    /// overwrites a deletion asked for meanwhile.
    #[serde(skip)]
    pub deleting: Option<String>,
    pub ip: Option<String>,
    pub started: Option<String>,
    pub containers: BTreeMap<String, PodContainer>,
    /// Every container is ready (and the pod is not terminating).
    pub ready: bool,
    /// When `ready` last changed.
    pub ready_since: Option<String>,
}

impl Record for PodRecord {
    const KIND: &'static str = "k8s/Pod";
    const WHAT: &'static str = "pod record";
}

impl PodRecord {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn container(&mut self, name: &str) -> &mut PodContainer {
        self.containers.entry(name.to_string()).or_default()
    }
}
