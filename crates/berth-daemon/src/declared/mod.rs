//! Declared services: Kubernetes Deployments, Services, ConfigMaps and
//! Secrets applied with `berth apply`, kept so by reconcilers.
//!
//! Design: the store holds what was declared (each object's document) and
//! every pod (its template, containers and last known health). Three loops
//! work from it, each taking the next idempotent step and persisting it
//! before acting, so a daemon killed at any point resumes where it was:
//! - the Deployment reconciler ([`plan::deployment_step`]) creates pod
//!   records and marks pods for deletion;
//! - one worker per pod ([`pod`]) makes its sandbox, runs init containers
//!   then containers, probes them, restarts them with back-off, and drains
//!   and stops the pod when it must go;
//! - the Service reconciler programs each Service's VIPs with its ready
//!   pods ([`plan::service_backends`]) and its DNS names.
//!
//! After a restart, running containers are adopted with the health they
//! had; nothing healthy is restarted.

mod argo;
mod kube;
mod pod;
mod read;
mod reconcile;
mod records;
mod subpath;
mod verbs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use pod::secret_data;

/// The store kind of Secrets (whose records the store seals).
pub const SECRET_STORE_KIND: &str = "k8s/Secret";

use berth_control::deployment::{plan, revisions};
use berth_control::pod::spec;
use berth_control::CrashBackoff;
use berth_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// Manifests that cannot be applied; one line per problem.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = DeclaredError> = std::result::Result<T, E>;

/// A validated object with the uid and generation of the stored document
/// it came from.
type Parsed = (String, u64, berth_manifest::Object);

/// `[services]` settings.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub backoff: CrashBackoff,
    /// Longest wait for a leaving pod's connections to close.
    pub drain_timeout: Duration,
}

pub struct Declared {
    store: Arc<dyn Store>,
    containers: Arc<crate::containers::Containers>,
    networks: Arc<crate::networks::Networks>,
    images: Arc<berth_image::ImageStore>,
    events: Arc<crate::events::Events>,
    clock: Arc<dyn berth_core::clock::Clock>,
    /// Pods' tmpfs volumes.
    mounts: Arc<dyn berth_image::Mounts>,
    /// Network probes of pods.
    probes: Arc<dyn crate::probes::NetProbes>,
    settings: ServiceSettings,
    /// Pod directories: on disk (emptyDirs), in memory (secrets, configs).
    disk: PathBuf,
    memory: PathBuf,
    /// Serialises apply, delete, scale and the Deployment reconciler.
    lock: tokio::sync::Mutex<()>,
    services_lock: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    workers: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Analysis measurements under way, and those taken and not yet
    /// counted (see [`argo`]).
    measuring: Mutex<std::collections::HashSet<String>>,
    /// Validated objects by store kind and key, with the (uid, generation)
    /// they were read at: a stored document is checked once per change,
    /// not on every pass.
    parsed: Mutex<HashMap<(String, String), Parsed>>,
    measured: Mutex<Vec<argo::Measured>>,
    /// Readiness probes per pod since the daemon started: (successes,
    /// attempts), for the analysis provider `probe`.
    probe_counts: Mutex<HashMap<String, (u64, u64)>>,
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn uid() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `kind` an API path's plural names (`deployments` → `Deployment`).
fn resource_kind(resource: &str) -> Option<&'static str> {
    berth_core::kind::Kind::from_resource(resource).map(berth_core::kind::Kind::kind)
}

/// What `get`/`list` are asked for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    pub show_secrets: bool,
    /// Events only: `Kind/name` of the object they are about.
    pub involved: Option<String>,
}

impl Declared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        containers: Arc<crate::containers::Containers>,
        networks: Arc<crate::networks::Networks>,
        images: Arc<berth_image::ImageStore>,
        events: Arc<crate::events::Events>,
        host: &crate::host::Host,
        root: &std::path::Path,
        run_root: &std::path::Path,
        settings: ServiceSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            containers,
            networks,
            images,
            events,
            clock: Arc::clone(&host.clock),
            mounts: Arc::clone(&host.mounts),
            probes: Arc::clone(&host.probes),
            settings,
            disk: root.join("pods"),
            memory: run_root.join("pods"),
            lock: tokio::sync::Mutex::new(()),
            services_lock: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            workers: Mutex::new(HashMap::new()),
            measuring: Mutex::new(Default::default()),
            parsed: Mutex::new(HashMap::new()),
            measured: Mutex::new(Vec::new()),
            probe_counts: Mutex::new(HashMap::new()),
        })
    }

    /// Now, to the second, as Kubernetes stamps objects.
    fn now(&self) -> String {
        berth_core::clock::stamp_secs(self.clock.now())
    }

    /// Starts the reconcilers: adopts every stored pod, then keeps
    /// Deployments and Services as declared.
    pub fn start(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.reconcile().await {
                    tracing::warn!(error = %e, "reconciling declared state failed");
                }
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    fn event(&self, kind: &str, namespace: &str, name: &str, warning: bool, reason: &str, message: String) {
        self.events.emit(
            kind,
            reason,
            &format!("{namespace}/{name}"),
            name,
            &[
                ("namespace", namespace.to_string()),
                ("type", if warning { "Warning" } else { "Normal" }.to_string()),
                ("message", message),
            ],
        );
    }
}

#[cfg(test)]
mod argo_tests;
#[cfg(test)]
mod tests;
