//! A [`Store`] that seals the records of chosen kinds (Secrets) before they
//! reach the inner store, so their values never lie in the database, its
//! WAL or a backup of it in the clear.
//!
//! Each sealed record is AES-256-GCM under a key kept apart from the
//! database ([`SealKey::load_or_create`]), with a fresh random nonce, and
//! bound to its kind and name (the additional data), so a sealed record
//! moved to another name does not open. What this protects: copies of the
//! state database (backups, `sqlite3 .dump`, a stray grep). What it does
//! not: someone who can read the key file too (root on the host).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine as _;
use berth_core::Digest;

use crate::{AddressClaim, ContainerRecord, ImageRecord, LayerRecord, Log, Result, Store, StoreError};

const KEY_LEN: usize = 32;
/// The field a sealed record is kept in: `{"sealed": "v1:BASE64(nonce || ciphertext || tag)"}`.
const FIELD: &str = "sealed";
const VERSION: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read or create the sealing key {path}: {source}; check that the state root is writable")]
    Io { path: String, source: std::io::Error },
    #[error("the sealing key {path} is {len} bytes, not {KEY_LEN}; restore it from backup (without it the Secrets in the store cannot be read)")]
    Length { path: String, len: usize },
    #[error("the sealing key {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    Mode { path: String, mode: u32 },
}

/// The key records are sealed with.
pub struct SealKey(LessSafeKey);

impl SealKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        SealKey(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256-GCM key")))
    }

    /// Reads the key at `path`, or makes a random one there (mode 0600,
    /// never replacing a file that appeared meanwhile).
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::Io { path: path.display().to_string(), source };
        match std::fs::read(path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SealError::Mode { path: path.display().to_string(), mode });
                }
                let key: [u8; KEY_LEN] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| SealError::Length { path: path.display().to_string(), len: bytes.len() })?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                aws_lc_rs::rand::fill(&mut key).map_err(|_| io(std::io::Error::other("no randomness")))?;
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
                f.write_all(&key).and_then(|()| f.sync_all()).map_err(io)?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn aad(kind: &str, name: &str) -> Vec<u8> {
        [kind.as_bytes(), b"\0", name.as_bytes()].concat()
    }

    /// The sealed form of a record.
    pub fn seal(&self, kind: &str, name: &str, record: &serde_json::Value) -> serde_json::Value {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system has randomness");
        let mut data = serde_json::to_vec(record).expect("JSON values serialise");
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(Self::aad(kind, name)), &mut data)
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        serde_json::json!({ FIELD: format!("{VERSION}{}", base64::engine::general_purpose::STANDARD.encode(out)) })
    }

    /// The record a sealed value holds. A record that is not sealed (kept
    /// by a berth from before sealing) is returned as it is.
    pub fn open(&self, kind: &str, name: &str, stored: serde_json::Value) -> Result<serde_json::Value> {
        let Some(text) =
            stored.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(FIELD)).and_then(|v| v.as_str())
        else {
            return Ok(stored);
        };
        let corrupt = |detail: &str| StoreError::Corrupt {
            what: "sealed record",
            detail: format!("{kind} {name}: {detail} (was the sealing key replaced?)"),
        };
        let raw = text
            .strip_prefix(VERSION)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(|| corrupt("not a sealed value"))?;
        if raw.len() < NONCE_LEN {
            return Err(corrupt("too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let mut buf = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("bad nonce"))?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(Self::aad(kind, name)), &mut buf)
            .map_err(|_| corrupt("it does not open with this key"))?;
        serde_json::from_slice(plain).map_err(|e| corrupt(&e.to_string()))
    }
}

/// Seals the object records of `kinds` on their way into `inner` and
/// opens them on their way out; everything else passes through.
pub struct SealedStore {
    inner: Arc<dyn Store>,
    key: SealKey,
    kinds: Vec<String>,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn Store>, key: SealKey, kinds: &[&str]) -> Self {
        Self { inner, key, kinds: kinds.iter().map(|k| k.to_string()).collect() }
    }

    fn sealed(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// Seals the records of the sealed kinds that an older berth stored in
    /// the clear. Idempotent; returns how many it sealed.
    pub fn seal_existing(&self) -> Result<usize> {
        let mut n = 0;
        for kind in &self.kinds {
            for (name, record) in self.inner.list_objects(kind)? {
                if record.get(FIELD).is_none() {
                    self.inner.put_object(kind, &name, &self.key.seal(kind, &name, &record))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

impl Store for SealedStore {
    fn put_images(&self, images: &[(ImageRecord, Vec<String>)]) -> Result<()> {
        self.inner.put_images(images)
    }
    fn add_repo_digest(&self, digest: &Digest, repo_digest: &str) -> Result<bool> {
        self.inner.add_repo_digest(digest, repo_digest)
    }
    fn get_image(&self, digest: &Digest) -> Result<Option<ImageRecord>> {
        self.inner.get_image(digest)
    }
    fn list_images(&self) -> Result<Vec<ImageRecord>> {
        self.inner.list_images()
    }
    fn delete_image(&self, digest: &Digest) -> Result<()> {
        self.inner.delete_image(digest)
    }
    fn list_tags(&self) -> Result<Vec<(String, Digest)>> {
        self.inner.list_tags()
    }
    fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>> {
        self.inner.resolve_tag(tag)
    }
    fn set_tag(&self, tag: &str, digest: &Digest) -> Result<()> {
        self.inner.set_tag(tag, digest)
    }
    fn remove_tag(&self, tag: &str) -> Result<bool> {
        self.inner.remove_tag(tag)
    }
    fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        self.inner.put_layer(layer)
    }
    fn get_layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        self.inner.get_layer(diff_id)
    }
    fn list_layers(&self) -> Result<Vec<LayerRecord>> {
        self.inner.list_layers()
    }
    fn delete_layer(&self, diff_id: &Digest) -> Result<()> {
        self.inner.delete_layer(diff_id)
    }
    fn put_container(&self, c: &ContainerRecord) -> Result<()> {
        self.inner.put_container(c)
    }
    fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        self.inner.get_container(id)
    }
    fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        self.inner.list_containers()
    }
    fn delete_container(&self, id: &str) -> Result<()> {
        self.inner.delete_container(id)
    }
    fn create_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        if self.sealed(kind) {
            self.inner.create_object(kind, name, &self.key.seal(kind, name, record))
        } else {
            self.inner.create_object(kind, name, record)
        }
    }
    fn put_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        if self.sealed(kind) {
            self.inner.put_object(kind, name, &self.key.seal(kind, name, record))
        } else {
            self.inner.put_object(kind, name, record)
        }
    }
    fn get_object(&self, kind: &str, name: &str) -> Result<Option<serde_json::Value>> {
        let v = self.inner.get_object(kind, name)?;
        match v {
            Some(v) if self.sealed(kind) => self.key.open(kind, name, v).map(Some),
            other => Ok(other),
        }
    }
    fn list_objects(&self, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let all = self.inner.list_objects(kind)?;
        if !self.sealed(kind) {
            return Ok(all);
        }
        all.into_iter().map(|(name, v)| self.key.open(kind, &name, v).map(|v| (name, v))).collect()
    }
    fn delete_object(&self, kind: &str, name: &str) -> Result<bool> {
        self.inner.delete_object(kind, name)
    }
    fn claim_address(&self, network: &str, ip: &str, owner: &str) -> Result<()> {
        self.inner.claim_address(network, ip, owner)
    }
    fn release_addresses(&self, owner: &str) -> Result<usize> {
        self.inner.release_addresses(owner)
    }
    fn release_address(&self, network: &str, ip: &str) -> Result<bool> {
        self.inner.release_address(network, ip)
    }
    fn list_addresses(&self, network: Option<&str>) -> Result<Vec<AddressClaim>> {
        self.inner.list_addresses(network)
    }
    fn append(&self, log: Log, time: &str, record: &serde_json::Value) -> Result<i64> {
        self.inner.append(log, time, record)
    }
    fn read_log(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.inner.read_log(log, since, limit)
    }
    fn read_log_newest(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.inner.read_log_newest(log, since, limit)
    }
    fn prune_log(&self, log: Log, keep: Option<u64>, before: Option<&str>) -> Result<u64> {
        self.inner.prune_log(log, keep, before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeStore;

    fn key(n: u8) -> SealKey {
        SealKey::from_bytes(&[n; KEY_LEN])
    }

    #[test]
    fn sealed_kinds_never_reach_the_inner_store_in_the_clear() {
        let inner = Arc::new(FakeStore::new());
        let store = SealedStore::new(inner.clone(), key(1), &["k8s/Secret"]);
        let secret = serde_json::json!({"manifest": {"stringData": {"password": "hunter2"}}});
        store.put_object("k8s/Secret", "default/db", &secret).unwrap();
        store.put_object("k8s/ConfigMap", "default/cfg", &serde_json::json!({"a": "plain"})).unwrap();
        let raw = inner.get_object("k8s/Secret", "default/db").unwrap().unwrap().to_string();
        assert!(!raw.contains("hunter2") && raw.contains("\"sealed\":\"v1:"), "{raw}");
        assert_eq!(inner.get_object("k8s/ConfigMap", "default/cfg").unwrap().unwrap()["a"], "plain");
        assert_eq!(store.get_object("k8s/Secret", "default/db").unwrap(), Some(secret.clone()));
        assert_eq!(store.list_objects("k8s/Secret").unwrap(), vec![("default/db".to_string(), secret.clone())]);
        // Two seals of one record differ (fresh nonces).
        assert_ne!(key(1).seal("k", "n", &secret), key(1).seal("k", "n", &secret));
    }

    #[test]
    fn a_record_opens_only_under_its_key_and_name() {
        let sealed = key(1).seal("k8s/Secret", "default/db", &serde_json::json!({"v": 1}));
        assert!(key(2).open("k8s/Secret", "default/db", sealed.clone()).is_err());
        let moved = key(1).open("k8s/Secret", "default/other", sealed.clone()).unwrap_err();
        assert!(moved.to_string().contains("default/other"), "{moved}");
        assert_eq!(key(1).open("k8s/Secret", "default/db", sealed).unwrap()["v"], 1);
    }

    #[test]
    fn records_of_an_older_berth_are_read_and_sealed() {
        let inner = Arc::new(FakeStore::new());
        inner.put_object("k8s/Secret", "default/db", &serde_json::json!({"x": "hunter2"})).unwrap();
        let store = SealedStore::new(inner.clone(), key(1), &["k8s/Secret"]);
        assert_eq!(store.get_object("k8s/Secret", "default/db").unwrap().unwrap()["x"], "hunter2");
        assert_eq!(store.seal_existing().unwrap(), 1);
        assert_eq!(store.seal_existing().unwrap(), 0);
        assert!(!inner.get_object("k8s/Secret", "default/db").unwrap().unwrap().to_string().contains("hunter2"));
        assert_eq!(store.get_object("k8s/Secret", "default/db").unwrap().unwrap()["x"], "hunter2");
    }

    #[test]
    fn the_key_file_is_made_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let a = SealKey::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = a.seal("k", "n", &serde_json::json!(1));
        let b = SealKey::load_or_create(&path).unwrap();
        assert_eq!(b.open("k", "n", sealed).unwrap(), serde_json::json!(1));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(SealKey::load_or_create(&path), Err(SealError::Mode { .. })));
        std::fs::write(dir.path().join("short.key"), b"abc").unwrap();
        std::fs::set_permissions(dir.path().join("short.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(SealKey::load_or_create(&dir.path().join("short.key")), Err(SealError::Length { .. })));
    }
}
