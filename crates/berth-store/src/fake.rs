//! An in-memory [`Store`] for unit tests of the crates above.

use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_core::Digest;

use crate::{AddressClaim, ContainerRecord, ImageRecord, LayerRecord, Log, Result, Store, StoreError};

#[derive(Default)]
struct State {
    images: BTreeMap<Digest, ImageRecord>,
    tags: BTreeMap<String, Digest>,
    layers: BTreeMap<Digest, LayerRecord>,
    containers: BTreeMap<String, ContainerRecord>,
    logs: std::collections::HashMap<Log, Vec<(i64, String, serde_json::Value)>>,
    /// The last sequence number handed out per log (never reused).
    log_seq: std::collections::HashMap<Log, i64>,
    objects: BTreeMap<(String, String), serde_json::Value>,
    /// (network, ip) → owner.
    addresses: BTreeMap<(String, String), String>,
}

/// Keeps every record in memory, with the same semantics as
/// [`crate::SqliteStore`] (checked by the shared contract tests).
#[derive(Default)]
pub struct FakeStore {
    state: Mutex<State>,
}

impl FakeStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Store for FakeStore {
    fn put_images(&self, images: &[(ImageRecord, Vec<String>)]) -> Result<()> {
        // One lock for all: as atomic as the SQLite transaction.
        self.with(|s| {
            for (image, tags) in images {
                let rec = match s.images.get(&image.digest) {
                    Some(old) => ImageRecord {
                        repo_digests: image.repo_digests.clone(),
                        index_digest: old.index_digest.clone().or_else(|| image.index_digest.clone()),
                        ..old.clone()
                    },
                    None => image.clone(),
                };
                s.images.insert(image.digest.clone(), rec);
                for t in tags {
                    s.tags.insert(t.clone(), image.digest.clone());
                }
            }
            Ok(())
        })
    }

    fn add_repo_digest(&self, digest: &Digest, repo_digest: &str) -> Result<bool> {
        self.with(|s| match s.images.get_mut(digest) {
            Some(img) => {
                if !img.repo_digests.iter().any(|r| r == repo_digest) {
                    img.repo_digests.push(repo_digest.to_string());
                }
                Ok(true)
            }
            None => Ok(false),
        })
    }

    fn get_image(&self, digest: &Digest) -> Result<Option<ImageRecord>> {
        self.with(|s| Ok(s.images.get(digest).cloned()))
    }

    fn list_images(&self) -> Result<Vec<ImageRecord>> {
        self.with(|s| {
            let mut v: Vec<_> = s.images.values().cloned().collect();
            v.sort_by(|a, b| b.added_at.cmp(&a.added_at).then_with(|| a.digest.cmp(&b.digest)));
            Ok(v)
        })
    }

    fn delete_image(&self, digest: &Digest) -> Result<()> {
        self.with(|s| {
            s.tags.retain(|_, d| d != digest);
            s.images.remove(digest);
            Ok(())
        })
    }

    fn list_tags(&self) -> Result<Vec<(String, Digest)>> {
        self.with(|s| Ok(s.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }

    fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>> {
        self.with(|s| Ok(s.tags.get(tag).cloned()))
    }

    fn set_tag(&self, tag: &str, digest: &Digest) -> Result<()> {
        self.with(|s| {
            if !s.images.contains_key(digest) {
                return Err(StoreError::NotFound(format!("image {digest}")));
            }
            s.tags.insert(tag.to_string(), digest.clone());
            Ok(())
        })
    }

    fn remove_tag(&self, tag: &str) -> Result<bool> {
        self.with(|s| Ok(s.tags.remove(tag).is_some()))
    }

    fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        self.with(|s| {
            s.layers.insert(layer.diff_id.clone(), layer.clone());
            Ok(())
        })
    }

    fn get_layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        self.with(|s| Ok(s.layers.get(diff_id).cloned()))
    }

    fn list_layers(&self) -> Result<Vec<LayerRecord>> {
        self.with(|s| Ok(s.layers.values().cloned().collect()))
    }

    fn delete_layer(&self, diff_id: &Digest) -> Result<()> {
        self.with(|s| {
            s.layers.remove(diff_id);
            Ok(())
        })
    }

    fn put_container(&self, c: &ContainerRecord) -> Result<()> {
        self.with(|s| {
            if s.containers.values().any(|o| o.name == c.name && o.id != c.id) {
                return Err(StoreError::Conflict(c.name.clone()));
            }
            s.containers.insert(c.id.clone(), c.clone());
            Ok(())
        })
    }

    fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        self.with(|s| Ok(s.containers.get(id).cloned()))
    }

    fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        self.with(|s| {
            let mut v: Vec<_> = s.containers.values().cloned().collect();
            v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
            Ok(v)
        })
    }

    fn delete_container(&self, id: &str) -> Result<()> {
        self.with(|s| {
            s.containers.remove(id);
            Ok(())
        })
    }

    fn create_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        self.with(|s| {
            let key = (kind.to_string(), name.to_string());
            if s.objects.contains_key(&key) {
                return Err(StoreError::Exists { kind: kind.to_string(), name: name.to_string() });
            }
            s.objects.insert(key, record.clone());
            Ok(())
        })
    }

    fn put_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        self.with(|s| {
            s.objects.insert((kind.to_string(), name.to_string()), record.clone());
            Ok(())
        })
    }

    fn get_object(&self, kind: &str, name: &str) -> Result<Option<serde_json::Value>> {
        self.with(|s| Ok(s.objects.get(&(kind.to_string(), name.to_string())).cloned()))
    }

    fn list_objects(&self, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        self.with(|s| {
            Ok(s.objects.iter().filter(|((k, _), _)| k == kind).map(|((_, n), v)| (n.clone(), v.clone())).collect())
        })
    }

    fn delete_object(&self, kind: &str, name: &str) -> Result<bool> {
        self.with(|s| Ok(s.objects.remove(&(kind.to_string(), name.to_string())).is_some()))
    }

    fn claim_address(&self, network: &str, ip: &str, owner: &str) -> Result<()> {
        self.with(|s| {
            let key = (network.to_string(), ip.to_string());
            if s.addresses.contains_key(&key) {
                return Err(StoreError::Exists {
                    kind: format!("address in network {network:?}"),
                    name: ip.to_string(),
                });
            }
            s.addresses.insert(key, owner.to_string());
            Ok(())
        })
    }

    fn release_addresses(&self, owner: &str) -> Result<usize> {
        self.with(|s| {
            let before = s.addresses.len();
            s.addresses.retain(|_, o| o != owner);
            Ok(before - s.addresses.len())
        })
    }

    fn release_address(&self, network: &str, ip: &str) -> Result<bool> {
        self.with(|s| Ok(s.addresses.remove(&(network.to_string(), ip.to_string())).is_some()))
    }

    fn list_addresses(&self, network: Option<&str>) -> Result<Vec<AddressClaim>> {
        self.with(|s| {
            Ok(s.addresses
                .iter()
                .filter(|((n, _), _)| network.is_none_or(|want| want == n))
                .map(|((n, ip), o)| AddressClaim { network: n.clone(), ip: ip.clone(), owner: o.clone() })
                .collect())
        })
    }

    fn append(&self, log: Log, time: &str, record: &serde_json::Value) -> Result<i64> {
        self.with(|s| {
            let seq = s.log_seq.get(&log).copied().unwrap_or(0) + 1;
            s.log_seq.insert(log, seq);
            let entries = s.logs.entry(log).or_default();
            entries.push((seq, time.to_string(), record.clone()));
            Ok(seq)
        })
    }

    fn read_log(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.with(|s| {
            Ok(s.logs
                .get(&log)
                .map(|v| {
                    v.iter()
                        .filter(|(_, t, _)| since.is_none_or(|since| t.as_str() >= since))
                        .take(limit)
                        .map(|(seq, _, r)| (*seq, r.clone()))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn read_log_newest(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.with(|s| {
            Ok(s.logs
                .get(&log)
                .map(|v| {
                    v.iter()
                        .rev()
                        .filter(|(_, t, _)| since.is_none_or(|since| t.as_str() >= since))
                        .take(limit)
                        .map(|(seq, _, r)| (*seq, r.clone()))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn prune_log(&self, log: Log, keep: Option<u64>, before: Option<&str>) -> Result<u64> {
        self.with(|s| {
            let Some(entries) = s.logs.get_mut(&log) else { return Ok(0) };
            let was = entries.len();
            if let Some(before) = before {
                entries.retain(|(_, t, _)| t.as_str() >= before);
            }
            if let Some(keep) = keep {
                let excess = entries.len().saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
                entries.drain(..excess);
            }
            Ok((was - entries.len()) as u64)
        })
    }
}
