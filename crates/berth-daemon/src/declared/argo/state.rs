//! What the Rollout reconciler keeps per Argo Rollout: its revisions, where
//! its strategy stands, and its analysis runs. Written after every step, so
//! a daemon killed at any moment continues from here with the same traffic
//! split.

use berth_control::argo::{RolloutState, StrategyStatus};
use berth_core::record::Record;
use berth_store::{Records, Store, StoreError};
use serde::{Deserialize, Serialize};

pub fn load(store: &dyn Store, key: &str) -> Result<Option<RolloutState>, StoreError> {
    store.get(key)
}

pub fn save(store: &dyn Store, key: &str, state: &RolloutState) -> Result<(), StoreError> {
    store.put(key, state)
}

pub fn remove(store: &dyn Store, key: &str) -> Result<(), StoreError> {
    store.remove::<Routed>(key)?;
    store.remove::<RolloutState>(key).map(drop)
}

/// The status whose traffic split is in the kernel: written by the Service
/// reconciler once the VIPs carry it, so what a reader is told ("healthy",
/// "weight 20 %") is what traffic does. A record of its own, so it never
/// races the reconciler's writes of [`RolloutState`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct Routed(StrategyStatus);

impl Record for Routed {
    const KIND: &'static str = "k8s/RolloutRouted";
    const WHAT: &'static str = "rollout routing";
}

pub fn routed(store: &dyn Store, key: &str) -> Result<Option<StrategyStatus>, StoreError> {
    Ok(store.get::<Routed>(key)?.map(|r| r.0))
}

pub fn set_routed(store: &dyn Store, key: &str, status: &StrategyStatus) -> Result<(), StoreError> {
    if routed(store, key)?.as_ref() == Some(status) {
        return Ok(());
    }
    store.put(key, &Routed(status.clone()))
}
