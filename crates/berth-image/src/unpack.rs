//! Unpacking one OCI layer blob into its own directory.
//!
//! Design: the blob is decompressed and hashed in one pass (the diff_id is
//! the sha256 of everything the decompressor yields), and each tar entry is
//! created by hand rather than by `tar`'s own unpacker, so that every rule
//! below is ours and visible: names go through `berth_core::layerpath`,
//! every parent inside the layer directory must be a real directory (never a
//! symlink), links may not lead out, device nodes are refused unless asked
//! for, and whiteouts become overlayfs whiteouts (a 0:0 char device, or the
//! `trusted.overlay.opaque` xattr).
//!
//! Contract: on any error the destination is left empty, so a caller can
//! retry or delete it without looking inside.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_core::layerpath::{self, EntryKind, PathError};
use berth_core::{Compression, Digest};
use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::tarstream::{Entry, FrameError, HeaderLimits, TarReader};

/// The xattr overlayfs reads to hide a lower directory's contents.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Room allowed per entry for headers, PAX records and padding when capping
/// the whole uncompressed stream (see [`UnpackLimits::stream_limit`]).
const STREAM_OVERHEAD_PER_ENTRY: u64 = 8 * 1024;
/// Room for trailing end-of-archive blocks and record padding.
const STREAM_SLACK: u64 = 1024 * 1024;

/// Limits that keep a hostile layer from filling the disk or the inode table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes of regular-file content one layer may hold.
    pub max_bytes: u64,
    /// Most tar entries one layer may hold.
    pub max_entries: u64,
    /// Whether char and block device nodes may be created (whiteouts are
    /// always allowed; they are not devices to the container).
    pub allow_devices: bool,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self { max_bytes: 8 * 1024 * 1024 * 1024, max_entries: 1_000_000, allow_devices: false }
    }
}

impl UnpackLimits {
    /// Most bytes the uncompressed tar stream may have in total. Headers,
    /// long names and PAX records are not file content, so they get their own
    /// allowance; without a cap, a stream of endless zero blocks after the
    /// archive's end would be read forever.
    pub fn stream_limit(&self) -> u64 {
        self.max_bytes
            .saturating_add(self.max_entries.saturating_mul(STREAM_OVERHEAD_PER_ENTRY))
            .saturating_add(STREAM_SLACK)
    }
}

/// What one successful unpack produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the whole uncompressed tar stream.
    pub diff_id: Digest,
    /// Sum of the sizes of the regular files written.
    pub bytes: u64,
    /// Number of tar entries read (including the root and whiteouts).
    pub entries: u64,
}

/// Which limit a layer went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Regular-file content ([`UnpackLimits::max_bytes`]).
    Bytes,
    /// Entry count ([`UnpackLimits::max_entries`]).
    Entries,
    /// The whole uncompressed stream ([`UnpackLimits::stream_limit`]).
    Stream,
}

impl LimitKind {
    /// The daemon configuration key that raises this limit.
    pub fn config_key(self) -> &'static str {
        match self {
            LimitKind::Bytes | LimitKind::Stream => "max_layer_bytes",
            LimitKind::Entries => "max_layer_entries",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            LimitKind::Bytes => "bytes of file content",
            LimitKind::Entries => "entries",
            LimitKind::Stream => "bytes of uncompressed tar stream",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot unpack into {path:?}: {reason}; pass an existing, empty directory")]
    BadDestination { path: PathBuf, reason: String },
    #[error("cannot read the layer stream {position}: {source}; the blob is truncated or corrupt, or its media type names the wrong compression — remove it and pull the image again")]
    Read { position: String, source: io::Error },
    #[error("layer entry refused: {source}; the layer is malformed or hostile — do not use this image")]
    UnsafePath { source: PathError },
    #[error("{source}; the layer is malformed or hostile — do not use this image")]
    Header { source: FrameError },
    #[error("layer entry {entry:?} has a name that is not valid UTF-8; berth only unpacks UTF-8 names — rebuild the image with UTF-8 file names")]
    NonUtf8Name { entry: String },
    #[error("layer entry {entry:?} would be written through symlink {symlink:?}; berth never follows a layer's symlinks on the host — the layer is malformed or hostile, do not use this image")]
    ThroughSymlink { entry: String, symlink: PathBuf },
    #[error(
        "layer entry {entry:?} needs {parent:?} to be a directory, but the layer made it a {found}; rebuild the layer"
    )]
    ParentNotDirectory { entry: String, parent: PathBuf, found: &'static str },
    #[error("symlink entry {entry:?} -> {target:?} climbs out of the image root; use an absolute target or one that stays inside the image")]
    EscapingSymlink { entry: String, target: String },
    #[error("hardlink entry {entry:?} -> {target:?} refused: {reason}; a hardlink must name a file that appears earlier in the same layer")]
    BadHardlink { entry: String, target: String, reason: String },
    #[error("layer entry {entry:?} is a {kind} device node, and device nodes in layers are refused; provide devices through the container's configuration instead, or for trusted images set `allow_device_nodes` in the daemon configuration")]
    DeviceNotAllowed { entry: String, kind: &'static str },
    #[error("layer entry {entry:?} has tar type {kind}, which berth does not unpack; rebuild the layer with files, directories, links and FIFOs only")]
    UnsupportedEntry { entry: String, kind: String },
    #[error("layer entry {entry:?} has an invalid {field} in its tar header: {detail}; the layer is corrupt — pull the image again or rebuild it")]
    BadHeader { entry: String, field: &'static str, detail: String },
    #[error("layer is over the limit of {limit} {unit}, refused as a possible archive bomb; if the image is trusted, raise `{key}` in the daemon configuration", unit = .kind.unit(), key = .kind.config_key())]
    LayerTooLarge { limit: u64, kind: LimitKind },
    #[error("cannot {op} {path:?} for layer entry {entry:?}: {source}; check that the image store's filesystem is writable, has space and supports xattrs, and that berth runs as root")]
    Io { entry: String, op: &'static str, path: PathBuf, source: io::Error },
    #[error("{cause}; removing the partial layer also failed at {path:?}: {source} — remove the contents of that directory by hand")]
    Cleanup { cause: Box<UnpackError>, path: PathBuf, source: io::Error },
}

impl From<FrameError> for UnpackError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Read { position, source } => UnpackError::Read { position, source },
            other => UnpackError::Header { source: other },
        }
    }
}

/// Wraps a compressed layer stream in the matching decompressor.
pub fn decompressor<'a, R: Read + 'a>(r: R, c: Compression) -> Box<dyn Read + 'a> {
    match c {
        Compression::None => Box::new(r),
        // Multi-member: some tools write a gzip layer as several members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => Box::new(d),
            // Only fails to allocate a context; report it on first read.
            Err(e) => Box::new(FailedReader(Some(e))),
        },
    }
}

struct FailedReader(Option<io::Error>);

impl Read for FailedReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| io::Error::other("decompressor unavailable")))
    }
}

/// Unpacks a compressed layer blob into `dest` (an existing, empty
/// directory), computing the layer's diff_id over the whole uncompressed
/// stream as it goes.
///
/// On any error `dest` is left empty (its contents removed; `dest` itself
/// belongs to the caller).
pub fn unpack_layer<R: Read>(
    blob: R,
    compression: Compression,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    check_destination(dest)?;
    let mut tap = Tap { hasher: Sha256::new(), read: 0, limit: limits.stream_limit(), over: false };
    let mut unpacker = Unpacker::new(dest, limits);
    let reader = TapReader { inner: decompressor(blob, compression), tap: &mut tap };
    let result = unpacker.run(reader).map(|()| (unpacker.bytes, unpacker.entries));
    let cause = match result {
        Ok((bytes, entries)) => {
            let diff_id = Digest::from_hasher(tap.hasher);
            tracing::debug!(dest = %dest.display(), %diff_id, bytes, entries, "unpacked layer");
            return Ok(UnpackStats { diff_id, bytes, entries });
        }
        // Whatever the tar reader made of our refusal, the cause is the cap.
        Err(_) if tap.over => UnpackError::LayerTooLarge { limit: tap.limit, kind: LimitKind::Stream },
        Err(e) => e,
    };
    match empty_layer_dir(dest, unpacker.marked_root) {
        Ok(()) => Err(cause),
        Err((path, source)) => Err(UnpackError::Cleanup { cause: Box::new(cause), path, source }),
    }
}

fn check_destination(dest: &Path) -> Result<(), UnpackError> {
    let bad = |reason: String| UnpackError::BadDestination { path: dest.to_path_buf(), reason };
    let meta = fs::symlink_metadata(dest).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad(format!("it is a {}, not a directory", describe(meta.file_type()))));
    }
    let mut items = fs::read_dir(dest).map_err(|e| bad(e.to_string()))?;
    if items.next().is_some() {
        return Err(bad("it is not empty".to_string()));
    }
    Ok(())
}

/// Removes everything an unpack left in `dest`, and the opaque marker on
/// `dest` itself if the unpack set one.
fn empty_layer_dir(dest: &Path, marked_root: bool) -> Result<(), (PathBuf, io::Error)> {
    let cleared = clear_dir(dest);
    let unmarked =
        if marked_root { xattr::remove(dest, OPAQUE_XATTR).map_err(|e| (dest.to_path_buf(), e)) } else { Ok(()) };
    cleared.and(unmarked)
}

/// Removes everything inside `dir`, never following symlinks, and leaves
/// `dir` itself. Keeps going past failures and reports the first.
fn clear_dir(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    let items = fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let mut first = None;
    for item in items {
        let result = match item {
            Ok(item) => remove_tree(&item.path()),
            Err(e) => Err((dir.to_path_buf(), e)),
        };
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Removes `path` whatever it is; a directory with all it holds.
fn remove_tree(path: &Path) -> Result<(), (PathBuf, io::Error)> {
    let meta = fs::symlink_metadata(path).map_err(|e| (path.to_path_buf(), e))?;
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| (path.to_path_buf(), e));
    }
    // A layer may have made the directory read-only; root does not care,
    // anyone else needs write permission to empty it.
    if meta.permissions().mode() & 0o700 != 0o700 {
        let _ = fs::set_permissions(path, Permissions::from_mode(0o700));
    }
    let cleared = clear_dir(path);
    let removed = fs::remove_dir(path).map_err(|e| (path.to_path_buf(), e));
    cleared.and(removed)
}

fn describe(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "regular file"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "char device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Hashes and counts what the decompressor yields, and refuses to yield
/// past the stream cap.
struct Tap {
    hasher: Sha256,
    read: u64,
    limit: u64,
    over: bool,
}

struct TapReader<'t, R> {
    inner: R,
    tap: &'t mut Tap,
}

impl<R: Read> Read for TapReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tap.read += n as u64;
        if self.tap.read > self.tap.limit {
            self.tap.over = true;
            return Err(io::Error::other("uncompressed layer stream is over its size limit"));
        }
        self.tap.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Header fields applied to what an entry creates.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Why a path inside the layer directory cannot be used.
enum ParentIssue {
    Symlink(PathBuf),
    NotDir(PathBuf, &'static str),
    Missing(PathBuf),
    Io(PathBuf, io::Error),
}

struct Unpacker<'a> {
    dest: &'a Path,
    limits: &'a UnpackLimits,
    bytes: u64,
    entries: u64,
    /// Directory mtimes, applied last: creating children changes them.
    dir_times: Vec<(PathBuf, i64)>,
    buf: Vec<u8>,
    /// Xattr names already warned about, so a layer full of them logs once.
    warned_xattrs: HashSet<String>,
    /// Whether an opaque marker was set on `dest` itself.
    marked_root: bool,
}

impl<'a> Unpacker<'a> {
    fn new(dest: &'a Path, limits: &'a UnpackLimits) -> Self {
        Self {
            dest,
            limits,
            bytes: 0,
            entries: 0,
            dir_times: Vec::new(),
            buf: vec![0; 128 * 1024],
            warned_xattrs: HashSet::new(),
            marked_root: false,
        }
    }

    fn run<R: Read>(&mut self, reader: R) -> Result<(), UnpackError> {
        let mut archive = TarReader::new(reader, HeaderLimits::DEFAULT);
        while let Some(mut entry) = archive.next_entry().map_err(UnpackError::from)? {
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(UnpackError::LayerTooLarge { limit: self.limits.max_entries, kind: LimitKind::Entries });
            }
            let name = String::from_utf8_lossy(entry.path_bytes()).into_owned();
            self.entry(&mut entry, &name)?;
        }
        // The diff_id covers the whole stream, end-of-archive blocks and
        // record padding included.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink())
            .map_err(|source| UnpackError::Read { position: "after the end of the archive".into(), source })?;
        self.apply_dir_times()
    }

    fn entry<R: Read>(&mut self, entry: &mut Entry<'_, R>, name: &str) -> Result<(), UnpackError> {
        if entry.header().entry_type() == EntryType::XGlobalHeader {
            return Ok(()); // archive-wide PAX defaults; nothing berth applies
        }
        if std::str::from_utf8(entry.path_bytes()).is_err() {
            return Err(UnpackError::NonUtf8Name { entry: name.to_string() });
        }
        match layerpath::classify(name).map_err(|source| UnpackError::UnsafePath { source })? {
            None => Ok(()), // the root: its metadata is the snapshot's business
            Some(EntryKind::Whiteout(path)) => self.whiteout(name, &path),
            Some(EntryKind::Opaque(path)) => self.opaque(name, &path),
            Some(EntryKind::Normal(path)) => self.normal(entry, name, &path),
        }
    }

    fn normal<R: Read>(&mut self, entry: &mut Entry<'_, R>, name: &str, path: &Path) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        let meta = read_meta(entry, name)?;
        let full = self.dest.join(path);
        match kind {
            EntryType::Directory => {
                self.prepare_parents(name, path)?;
                if !self.clear_slot(name, &full, true)? {
                    let made = DirBuilder::new().mode(0o700).create(&full);
                    made.map_err(io_err(name, "create directory", &full))?;
                }
                self.apply_meta(name, &full, &meta, true)?;
                self.dir_times.push((path.to_path_buf(), meta.mtime));
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.charge_bytes(entry.size())?;
                self.prepare_parents(name, path)?;
                self.clear_slot(name, &full, false)?;
                self.write_file(entry, name, &full)?;
                self.apply_meta(name, &full, &meta, true)?;
                self.set_mtime(name, &full, meta.mtime)
            }
            EntryType::Symlink => {
                let target = link_name(entry, name)?;
                let target_str = String::from_utf8_lossy(&target).into_owned();
                if layerpath::symlink_escapes(path, &target_str) {
                    return Err(UnpackError::EscapingSymlink { entry: name.to_string(), target: target_str });
                }
                self.prepare_parents(name, path)?;
                self.clear_slot(name, &full, false)?;
                let made = std::os::unix::fs::symlink(OsStr::from_bytes(&target), &full);
                made.map_err(io_err(name, "create symlink", &full))?;
                // chmod would follow the link; a symlink's mode means nothing.
                self.apply_meta(name, &full, &meta, false)?;
                self.set_mtime(name, &full, meta.mtime)
            }
            EntryType::Link => self.hardlink(entry, name, path, &full),
            EntryType::Char | EntryType::Block => {
                let (flag, label) =
                    if kind == EntryType::Char { (SFlag::S_IFCHR, "char") } else { (SFlag::S_IFBLK, "block") };
                if !self.limits.allow_devices {
                    return Err(UnpackError::DeviceNotAllowed { entry: name.to_string(), kind: label });
                }
                let header = entry.header();
                let major = device_number(header.device_major(), name, "device major")?;
                let minor = device_number(header.device_minor(), name, "device minor")?;
                self.prepare_parents(name, path)?;
                self.clear_slot(name, &full, false)?;
                let made = mknod(&full, flag, Mode::from_bits_truncate(0o600), makedev(major.into(), minor.into()));
                made.map_err(|e| io_err(name, "create device node", &full)(e.into()))?;
                self.apply_meta(name, &full, &meta, true)?;
                self.set_mtime(name, &full, meta.mtime)
            }
            EntryType::Fifo => {
                self.prepare_parents(name, path)?;
                self.clear_slot(name, &full, false)?;
                let made = nix::unistd::mkfifo(&full, Mode::from_bits_truncate(0o600));
                made.map_err(|e| io_err(name, "create FIFO", &full)(e.into()))?;
                self.apply_meta(name, &full, &meta, true)?;
                self.set_mtime(name, &full, meta.mtime)
            }
            other => Err(UnpackError::UnsupportedEntry {
                entry: name.to_string(),
                kind: format!("{:?}", other.as_byte() as char),
            }),
        }
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &Entry<'_, R>,
        name: &str,
        path: &Path,
        full: &Path,
    ) -> Result<(), UnpackError> {
        let raw = link_name(entry, name)?;
        let target_str = String::from_utf8_lossy(&raw).into_owned();
        let bad =
            |reason: String| UnpackError::BadHardlink { entry: name.to_string(), target: target_str.clone(), reason };
        let Ok(target_utf8) = std::str::from_utf8(&raw) else {
            return Err(bad("the target name is not valid UTF-8".into()));
        };
        let target = layerpath::hardlink_target(target_utf8).map_err(|e| bad(e.to_string()))?;
        if target == path {
            return Ok(()); // a link to itself changes nothing
        }
        match self.walk_parents(&target, false) {
            Ok(()) => {}
            Err(ParentIssue::Symlink(link)) => {
                return Err(bad(format!("the target is reached through symlink {link:?}")))
            }
            Err(ParentIssue::NotDir(p, found)) => {
                return Err(bad(format!("{p:?} on the way to the target is a {found}")))
            }
            Err(ParentIssue::Missing(_)) => return Err(bad("the target does not exist in this layer".into())),
            Err(ParentIssue::Io(p, e)) => return Err(io_err(name, "inspect", &p)(e)),
        }
        let target_full = self.dest.join(&target);
        match fs::symlink_metadata(&target_full) {
            Ok(m) if m.is_dir() => return Err(bad("the target is a directory".into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(bad("the target does not exist in this layer".into()))
            }
            Err(e) => return Err(io_err(name, "inspect", &target_full)(e)),
        }
        self.prepare_parents(name, path)?;
        self.clear_slot(name, full, false)?;
        // linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the
        // symlink itself. The target keeps its own metadata.
        fs::hard_link(&target_full, full).map_err(io_err(name, "create hardlink", full))
    }

    fn whiteout(&mut self, name: &str, path: &Path) -> Result<(), UnpackError> {
        self.prepare_parents(name, path)?;
        let full = self.dest.join(path);
        self.clear_slot(name, &full, false)?;
        let made = mknod(&full, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0));
        made.map_err(|e| io_err(name, "create whiteout device", &full)(e.into()))
    }

    fn opaque(&mut self, name: &str, dir: &Path) -> Result<(), UnpackError> {
        let full = self.dest.join(dir);
        if !dir.as_os_str().is_empty() {
            // Check `dir` itself like a parent: xattrs must not land on a
            // symlink's target.
            self.prepare_parents(name, &dir.join(layerpath::OPAQUE_MARKER))?;
        }
        xattr::set(&full, OPAQUE_XATTR, b"y").map_err(io_err(name, "set trusted.overlay.opaque on", &full))?;
        self.marked_root |= dir.as_os_str().is_empty();
        Ok(())
    }

    /// Makes sure every parent of `rel` is a real directory, creating missing
    /// ones (0755).
    fn prepare_parents(&self, name: &str, rel: &Path) -> Result<(), UnpackError> {
        match self.walk_parents(rel, true) {
            Ok(()) => Ok(()),
            Err(ParentIssue::Symlink(symlink)) => Err(UnpackError::ThroughSymlink { entry: name.to_string(), symlink }),
            Err(ParentIssue::NotDir(parent, found)) => {
                Err(UnpackError::ParentNotDirectory { entry: name.to_string(), parent, found })
            }
            // Not reported when creating; kept for exhaustiveness.
            Err(ParentIssue::Missing(p)) => {
                Err(io_err(name, "find", &self.dest.join(p))(io::ErrorKind::NotFound.into()))
            }
            Err(ParentIssue::Io(p, e)) => Err(io_err(name, "prepare parent directory", &p)(e)),
        }
    }

    /// Walks the parents of `rel` from the top without following anything.
    /// Missing ones are created when `create`, else reported.
    fn walk_parents(&self, rel: &Path, create: bool) -> Result<(), ParentIssue> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut cur = PathBuf::new();
        for part in parent.components() {
            cur.push(part);
            let full = self.dest.join(&cur);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => return Err(ParentIssue::Symlink(cur)),
                Ok(m) => return Err(ParentIssue::NotDir(cur, describe(m.file_type()))),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&full)
                        .and_then(|()| fs::set_permissions(&full, Permissions::from_mode(0o755)))
                        .map_err(|e| ParentIssue::Io(full, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ParentIssue::Missing(cur)),
                Err(e) => return Err(ParentIssue::Io(full, e)),
            }
        }
        Ok(())
    }

    /// Frees `full` for a new entry. An existing directory is kept when the
    /// new entry is one too (returns true); anything else is removed.
    fn clear_slot(&self, name: &str, full: &Path, keep_dir: bool) -> Result<bool, UnpackError> {
        match fs::symlink_metadata(full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(name, "inspect", full)(e)),
            Ok(m) if m.is_dir() && keep_dir => Ok(true),
            Ok(_) => match remove_tree(full) {
                Ok(()) => Ok(false),
                Err((path, source)) => Err(io_err(name, "remove earlier entry", &path)(source)),
            },
        }
    }

    fn charge_bytes(&self, more: u64) -> Result<(), UnpackError> {
        if self.bytes.saturating_add(more) > self.limits.max_bytes {
            return Err(UnpackError::LayerTooLarge { limit: self.limits.max_bytes, kind: LimitKind::Bytes });
        }
        Ok(())
    }

    fn write_file<R: Read>(&mut self, entry: &mut Entry<'_, R>, name: &str, full: &Path) -> Result<(), UnpackError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(full)
            .map_err(io_err(name, "create file", full))?;
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(UnpackError::Read { position: format!("in entry {name:?}"), source }),
            };
            written += n as u64;
            self.charge_bytes(written)?;
            file.write_all(&self.buf[..n]).map_err(io_err(name, "write", full))?;
        }
        self.bytes += written;
        Ok(())
    }

    /// Owner, then mode (chown clears setuid bits), then xattrs (chown
    /// clears file capabilities).
    fn apply_meta(&mut self, name: &str, full: &Path, meta: &Meta, chmod: bool) -> Result<(), UnpackError> {
        std::os::unix::fs::lchown(full, Some(meta.uid), Some(meta.gid)).map_err(io_err(
            name,
            "change owner of",
            full,
        ))?;
        if chmod {
            fs::set_permissions(full, Permissions::from_mode(meta.mode)).map_err(io_err(name, "set mode of", full))?;
        }
        for (key, value) in &meta.xattrs {
            if key == "security.selinux" {
                continue; // labels belong to the host's policy, not the image
            }
            if key.starts_with("trusted.overlay.") || key.starts_with("user.overlay.") {
                // Only whiteout entries may steer overlayfs.
                self.warn_once(name, key, "skipping overlayfs xattr carried by a layer entry");
                continue;
            }
            // xattr::set uses lsetxattr: never follows a symlink.
            if let Err(e) = xattr::set(full, key, value) {
                let why = format!("cannot set xattr from layer, skipping it: {e}");
                self.warn_once(name, key, &why);
            }
        }
        Ok(())
    }

    /// Logs a skipped xattr once per name, so a layer full of them does not
    /// flood the log.
    fn warn_once(&mut self, entry: &str, xattr: &str, why: &str) {
        if self.warned_xattrs.insert(xattr.to_string()) {
            tracing::warn!(%entry, %xattr, "{why} (further entries with this xattr are not logged)");
        }
    }

    fn set_mtime(&self, name: &str, full: &Path, mtime: i64) -> Result<(), UnpackError> {
        let t = TimeSpec::new(mtime, 0);
        utimensat(AT_FDCWD, full, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| io_err(name, "set modification time of", full)(e.into()))
    }

    fn apply_dir_times(&mut self) -> Result<(), UnpackError> {
        for (rel, mtime) in std::mem::take(&mut self.dir_times) {
            // A later entry may have replaced the directory or a parent of
            // it; never follow what took its place.
            if self.walk_parents(&rel, false).is_err() {
                continue;
            }
            let full = self.dest.join(&rel);
            if fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                self.set_mtime(&rel.to_string_lossy(), &full, mtime)?;
            }
        }
        Ok(())
    }
}

fn io_err<'p>(entry: &str, op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> UnpackError + 'p {
    let entry = entry.to_string();
    move |source| UnpackError::Io { entry, op, path: path.to_path_buf(), source }
}

fn read_meta<R: Read>(entry: &mut Entry<'_, R>, name: &str) -> Result<Meta, UnpackError> {
    // tar's messages quote the raw header name, which may hold newlines.
    let bad = |field: &'static str, detail: String| UnpackError::BadHeader {
        entry: name.to_string(),
        field,
        detail: detail.chars().map(|c| if c.is_control() { ' ' } else { c }).collect(),
    };
    let header = entry.header();
    let mode = header.mode().map_err(|e| bad("mode", e.to_string()))? & 0o7777;
    let uid = header.uid().map_err(|e| bad("uid", e.to_string()))?;
    let uid = u32::try_from(uid).map_err(|_| bad("uid", format!("{uid} is out of range")))?;
    let gid = header.gid().map_err(|e| bad("gid", e.to_string()))?;
    let gid = u32::try_from(gid).map_err(|_| bad("gid", format!("{gid} is out of range")))?;
    let mtime = header.mtime().map_err(|e| bad("mtime", e.to_string()))?;
    let mtime = i64::try_from(mtime).map_err(|_| bad("mtime", format!("{mtime} is out of range")))?;
    let mut xattrs = Vec::new();
    for (key, value) in entry.pax_records() {
        let key = std::str::from_utf8(key).ok().and_then(|k| k.strip_prefix("SCHILY.xattr."));
        if let Some(key) = key {
            xattrs.push((key.to_string(), value.to_vec()));
        }
    }
    Ok(Meta { mode, uid, gid, mtime, xattrs })
}

fn link_name<R: Read>(entry: &Entry<'_, R>, name: &str) -> Result<Vec<u8>, UnpackError> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => Ok(target.to_vec()),
        _ => {
            Err(UnpackError::BadHeader { entry: name.to_string(), field: "link target", detail: "it is empty".into() })
        }
    }
}

fn device_number(n: io::Result<Option<u32>>, name: &str, field: &'static str) -> Result<u32, UnpackError> {
    let bad = |detail: String| UnpackError::BadHeader {
        entry: name.to_string(),
        field,
        detail: detail.chars().map(|c| if c.is_control() { ' ' } else { c }).collect(),
    };
    n.map_err(|e| bad(e.to_string()))?.ok_or_else(|| bad("the header format has no device numbers".into()))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
