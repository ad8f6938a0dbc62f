//! Overlay mounts behind a trait: [`KernelMounts`] mounts for real (root),
//! [`FakeMounts`] makes the directories and remembers what is "mounted",
//! so the services above the image store are tested without root.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::snapshot::{OverlaySpec, SnapshotError};

pub trait Mounts: Send + Sync {
    /// See [`crate::snapshot::mount_overlay`].
    fn mount_overlay(&self, spec: &OverlaySpec) -> Result<(), SnapshotError>;
    /// See [`crate::snapshot::unmount`]; idempotent.
    fn unmount(&self, target: &Path) -> Result<(), SnapshotError>;
    /// See [`crate::snapshot::is_mounted`].
    fn is_mounted(&self, target: &Path) -> io::Result<bool>;
}

/// The kernel's overlayfs.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelMounts;

impl Mounts for KernelMounts {
    fn mount_overlay(&self, spec: &OverlaySpec) -> Result<(), SnapshotError> {
        crate::snapshot::mount_overlay(spec)
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        crate::snapshot::unmount(target)
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        crate::snapshot::is_mounted(target)
    }
}

/// Makes the upper, work and target directories as a mount would and
/// records the target as mounted; the target stays an empty directory.
#[derive(Debug, Default)]
pub struct FakeMounts {
    mounted: Mutex<BTreeSet<PathBuf>>,
    fail_unmount: std::sync::atomic::AtomicBool,
}

impl FakeMounts {
    /// The next unmount fails as a busy mount does (EBUSY), changing
    /// nothing.
    pub fn fail_next_unmount(&self) {
        self.fail_unmount.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The targets mounted and not unmounted.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.mounted.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

impl Mounts for FakeMounts {
    fn mount_overlay(&self, spec: &OverlaySpec) -> Result<(), SnapshotError> {
        for path in [spec.upper, spec.work, spec.target] {
            std::fs::create_dir_all(path).map_err(|source| SnapshotError::CreateDir {
                role: "fake mount",
                path: path.to_path_buf(),
                source,
            })?;
        }
        self.mounted.lock().unwrap_or_else(|p| p.into_inner()).insert(spec.target.to_path_buf());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        if self.fail_unmount.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(SnapshotError::Unmount { target: target.to_path_buf(), source: nix::errno::Errno::EBUSY });
        }
        self.mounted.lock().unwrap_or_else(|p| p.into_inner()).remove(target);
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        Ok(self.mounted.lock().unwrap_or_else(|p| p.into_inner()).contains(target))
    }
}
