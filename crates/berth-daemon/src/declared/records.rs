//! What the declared-services layer keeps in the store: the objects as
//! applied (their documents, so `get -o yaml` shows them back), and pods
//! with everything needed to adopt them after a restart.

use berth_control::deployment::revisions::DeploymentState;
use berth_core::record::Record;
use berth_manifest::Object;
use berth_store::{Records, Store, StoreError};
use serde::{Deserialize, Serialize};

pub use berth_control::pod::{PodContainer, PodRecord};

/// Store kinds. Objects are keyed `namespace/name`.
pub fn store_kind(kind: &str) -> String {
    format!("k8s/{kind}")
}

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

/// When a pod's deletion was asked for (RFC 3339). A record of its own,
/// so a worker writing the pod's status never overwrites a deletion asked
/// for meanwhile.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct PodDeletion(String);

impl Record for PodDeletion {
    const KIND: &'static str = "k8s/PodDeletion";
    const WHAT: &'static str = "pod deletion";
}

fn with_deletion(store: &dyn Store, mut p: PodRecord) -> Result<PodRecord, StoreError> {
    p.deleting = store.get::<PodDeletion>(&p.key())?.map(|d| d.0);
    Ok(p)
}

pub fn pods(store: &dyn Store) -> Result<Vec<PodRecord>, StoreError> {
    store.all::<PodRecord>()?.into_iter().map(|(_, p)| with_deletion(store, p)).collect()
}

pub fn pod(store: &dyn Store, key: &str) -> Result<Option<PodRecord>, StoreError> {
    store.get::<PodRecord>(key)?.map(|p| with_deletion(store, p)).transpose()
}

/// Asks for a pod's deletion. Idempotent: the first time is kept.
pub fn mark_deleting(store: &dyn Store, key: &str, at: &str) -> Result<(), StoreError> {
    match store.create(key, &PodDeletion(at.to_string())) {
        Err(StoreError::Exists { .. }) => Ok(()),
        other => other,
    }
}

/// Forgets a pod entirely (after its containers and sandbox are gone).
pub fn remove_pod(store: &dyn Store, key: &str) -> Result<(), StoreError> {
    store.remove::<PodRecord>(key)?;
    store.remove::<PodDeletion>(key)?;
    Ok(())
}

pub fn put_pod(store: &dyn Store, p: &PodRecord) -> Result<(), StoreError> {
    store.put(&p.key(), p)
}

pub fn objects(store: &dyn Store, kind: &str) -> Result<Vec<(String, StoredObject)>, StoreError> {
    store
        .list_objects(&store_kind(kind))?
        .into_iter()
        .map(|(k, v)| {
            let o = decode_object(&k, v)?;
            Ok((k, o))
        })
        .collect()
}

pub fn object(store: &dyn Store, kind: &str, key: &str) -> Result<Option<StoredObject>, StoreError> {
    store.get_object(&store_kind(kind), key)?.map(|v| decode_object(key, v)).transpose()
}

/// A stored object (its kind is part of the row's kind, so it is not a
/// [`Record`]); one that does not decode is corrupt, naming its key.
fn decode_object(key: &str, v: serde_json::Value) -> Result<StoredObject, StoreError> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Corrupt { what: "declared object", detail: format!("{key}: {e}") })
}

pub fn deployment_state(store: &dyn Store, key: &str) -> Result<Option<DeploymentState>, StoreError> {
    store.get(key)
}

pub fn put_deployment_state(store: &dyn Store, key: &str, state: &DeploymentState) -> Result<(), StoreError> {
    store.put(key, state)
}

pub fn remove_deployment_state(store: &dyn Store, key: &str) -> Result<(), StoreError> {
    store.remove::<DeploymentState>(key).map(drop)
}
