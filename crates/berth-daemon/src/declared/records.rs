//! What the declared-services layer keeps in the store: the objects as
//! applied (their documents, so `get -o yaml` shows them back), and pods
//! with everything needed to adopt them after a restart.

use std::collections::BTreeMap;

use berth_manifest::model::PodTemplate;
use berth_manifest::Object;
use berth_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// Store kinds. Objects are keyed `namespace/name`.
pub fn store_kind(kind: &str) -> String {
    format!("k8s/{kind}")
}

pub const POD: &str = "k8s/Pod";
const POD_DELETION: &str = "k8s/PodDeletion";

/// An applied object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    pub uid: String,
    pub created: String,
    /// Goes up by one on every change of what was declared.
    pub generation: u64,
    /// The live document: as applied, with what imperative commands
    /// (`scale`, `rollout pause|restart|undo`, an automatic rollback)
    /// changed since.
    pub manifest: serde_json::Value,
    /// The document as last applied; `None` means `manifest` is it.
    #[serde(default)]
    pub applied: Option<serde_json::Value>,
}

impl StoredObject {
    /// The document as last applied.
    pub fn last_applied(&self) -> &serde_json::Value {
        self.applied.as_ref().unwrap_or(&self.manifest)
    }

    /// The validated object. A stored document was valid when applied; a
    /// newer berth that refuses it reports a corrupt record.
    pub fn object(&self) -> Result<Object, StoreError> {
        object_of(&self.manifest)
    }
}

/// The validated object of a stored document.
pub fn object_of(manifest: &serde_json::Value) -> Result<Object, StoreError> {
    {
        let text = serde_json::to_string(manifest).unwrap_or_default();
        berth_manifest::load(&text)
            .map_err(|e| StoreError::Corrupt { what: "declared object", detail: e.to_string() })?
            .into_iter()
            .next()
            .ok_or(StoreError::Corrupt { what: "declared object", detail: "empty document".into() })
    }
}

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

impl PodRecord {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn container(&mut self, name: &str) -> &mut PodContainer {
        self.containers.entry(name.to_string()).or_default()
    }
}

fn decode_pod(store: &dyn Store, v: serde_json::Value) -> Result<PodRecord, StoreError> {
    let mut p: PodRecord =
        serde_json::from_value(v).map_err(|e| StoreError::Corrupt { what: "pod record", detail: e.to_string() })?;
    p.deleting = store.get_object(POD_DELETION, &p.key())?.and_then(|v| v.as_str().map(str::to_string));
    Ok(p)
}

pub fn pods(store: &dyn Store) -> Result<Vec<PodRecord>, StoreError> {
    store.list_objects(POD)?.into_iter().map(|(_, v)| decode_pod(store, v)).collect()
}

pub fn pod(store: &dyn Store, key: &str) -> Result<Option<PodRecord>, StoreError> {
    store.get_object(POD, key)?.map(|v| decode_pod(store, v)).transpose()
}

/// Asks for a pod's deletion. Idempotent: the first time is kept.
pub fn mark_deleting(store: &dyn Store, key: &str, at: &str) -> Result<(), StoreError> {
    match store.create_object(POD_DELETION, key, &serde_json::Value::String(at.to_string())) {
        Err(StoreError::Exists { .. }) => Ok(()),
        other => other,
    }
}

/// Forgets a pod entirely (after its containers and sandbox are gone).
pub fn remove_pod(store: &dyn Store, key: &str) -> Result<(), StoreError> {
    store.delete_object(POD, key)?;
    store.delete_object(POD_DELETION, key)?;
    Ok(())
}

pub fn put_pod(store: &dyn Store, p: &PodRecord) -> Result<(), StoreError> {
    store.put_object(POD, &p.key(), &serde_json::to_value(p).expect("pod record serialises"))
}

pub fn objects(store: &dyn Store, kind: &str) -> Result<Vec<(String, StoredObject)>, StoreError> {
    store
        .list_objects(&store_kind(kind))?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_value(v)
                .map(|o| (k, o))
                .map_err(|e| StoreError::Corrupt { what: "declared object", detail: e.to_string() })
        })
        .collect()
}

pub fn object(store: &dyn Store, kind: &str, key: &str) -> Result<Option<StoredObject>, StoreError> {
    store
        .get_object(&store_kind(kind), key)?
        .map(|v| {
            serde_json::from_value(v)
                .map_err(|e| StoreError::Corrupt { what: "declared object", detail: e.to_string() })
        })
        .transpose()
}

const DEPLOYMENT_STATE: &str = "k8s/DeploymentState";

pub fn deployment_state(store: &dyn Store, key: &str) -> Result<Option<super::rollout::DeploymentState>, StoreError> {
    store
        .get_object(DEPLOYMENT_STATE, key)?
        .map(|v| {
            serde_json::from_value(v)
                .map_err(|e| StoreError::Corrupt { what: "deployment state", detail: e.to_string() })
        })
        .transpose()
}

pub fn put_deployment_state(
    store: &dyn Store,
    key: &str,
    state: &super::rollout::DeploymentState,
) -> Result<(), StoreError> {
    store.put_object(DEPLOYMENT_STATE, key, &serde_json::to_value(state).expect("deployment state serialises"))
}

pub fn remove_deployment_state(store: &dyn Store, key: &str) -> Result<(), StoreError> {
    store.delete_object(DEPLOYMENT_STATE, key).map(|_| ())
}
