//! The records the store keeps.

use berth_core::Digest;
use serde::{Deserialize, Serialize};

/// One stored image: a platform manifest and what it points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the platform manifest (the record's key).
    pub digest: Digest,
    pub media_type: String,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub config_size: u64,
    /// Digest of the index the manifest was chosen from, when there was one.
    pub index_digest: Option<Digest>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// The image's own creation time (from its config), RFC 3339.
    pub created: Option<String>,
    /// `pull`, `import` …
    pub source: String,
    /// `registry/repo@digest` names this image is known by.
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRef>,
    /// When berth stored it, RFC 3339.
    pub added_at: String,
}

/// A layer as an image's manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A layer unpacked on disk, keyed by its uncompressed digest so that two
/// images sharing a layer share its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// Bytes of regular files in the layer.
    pub unpacked_size: u64,
    pub entries: u64,
    pub unpacked_at: String,
}

impl ImageRecord {
    /// Bytes stored for this image: manifest, config and layer blobs.
    pub fn compressed_size(&self) -> u64 {
        self.manifest_size + self.config_size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A container as the daemon keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The manifest digest of the image it was created from.
    pub image_digest: Digest,
    /// What the user asked for (with what the daemon chose for it: the
    /// pids limit, the user namespace range). A stored request that no
    /// longer decodes is an error naming the container, never a default.
    pub request: berth_core::api::ContainerCreateRequest,
    /// Stored as `created`, `running`, `exited` or `restarting`.
    pub state: berth_core::container::ContainerState,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub pid: Option<i32>,
    pub shim_pid: Option<i32>,
    /// With `shim_pid`, who the shim is: its start time (clock ticks after
    /// boot) and the boot it started in, so a later process with its PID
    /// is never taken for it. Absent in records of older berths (the PID
    /// is then checked against the shim's command line).
    #[serde(default)]
    pub shim_start_time: Option<u64>,
    #[serde(default)]
    pub shim_boot_id: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub oom_killed: bool,
    /// Why the last start failed, if it did.
    pub error: Option<String>,
    pub restart_count: u32,
    /// Set by stop/kill so restart policies leave it alone.
    pub stopped_by_user: bool,
    /// The current restart backoff in milliseconds, when one is pending.
    pub backoff_ms: Option<u64>,
    /// Where it is attached while it runs (addresses, published ports).
    #[serde(default)]
    pub network: berth_core::api::ContainerNetwork,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_record_of_an_older_berth_loads_without_a_shim_identity() {
        let old = serde_json::json!({
            "id": "aaaa", "name": "web", "image": "app:1",
            "image_digest": format!("sha256:{}", "1".repeat(64)),
            "request": {"image": "app:1"}, "state": "running", "created_at": "t",
            "started_at": "t", "finished_at": null, "pid": 10, "shim_pid": 9,
            "exit_code": null, "exit_signal": null, "oom_killed": false, "error": null,
            "restart_count": 0, "stopped_by_user": false, "backoff_ms": null
        });
        let c: ContainerRecord = serde_json::from_value(old).unwrap();
        assert_eq!((c.shim_pid, c.shim_start_time, c.shim_boot_id), (Some(9), None, None));
    }
}
