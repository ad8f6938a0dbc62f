//! Mounts behind a trait: overlay snapshots for containers' root
//! filesystems and tmpfs for pods' in-memory volumes. [`KernelMounts`]
//! mounts for real (root), [`FakeMounts`] makes the directories and
//! remembers what is "mounted", so the services above are tested without
//! root.

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
    /// A tmpfs named `source` at `target`, `nosuid,nodev`, with `options`
    /// (`mode=0700`, `size=...`).
    fn mount_tmpfs(&self, target: &Path, source: &str, options: &str) -> io::Result<()>;
    /// Mount points at or below `path`, deepest first.
    fn mounts_under(&self, path: &Path) -> Vec<PathBuf>;
    /// Detaches every mount at or below `path`, deepest first (lazily: a
    /// process still using one keeps its view until it lets go). Tries
    /// them all; returns those that failed.
    fn detach_under(&self, path: &Path) -> Vec<(PathBuf, io::Error)>;
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

    fn mount_tmpfs(&self, target: &Path, source: &str, options: &str) -> io::Result<()> {
        use nix::mount::{mount, MsFlags};
        mount(Some(source), target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(options))
            .map_err(io::Error::from)
    }

    fn mounts_under(&self, path: &Path) -> Vec<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut out: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(PathBuf::from)
            .filter(|m| m.starts_with(path))
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        out
    }

    fn detach_under(&self, path: &Path) -> Vec<(PathBuf, io::Error)> {
        self.mounts_under(path)
            .into_iter()
            .filter_map(|m| {
                nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH).err().map(|e| (m, io::Error::from(e)))
            })
            .collect()
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

    fn mount_tmpfs(&self, target: &Path, _source: &str, _options: &str) -> io::Result<()> {
        if !target.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        self.mounted.lock().unwrap_or_else(|p| p.into_inner()).insert(target.to_path_buf());
        Ok(())
    }

    fn mounts_under(&self, path: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|m| m.starts_with(path))
            .cloned()
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        out
    }

    fn detach_under(&self, path: &Path) -> Vec<(PathBuf, io::Error)> {
        self.mounted.lock().unwrap_or_else(|p| p.into_inner()).retain(|m| !m.starts_with(path));
        Vec::new()
    }
}
