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
    /// `metacopy=on`: a change of owner or mode copies up metadata only,
    /// not data (used to shift a user-namespaced container's ownership).
    /// Once an upper directory holds metadata-only copies it must always
    /// be mounted with it again.
    pub metacopy: bool,
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
    #[error("cannot shift the owner of {path:?} for a user namespace: {source}; check that the overlay supports metacopy and the snapshot root is writable")]
    Shift { path: PathBuf, source: io::Error },
    #[error("{path:?} is nested more than {limit} directories deep; a user-namespaced container needs an image with shallower directories")]
    ShiftTooDeep { path: PathBuf, limit: usize },
}

/// Ownership moved into a user namespace's host range: container id `n`
/// (below `size`) is host id `uid + n` / `gid + n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdShift {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

impl IdShift {
    /// The host uid for an owner found in the tree. Ids below `size` move
    /// into the range; others stay, so a re-run after a crash, or a second
    /// hard link to a file already shifted, changes nothing (ranges start
    /// at or above `size`, see the daemon's `userns_range`). Ids the range
    /// cannot map show as `nobody` inside, as they would with any mapping.
    pub fn uid(&self, id: u32) -> u32 {
        shift_id(self.uid, self.size, id)
    }

    pub fn gid(&self, id: u32) -> u32 {
        shift_id(self.gid, self.size, id)
    }
}

fn shift_id(base: u32, size: u32, id: u32) -> u32 {
    match id < size {
        true => base.saturating_add(id),
        false => id,
    }
}

/// Deepest directory nesting [`shift_ownership`] walks (one descriptor per
/// level is held open).
pub const MAX_SHIFT_DEPTH: usize = 1024;

/// Changes the owner of every entry under `root` (itself included) by
/// `shift`, never following a symlink: directories are opened with
/// `O_NOFOLLOW` relative to their parent's descriptor and owners changed
/// with `fchownat(AT_SYMLINK_NOFOLLOW)`. Set-id bits, which `chown` clears,
/// are put back. Returns the number of entries seen.
///
/// Meant for a container's own overlay mounted with `metacopy=on`, before
/// it first starts (nothing else writes the tree). Idempotent (see
/// [`IdShift::uid`]): may be re-run after a crash.
pub fn shift_ownership(root: &Path, shift: &IdShift) -> Result<u64, SnapshotError> {
    use rustix::fs::{
        chmodat, chownat, fchown, fstat, openat, statat, AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid, CWD,
    };
    use std::ffi::CString;

    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let err = |path: &Path, e: rustix::io::Errno| SnapshotError::Shift { path: path.to_path_buf(), source: e.into() };
    let ids = |st: &rustix::fs::Stat| (shift.uid(st.st_uid), shift.gid(st.st_gid));
    let names = |fd: &std::os::fd::OwnedFd, path: &Path| -> Result<Vec<CString>, SnapshotError> {
        let mut out = Vec::new();
        for entry in Dir::read_from(fd).map_err(|e| err(path, e))? {
            let entry = entry.map_err(|e| err(path, e))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    };
    let top = openat(CWD, root, flags, Mode::empty()).map_err(|e| err(root, e))?;
    let (uid, gid) = ids(&fstat(&top).map_err(|e| err(root, e))?);
    fchown(&top, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|e| err(root, e))?;
    let top_names = names(&top, root)?;
    let mut seen = 1u64;
    // One frame per open directory: its descriptor, path and the names
    // still to visit.
    let mut stack = vec![(top, root.to_path_buf(), top_names)];
    while let Some((dir, dir_path, pending)) = stack.last_mut() {
        let Some(name) = pending.pop() else {
            stack.pop();
            continue;
        };
        let dir = &*dir;
        let path = dir_path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let st = statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(&path, e))?;
        seen += 1;
        let (uid, gid) = ids(&st);
        let kind = FileType::from_raw_mode(st.st_mode);
        if (uid, gid) != (st.st_uid, st.st_gid) {
            // chown also drops file capabilities (`ping`'s cap_net_raw):
            // read them first, put them back after (`l*`: the entry is a
            // regular file, and nothing else writes the tree).
            let caps = match kind {
                FileType::RegularFile => file_caps(&path).map_err(|e| err(&path, e))?,
                _ => None,
            };
            let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
            chownat(dir, name.as_c_str(), uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(&path, e))?;
            if let Some(caps) = caps {
                rustix::fs::lsetxattr(&path, FILE_CAPS, &caps, rustix::fs::XattrFlags::empty())
                    .map_err(|e| err(&path, e))?;
            }
        }
        if kind == FileType::RegularFile && st.st_mode & 0o6000 != 0 {
            // chown cleared the set-id bits. A regular file (checked without
            // following), so following is safe: nothing else writes the tree.
            let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
            chmodat(dir, name.as_c_str(), mode, AtFlags::empty()).map_err(|e| err(&path, e))?;
        }
        if kind != FileType::Directory {
            continue;
        }
        let child = openat(dir, name.as_c_str(), flags, Mode::empty()).map_err(|e| err(&path, e))?;
        let child_names = names(&child, &path)?;
        if stack.len() >= MAX_SHIFT_DEPTH {
            return Err(SnapshotError::ShiftTooDeep { path, limit: MAX_SHIFT_DEPTH });
        }
        stack.push((child, path, child_names));
    }
    Ok(seen)
}

/// The extended attribute that holds a file's capabilities.
const FILE_CAPS: &str = "security.capability";

/// The file capabilities of `path` (not followed), if it has any.
fn file_caps(path: &Path) -> Result<Option<Vec<u8>>, rustix::io::Errno> {
    // A v3 entry (with a root id) is 24 bytes; leave room.
    let mut buf = [0u8; 64];
    match rustix::fs::lgetxattr(path, FILE_CAPS, &mut buf[..]) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(e),
    }
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
    if spec.metacopy {
        out.extend_from_slice(b",metacopy=on");
    }
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

/// Tests that mount or chown (they need root) are in `tests/privileged.rs`.
#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(lower: &[&'a Path], upper: &'a Path, work: &'a Path, target: &'a Path) -> OverlaySpec<'a> {
        OverlaySpec { lower: lower.to_vec(), upper, work, target, metacopy: false }
    }

    #[test]
    fn options_list_the_top_layer_first() {
        let (l1, l2, l3) = (Path::new("/s/l/1"), Path::new("/s/l/2"), Path::new("/s/l/3"));
        let s = spec(&[l1, l2, l3], Path::new("/s/u"), Path::new("/s/w"), Path::new("/s/m"));
        let opts = overlay_options(&s).unwrap();
        assert_eq!(opts, b"lowerdir=/s/l/3:/s/l/2:/s/l/1,upperdir=/s/u,workdir=/s/w");
        let meta = OverlaySpec { metacopy: true, ..s };
        assert_eq!(
            overlay_options(&meta).unwrap(),
            b"lowerdir=/s/l/3:/s/l/2:/s/l/1,upperdir=/s/u,workdir=/s/w,metacopy=on"
        );
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

    #[test]
    fn id_shift_moves_low_ids_into_the_range_once() {
        let shift = IdShift { uid: 1_000_000_000, gid: 2_000_000_000, size: 65536 };
        assert_eq!(shift.uid(0), 1_000_000_000);
        assert_eq!(shift.gid(5), 2_000_000_005);
        assert_eq!(shift.uid(65535), 1_000_065_535);
        assert_eq!(shift.uid(65536), 65536, "unmappable ids stay");
        assert_eq!(shift.uid(shift.uid(7)), shift.uid(7), "a second pass changes nothing");
        let top = IdShift { uid: u32::MAX - 10, gid: 0, size: 65536 };
        assert_eq!(top.uid(100), u32::MAX, "never wraps");
    }
}
