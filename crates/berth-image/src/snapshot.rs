//! Container root filesystems as overlayfs mounts of unpacked layers.
//!
//! Design: each layer is unpacked once into its own directory (see
//! [`crate::unpack`]) with whiteouts already in overlayfs form, so a root is
//! one overlay mount: the layer directories as read-only lower layers plus a
//! private upper and work directory per container.
//!
//! The mount options travel as one page of text, so the paths must fit in
//! it and may not contain the characters overlayfs uses as separators.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The kernel copies at most one page of mount options; 4096 is the
/// smallest page size Linux runs with, so it holds on every host.
pub const MAX_MOUNT_OPTIONS: usize = 4096;

/// One overlay root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec<'a> {
    /// Unpacked layer directories, bottom layer first (manifest order).
    pub lower: Vec<&'a Path>,
    /// Where the container's writes land.
    pub upper: &'a Path,
    /// overlayfs scratch space; must be on the same filesystem as `upper`.
    pub work: &'a Path,
    /// The mount point.
    pub target: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("overlay on {target:?} has no lower layers; give an image without layers one empty layer directory")]
    NoLowerLayers { target: PathBuf },
    #[error("overlay path {path:?} contains {found:?}, which overlayfs mount options cannot carry; move the berth state root to a path without ',', ':', '\\\\' or newlines")]
    UnsupportedPath { path: PathBuf, found: char },
    #[error("overlay mount options for {target:?} take {len} bytes, over the kernel's limit of {limit}; move the berth state root to a shorter path or use an image with fewer layers")]
    OptionsTooLong { target: PathBuf, len: usize, limit: usize },
    #[error("cannot create overlay {role} directory {path:?}: {source}; check that the snapshot root is writable")]
    CreateDir { role: &'static str, path: PathBuf, source: io::Error },
    #[error("cannot mount overlay on {target:?}: {source}; check that the kernel has overlayfs, berth runs as root, and upper and work directories share one filesystem")]
    Mount { target: PathBuf, source: Errno },
    #[error("cannot unmount {target:?}: {source}; check whether a process still uses it (e.g. with `fuser -m`)")]
    Unmount { target: PathBuf, source: Errno },
}

/// Mounts `spec` as an overlay at `spec.target`, creating the upper, work
/// and target directories if they are missing.
///
/// Not idempotent: mounting twice stacks two overlays; call [`unmount`]
/// first when re-running after a crash.
pub fn mount_overlay(spec: &OverlaySpec) -> Result<(), SnapshotError> {
    let options = overlay_options(spec)?;
    for (role, path, mode) in
        [("upper", spec.upper, 0o755), ("work", spec.work, 0o700), ("mount point", spec.target, 0o755)]
    {
        // The upper directory's mode becomes the mode of the container's `/`.
        DirBuilder::new().recursive(true).mode(mode).create(path).map_err(|source| SnapshotError::CreateDir {
            role,
            path: path.to_path_buf(),
            source,
        })?;
    }
    mount(Some("overlay"), spec.target, Some("overlay"), MsFlags::empty(), Some(options.as_slice()))
        .map_err(|source| SnapshotError::Mount { target: spec.target.to_path_buf(), source })?;
    tracing::debug!(target = %spec.target.display(), layers = spec.lower.len(), "mounted overlay");
    Ok(())
}

/// The option string for `spec`: `lowerdir=` lists the top-most layer
/// first, the reverse of [`OverlaySpec::lower`].
pub fn overlay_options(spec: &OverlaySpec) -> Result<Vec<u8>, SnapshotError> {
    if spec.lower.is_empty() {
        return Err(SnapshotError::NoLowerLayers { target: spec.target.to_path_buf() });
    }
    let mut out = b"lowerdir=".to_vec();
    for (i, lower) in spec.lower.iter().rev().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.extend_from_slice(option_path(lower)?);
    }
    out.extend_from_slice(b",upperdir=");
    out.extend_from_slice(option_path(spec.upper)?);
    out.extend_from_slice(b",workdir=");
    out.extend_from_slice(option_path(spec.work)?);
    // The kernel needs the terminating NUL inside the page too.
    if out.len() + 1 > MAX_MOUNT_OPTIONS {
        return Err(SnapshotError::OptionsTooLong {
            target: spec.target.to_path_buf(),
            len: out.len() + 1,
            limit: MAX_MOUNT_OPTIONS,
        });
    }
    Ok(out)
}

fn option_path(path: &Path) -> Result<&[u8], SnapshotError> {
    let bytes = path.as_os_str().as_bytes();
    // ',' separates options, ':' layers, '\' escapes; a newline would
    // confuse readers of /proc/self/mountinfo.
    match bytes.iter().find(|b| matches!(b, b',' | b':' | b'\\' | b'\n' | 0)) {
        Some(&b) => Err(SnapshotError::UnsupportedPath { path: path.to_path_buf(), found: char::from(b) }),
        None => Ok(bytes),
    }
}

/// Detaches whatever is mounted at `target`.
///
/// Idempotent: a path that is not a mount point, or does not exist, is
/// already unmounted.
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(source) => Err(SnapshotError::Unmount { target: target.to_path_buf(), source }),
    }
}

/// Whether `target` is a mount point of this mount namespace.
pub fn is_mounted(target: &Path) -> io::Result<bool> {
    let target = match fs::canonicalize(target) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mountinfo = fs::read("/proc/self/mountinfo")?;
    Ok(mountinfo.split(|&b| b == b'\n').any(|line| {
        // Field 5 is the mount point, with ' ', '\t', '\n' and '\' octal-escaped.
        line.split(|&b| b == b' ')
            .nth(4)
            .is_some_and(|field| unescape_mountinfo(field) == target.as_os_str().as_bytes())
    }))
}

fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal =
            field.get(i + 1..i + 4).filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::tests::{require_root, unpack_into, Layer};
    use tempfile::TempDir;

    fn spec<'a>(lower: &[&'a Path], upper: &'a Path, work: &'a Path, target: &'a Path) -> OverlaySpec<'a> {
        OverlaySpec { lower: lower.to_vec(), upper, work, target }
    }

    #[test]
    fn options_list_the_top_layer_first() {
        let (l1, l2, l3) = (Path::new("/s/l/1"), Path::new("/s/l/2"), Path::new("/s/l/3"));
        let s = spec(&[l1, l2, l3], Path::new("/s/u"), Path::new("/s/w"), Path::new("/s/m"));
        let opts = overlay_options(&s).unwrap();
        assert_eq!(opts, b"lowerdir=/s/l/3:/s/l/2:/s/l/1,upperdir=/s/u,workdir=/s/w");
    }

    #[test]
    fn options_refuse_unsafe_paths_and_overflow() {
        let (u, w, m) = (Path::new("/u"), Path::new("/w"), Path::new("/m"));
        let err = overlay_options(&spec(&[], u, w, m)).unwrap_err();
        assert!(matches!(err, SnapshotError::NoLowerLayers { .. }), "{err:?}");
        for bad in ["/a,b", "/a:b", "/a\\b", "/a\nb"] {
            let err = overlay_options(&spec(&[Path::new(bad)], u, w, m)).unwrap_err();
            assert!(matches!(err, SnapshotError::UnsupportedPath { .. }), "{bad:?}: {err:?}");
        }
        let long = format!("/{}", "x".repeat(200));
        let many = vec![Path::new(&long); 30];
        let err = overlay_options(&spec(&many, u, w, m)).unwrap_err();
        assert!(matches!(err, SnapshotError::OptionsTooLong { limit: 4096, .. }), "{err:?}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(br"/a\040b\134c"), b"/a b\\c");
        assert_eq!(unescape_mountinfo(br"/plain\x"), br"/plain\x");
    }

    /// Unmounts on drop, so a failing test leaves no mount behind.
    struct MountGuard(PathBuf);

    impl Drop for MountGuard {
        fn drop(&mut self) {
            if let Err(e) = unmount(&self.0) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    #[test]
    fn overlay_merges_layers_with_whiteouts_and_opaque_dirs() {
        require_root();
        let root = TempDir::new().unwrap();
        let dir = |name: &str| {
            let p = root.path().join(name);
            fs::create_dir(&p).unwrap();
            p
        };
        let (l1, l2) = (dir("l1"), dir("l2"));
        let (upper, work, target) = (root.path().join("upper"), root.path().join("work"), root.path().join("merged"));

        let base = Layer::new()
            .dir("etc/", 0o755)
            .file("etc/keep", 0o644, b"kept")
            .file("etc/gone", 0o644, b"deleted above")
            .file("etc/override", 0o644, b"v1")
            .dir("data/", 0o755)
            .file("data/old", 0o644, b"hidden above")
            .finish();
        let top = Layer::new()
            .marker("etc/.wh.gone")
            .file("etc/override", 0o644, b"v2")
            .marker("data/.wh..wh..opq")
            .file("data/new", 0o644, b"new")
            .finish();
        unpack_into(&l1, &base);
        unpack_into(&l2, &top);

        mount_overlay(&spec(&[&l1, &l2], &upper, &work, &target)).unwrap();
        let guard = MountGuard(target.clone());
        assert!(is_mounted(&target).unwrap());

        assert_eq!(fs::read(target.join("etc/keep")).unwrap(), b"kept");
        assert_eq!(fs::read(target.join("etc/override")).unwrap(), b"v2");
        assert!(fs::symlink_metadata(target.join("etc/gone")).is_err(), "whiteout ignored");
        let mut data: Vec<_> = fs::read_dir(target.join("data")).unwrap().map(|e| e.unwrap().file_name()).collect();
        data.sort();
        assert_eq!(data, ["new"], "opaque directory shows lower content");

        fs::write(target.join("etc/written"), b"mine").unwrap();
        assert_eq!(fs::read(upper.join("etc/written")).unwrap(), b"mine");
        assert!(!l1.join("etc/written").exists() && !l2.join("etc/written").exists());

        unmount(&target).unwrap();
        assert!(!is_mounted(&target).unwrap());
        assert!(!target.join("etc").exists());
        drop(guard);
    }

    #[test]
    fn unmount_is_idempotent() {
        require_root();
        let root = TempDir::new().unwrap();
        unmount(root.path()).unwrap();
        unmount(&root.path().join("missing")).unwrap();
    }
}
