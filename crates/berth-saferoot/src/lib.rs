//! Opening paths inside an untrusted root without ever leaving it.
//!
//! A container's root filesystem and its volumes are written by the
//! container (or by whoever built its image). The daemon still has to look
//! inside them: it reads the image's `/etc/passwd` to resolve `--user`, it
//! binds a volume's `subPath` into a container, it writes ConfigMap files
//! into a volume. Resolved as host paths, a symlink planted there (`/etc/passwd
//! -> /etc/shadow`, `esc -> /`) makes the daemon read or bind the host's own
//! files. Everything here resolves relative to a directory file descriptor:
//!
//! - [`Root::open_in_root`] resolves as the container would see it
//!   (`RESOLVE_IN_ROOT`: absolute symlinks and `..` stop at the root);
//! - [`Root::open_beneath`] refuses any path that would leave the root
//!   (`RESOLVE_BENEATH`: an absolute symlink or a `..` above the root is an
//!   error), which is Kubernetes' rule for `subPath`;
//! - [`Root::read_file`] reads a regular file only (never a FIFO, socket or
//!   device, which could block or never end), up to a byte cap;
//! - [`bind_fd`] bind-mounts what a held descriptor points at, so the
//!   object checked is the object mounted, whatever is renamed meanwhile.
//!
//! `openat2(2)` does the resolution where the kernel has it (Linux 5.6+);
//! elsewhere a component-by-component walk with `O_NOFOLLOW` and readlink
//! gives the same answers, keeping a stack of directory descriptors so
//! `..` is never looked up on disk.
//!
//! This crate must never resolve an untrusted path through the host's
//! namespace, follow a magic link (`/proc/*/fd`) inside a root, or read
//! without a bound. Calls block: run them off async workers.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Symlinks followed in one resolution before giving up, as the kernel's
/// `MAXSYMLINKS`.
pub const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum SafeRootError {
    #[error("{path:?} leaves {root} (through a symlink or `..`); give a path inside it")]
    Escapes { root: PathBuf, path: String },
    #[error("{path:?} in {root} is a {kind}, not a regular file")]
    NotRegular { root: PathBuf, path: String, kind: &'static str },
    #[error("{path:?} in {root} is larger than {max} bytes")]
    TooLarge { root: PathBuf, path: String, max: u64 },
    #[error("{path:?} in {root}: too many levels of symbolic links")]
    Loop { root: PathBuf, path: String },
    #[error("{path:?} in {root}: {source}")]
    Io { root: PathBuf, path: String, source: std::io::Error },
}

impl SafeRootError {
    /// True when the path (or a component of it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SafeRootError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub type Result<T, E = SafeRootError> = std::result::Result<T, E>;

/// How a path is resolved inside a [`Root`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// As a process chrooted at the root sees it: absolute symlinks and
    /// `..` are clamped to the root.
    InRoot,
    /// Any step out of the root is an error.
    Beneath,
}

/// What kind of object a path names (its `lstat` type after resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Regular,
    Other(&'static str),
}

/// A directory whose contents are untrusted, held open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// Use the portable walk even where `openat2` exists (tests).
    walk_only: bool,
}

impl Root {
    /// Opens `path` (a trusted host path: the rootfs mount point, the
    /// volume directory) as a root.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rfs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| SafeRootError::Io { root: path.to_path_buf(), path: ".".into(), source: e.into() })?;
        Ok(Self { fd, path: path.to_path_buf(), walk_only: false })
    }

    /// The same root, always resolved by the portable walk (for tests of
    /// the fallback on a kernel that has `openat2`).
    pub fn with_walk_only(mut self) -> Self {
        self.walk_only = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An `O_PATH` descriptor of `rel`, resolved the container's way.
    pub fn open_in_root(&self, rel: &str) -> Result<OwnedFd> {
        self.resolve(rel, Resolve::InRoot)
    }

    /// An `O_PATH` descriptor of `rel`, which must not leave the root.
    pub fn open_beneath(&self, rel: &str) -> Result<OwnedFd> {
        self.resolve(rel, Resolve::Beneath)
    }

    /// Resolves `rel` to an `O_PATH` descriptor.
    pub fn resolve(&self, rel: &str, how: Resolve) -> Result<OwnedFd> {
        if !self.walk_only {
            let mut flags = ResolveFlags::NO_MAGICLINKS;
            flags |= match how {
                Resolve::InRoot => ResolveFlags::IN_ROOT,
                Resolve::Beneath => ResolveFlags::BENEATH,
            };
            let rel_path = if rel.is_empty() { "." } else { rel };
            match rfs::openat2(&self.fd, rel_path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), flags) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) | Err(Errno::PERM) if openat2_missing() => {}
                Err(Errno::XDEV) => return Err(self.escapes(rel)),
                Err(Errno::LOOP) => return Err(SafeRootError::Loop { root: self.path.clone(), path: rel.into() }),
                Err(e) => return Err(self.io(rel, e)),
            }
        }
        self.walk(rel, how)
    }

    /// The kind of object `rel` names, or `None` when it does not exist.
    pub fn kind(&self, rel: &str, how: Resolve) -> Result<Option<Kind>> {
        match self.resolve(rel, how) {
            Ok(fd) => Ok(Some(kind_of(&fd).map_err(|e| self.io(rel, e))?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the regular file `rel` (resolved the container's way) whole,
    /// refusing anything but a regular file and anything over `max` bytes.
    /// `Ok(None)` when it does not exist. A FIFO, device or socket is never
    /// opened for reading.
    pub fn read_file(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let fd = match self.open_in_root(rel) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = rfs::fstat(&fd).map_err(|e| self.io(rel, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(SafeRootError::NotRegular { root: self.path.clone(), path: rel.into(), kind: type_name(kind) });
        }
        if st.st_size as u64 > max {
            return Err(self.too_large(rel, max));
        }
        // Reopen the very inode the O_PATH descriptor holds, for reading.
        let file: File = reopen(&fd, OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC)
            .map_err(|e| self.io(rel, e))?
            .into();
        let mut buf = Vec::with_capacity(st.st_size as usize);
        // The file may grow between fstat and read: read at most max + 1.
        file.take(max + 1).read_to_end(&mut buf).map_err(|e| self.io_err(rel, e))?;
        if buf.len() as u64 > max {
            return Err(self.too_large(rel, max));
        }
        Ok(Some(buf))
    }

    /// Like [`Root::read_file`], as UTF-8 text (lossy: an image's
    /// `/etc/passwd` is not always clean).
    pub fn read_text(&self, rel: &str, max: u64) -> Result<Option<String>> {
        Ok(self.read_file(rel, max)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Creates the directory `rel` and its missing parents beneath the
    /// root (mode `mode`, before the umask), never following a symlink out.
    /// Returns an `O_PATH` descriptor of it. Idempotent.
    pub fn mkdir_all_beneath(&self, rel: &str, mode: u32) -> Result<OwnedFd> {
        let mut dir = self.dup().map_err(|e| self.io(rel, e))?;
        let mut done = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == ".." {
                return Err(self.escapes(rel));
            }
            if !done.is_empty() {
                done.push('/');
            }
            done.push_str(comp);
            match rfs::mkdirat(&dir, comp, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.io(&done, e)),
            }
            // Re-resolve what is there now beneath the root: whatever
            // someone swapped in, it may not lead out.
            let next = self.open_beneath(&done)?;
            if kind_of(&next).map_err(|e| self.io(&done, e))? != Kind::Directory {
                return Err(self.io(&done, Errno::NOTDIR));
            }
            dir = next;
        }
        Ok(dir)
    }

    fn dup(&self) -> rustix::io::Result<OwnedFd> {
        rfs::openat(&self.fd, ".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
    }

    /// The portable resolution: one component at a time, symlinks read and
    /// expanded by hand, `..` popped off a stack of held directories (the
    /// last one is where the walk stands; the first is the root).
    fn walk(&self, rel: &str, how: Resolve) -> Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = vec![self.dup().map_err(|e| self.io(rel, e))?];
        let mut pending: Vec<String> = components(rel).rev().collect();
        let mut links = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." => {}
                ".." if stack.len() > 1 => {
                    stack.pop();
                }
                ".." if how == Resolve::Beneath => return Err(self.escapes(rel)),
                ".." => {}
                name => {
                    let parent = stack.last().expect("the root is never popped");
                    let fd =
                        rfs::openat(parent, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                            .map_err(|e| self.io(rel, e))?;
                    let st = rfs::fstat(&fd).map_err(|e| self.io(rel, e))?;
                    match FileType::from_raw_mode(st.st_mode) {
                        FileType::Symlink => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(SafeRootError::Loop { root: self.path.clone(), path: rel.into() });
                            }
                            let target = rfs::readlinkat(parent, name, Vec::new()).map_err(|e| self.io(rel, e))?;
                            let target = target.to_string_lossy().into_owned();
                            if target.starts_with('/') {
                                if how == Resolve::Beneath {
                                    return Err(self.escapes(rel));
                                }
                                stack.truncate(1);
                            }
                            pending.extend(components(&target).rev());
                        }
                        FileType::Directory => stack.push(fd),
                        _ if pending.is_empty() => return Ok(fd),
                        _ => return Err(self.io(rel, Errno::NOTDIR)),
                    }
                }
            }
        }
        let here = stack.last().expect("the root is never popped");
        rfs::openat(here, ".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| self.io(rel, e))
    }

    fn escapes(&self, rel: &str) -> SafeRootError {
        SafeRootError::Escapes { root: self.path.clone(), path: rel.into() }
    }

    fn too_large(&self, rel: &str, max: u64) -> SafeRootError {
        SafeRootError::TooLarge { root: self.path.clone(), path: rel.into(), max }
    }

    fn io(&self, rel: &str, e: Errno) -> SafeRootError {
        self.io_err(rel, e.into())
    }

    fn io_err(&self, rel: &str, source: std::io::Error) -> SafeRootError {
        SafeRootError::Io { root: self.path.clone(), path: rel.into(), source }
    }
}

/// The components of a path, empty ones dropped (`a//b/` is `a`, `b`).
fn components(p: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    p.split('/').filter(|c| !c.is_empty()).map(str::to_string)
}

fn openat2_missing() -> bool {
    use std::sync::OnceLock;
    static MISSING: OnceLock<bool> = OnceLock::new();
    *MISSING.get_or_init(|| {
        matches!(
            rfs::openat2(rfs::CWD, "/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::empty()),
            Err(Errno::NOSYS) | Err(Errno::PERM)
        )
    })
}

/// The kind of what an (`O_PATH`) descriptor refers to.
pub fn kind_of(fd: &impl AsFd) -> rustix::io::Result<Kind> {
    let st = rfs::fstat(fd)?;
    Ok(match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Kind::Directory,
        FileType::RegularFile => Kind::Regular,
        other => Kind::Other(type_name(other)),
    })
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// Opens the inode an `O_PATH` descriptor holds again, with `flags`.
fn reopen(fd: &OwnedFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rfs::open(proc_fd_path(fd), flags, Mode::empty())
}

fn proc_fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Bind-mounts what `fd` refers to (a directory or a file, typically from
/// [`Root::open_beneath`]) onto `target`, which must exist and be of the
/// same kind. The mount is of the inode checked, not of a path that could
/// have been swapped since.
pub fn bind_fd(fd: &OwnedFd, target: &Path) -> std::io::Result<()> {
    rustix::mount::mount_bind(proc_fd_path(fd).as_str(), target).map_err(std::io::Error::from)
}

/// Unmounts `target` (lazily, so a busy mount still goes). Not mounted is
/// not an error.
pub fn unbind(target: &Path) -> std::io::Result<()> {
    match rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW) {
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
