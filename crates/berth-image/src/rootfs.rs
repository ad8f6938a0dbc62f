//! Container root filesystems: an overlay of an image's unpacked layers
//! plus a private upper directory, under `<root>/snapshots/<id>/`.

use std::fs;
use std::path::{Path, PathBuf};

use berth_store::ImageRecord;

use crate::error::{io_err, ImageError, Result};
use crate::snapshot::{shift_ownership, IdShift, OverlaySpec};
use crate::store::{remove_tree, ImageStore};

/// Snapshot IDs become directory names: keep them plain.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::Invalid(format!(
            "snapshot id {id:?} must be 1 to 128 of [A-Za-z0-9_.-], not starting with '.'"
        )))
    }
}

impl ImageStore {
    fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root().join("snapshots").join(id)
    }

    /// Mounts a writable root filesystem for `id` from `image` and returns
    /// its path. Idempotent: an existing mount for `id` is returned as is,
    /// so a caller may re-run it after a crash.
    pub fn mount_rootfs(&self, image: &str, id: &str) -> Result<PathBuf> {
        self.mount_rootfs_shifted(image, id, None)
    }

    /// [`Self::mount_rootfs`] for a container in a user namespace when
    /// `shift` is given: the overlay is mounted with `metacopy=on` and, the
    /// first time, every owner is moved into the host range (metadata-only
    /// copy-ups, no file data is copied). Give the same `shift` on every
    /// mount of `id`. Idempotent: the walk is recorded as done only once it
    /// finished, and re-running it changes nothing.
    pub fn mount_rootfs_shifted(&self, image: &str, id: &str, shift: Option<IdShift>) -> Result<PathBuf> {
        check_id(id)?;
        let img = self.resolve(image)?;
        let dir = self.snapshot_dir(id);
        let target = dir.join("rootfs");
        if !self.mounts.is_mounted(&target).map_err(io_err(&target))? {
            self.mount_snapshot(&img, &dir, &target, shift.is_some())?;
        }
        if let Some(shift) = shift {
            let done = dir.join("shifted");
            let want = format!("{} {} {}\n", shift.uid, shift.gid, shift.size);
            if fs::read_to_string(&done).ok().as_deref() != Some(want.as_str()) {
                let started = std::time::Instant::now();
                let entries = shift_ownership(&target, &shift).map_err(|e| ImageError::Snapshot(e.to_string()))?;
                fs::write(&done, want).map_err(io_err(&done))?;
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(snapshot = id, entries, ms, "moved the rootfs' owners into the user namespace's range");
            }
        }
        Ok(target)
    }

    fn mount_snapshot(&self, img: &ImageRecord, dir: &Path, target: &Path, metacopy: bool) -> Result<()> {
        let mut lower = self.layer_dirs(img)?;
        if lower.is_empty() {
            // overlayfs needs one lower directory; an image may have none.
            let empty = dir.join("empty");
            fs::create_dir_all(&empty).map_err(io_err(&empty))?;
            lower.push(empty);
        }
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        let spec = OverlaySpec {
            lower: lower.iter().map(PathBuf::as_path).collect(),
            upper: &upper,
            work: &work,
            target,
            metacopy,
        };
        self.mounts.mount_overlay(&spec).map_err(|e| ImageError::Snapshot(e.to_string()))
    }

    /// Unmounts and deletes the root filesystem of `id`, including what the
    /// container wrote. Idempotent.
    pub fn remove_rootfs(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let dir = self.snapshot_dir(id);
        let target = dir.join("rootfs");
        if target.exists() {
            self.mounts.unmount(&target).map_err(|e| ImageError::Snapshot(e.to_string()))?;
        }
        remove_tree(&dir)
    }

    /// Whether a root filesystem for `id` is mounted.
    pub fn rootfs_mounted(&self, id: &str) -> bool {
        check_id(id).is_ok() && self.mounts.is_mounted(&self.snapshot_dir(id).join("rootfs")).unwrap_or(false)
    }

    pub fn rootfs_path(&self, id: &str) -> PathBuf {
        self.snapshot_dir(id).join("rootfs")
    }
}
