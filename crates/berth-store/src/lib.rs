//! Berth's persistent state.
//!
//! Design: a [`Store`] trait speaks in domain records (images, tags, unpacked
//! layers); [`SqliteStore`] keeps them in SQLite in WAL mode with
//! `synchronous=FULL` and versioned migrations, and [`FakeStore`] keeps them
//! in memory for unit tests of the crates above. Every method that changes
//! more than one row does so in one transaction, so a crash at any point
//! leaves either the old or the new state, never a mix.
//!
//! It must never hold a transaction across I/O that is not the database's
//! own, and never store blob contents: those live in the image store.

mod fake;
mod migrations;
mod records;
mod sealed;
mod sqlite;
mod typed;

pub use fake::FakeStore;
pub use records::{ContainerRecord, ImageRecord, LayerRecord, LayerRef};
pub use sealed::{SealError, SealKey, SealedStore};
pub use sqlite::SqliteStore;
pub use typed::Records;

use berth_core::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {source}; check that the state root is writable and not used by another berth daemon")]
    Open { path: String, source: rusqlite::Error },
    #[error("state database error while {context}: {source}")]
    Sqlite { context: &'static str, source: rusqlite::Error },
    #[error("state database holds a corrupt {what}: {detail}; restore the state root from backup or remove it")]
    Corrupt { what: &'static str, detail: String },
    #[error(
        "the state database has schema version {found}, newer than this berth understands ({supported}); upgrade berth"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("the state database cannot grow while {context}: the disk is full; free space under the state root")]
    DiskFull { context: &'static str },
    #[error("the name {0:?} is already in use by another container; choose another or remove that one")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A declared object or an address that someone already holds.
    #[error("{kind} {name:?} already exists")]
    Exists { kind: String, name: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The persistent records of the daemon. Implementations are safe to share
/// between threads; every call is atomic on its own.
pub trait Store: Send + Sync + 'static {
    /// Records an image and points `tags` at it, in one transaction. Tags
    /// that pointed elsewhere move. Idempotent.
    fn put_image(&self, image: &ImageRecord, tags: &[String]) -> Result<()> {
        self.put_images(&[(image.clone(), tags.to_vec())])
    }
    /// [`Store::put_image`] for several images in one transaction: all are
    /// recorded or none.
    fn put_images(&self, images: &[(ImageRecord, Vec<String>)]) -> Result<()>;
    /// Adds a `name@digest` to an existing image; returns false (and changes
    /// nothing) when the image is gone.
    fn add_repo_digest(&self, digest: &Digest, repo_digest: &str) -> Result<bool>;
    fn get_image(&self, digest: &Digest) -> Result<Option<ImageRecord>>;
    fn list_images(&self) -> Result<Vec<ImageRecord>>;
    /// Removes an image record and every tag pointing at it.
    fn delete_image(&self, digest: &Digest) -> Result<()>;

    /// All tags as `(full name:tag, manifest digest)`, sorted by name.
    fn list_tags(&self) -> Result<Vec<(String, Digest)>>;
    fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>>;
    /// Points `tag` at an existing image; fails with `NotFound` otherwise.
    fn set_tag(&self, tag: &str, digest: &Digest) -> Result<()>;
    /// Returns whether the tag existed.
    fn remove_tag(&self, tag: &str) -> Result<bool>;

    fn put_layer(&self, layer: &LayerRecord) -> Result<()>;
    fn get_layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>>;
    fn list_layers(&self) -> Result<Vec<LayerRecord>>;
    fn delete_layer(&self, diff_id: &Digest) -> Result<()>;

    /// Inserts or replaces a container; fails with `Conflict` when another
    /// container has the name.
    fn put_container(&self, c: &ContainerRecord) -> Result<()>;
    fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>>;
    fn list_containers(&self) -> Result<Vec<ContainerRecord>>;
    fn delete_container(&self, id: &str) -> Result<()>;

    /// Creates a declared object (a network, a VIP, …); `Exists` when the
    /// kind already has that name.
    fn create_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()>;
    /// Creates or replaces a declared object.
    fn put_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()>;
    fn get_object(&self, kind: &str, name: &str) -> Result<Option<serde_json::Value>>;
    /// All objects of a kind, by name.
    fn list_objects(&self, kind: &str) -> Result<Vec<(String, serde_json::Value)>>;
    /// Whether there was one to delete.
    fn delete_object(&self, kind: &str, name: &str) -> Result<bool>;

    /// Records that `owner` holds `ip` in `network`; `Exists` when anyone
    /// (the owner included) already holds it, so an address is never
    /// handed out twice.
    fn claim_address(&self, network: &str, ip: &str, owner: &str) -> Result<()>;
    /// Gives back every address `owner` holds (in any network); returns how
    /// many. Idempotent.
    fn release_addresses(&self, owner: &str) -> Result<usize>;
    /// Gives back one address; whether it was held.
    fn release_address(&self, network: &str, ip: &str) -> Result<bool>;
    /// Addresses held in `network` (all networks when `None`), by network
    /// then address text.
    fn list_addresses(&self, network: Option<&str>) -> Result<Vec<AddressClaim>>;

    /// Appends a JSON record to a log (`Log::Events` or `Log::Audit`);
    /// returns its sequence number.
    fn append(&self, log: Log, time: &str, record: &serde_json::Value) -> Result<i64>;
    /// Records with `time >= since` (all when `None`), oldest first, at most
    /// `limit`, as `(seq, record)`.
    fn read_log(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>>;
    /// Records with `time >= since` (all when `None`), newest first, at
    /// most `limit`: the latest ones, however long the log is.
    fn read_log_newest(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>>;
    /// Removes the records with `time < before` (when given) and all but
    /// the newest `keep` (when given); returns how many went. Sequence
    /// numbers are never reused. Idempotent.
    fn prune_log(&self, log: Log, keep: Option<u64>, before: Option<&str>) -> Result<u64>;
}

/// One address held in a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressClaim {
    pub network: String,
    pub ip: String,
    pub owner: String,
}

/// The append-only logs the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Log {
    Events,
    Audit,
}

impl Log {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Log::Events => "events",
            Log::Audit => "audit",
        }
    }
}

#[cfg(test)]
mod contract_tests;
