//! Tests of the layer unpacker: what it builds, and every refusal. They
//! run as any user; the ones that need root (whiteout device nodes,
//! `trusted.*` xattrs, device nodes) are in `tests/privileged.rs`.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tempfile::TempDir;

pub(crate) const DIR_MTIME: u64 = 1_500_000_000;
pub(crate) const FILE_MTIME: u64 = 1_600_000_000;

/// Writes a tar stream header by header, so hostile names stay exactly
/// as written (`tar::Builder` refuses `..`).
pub(crate) struct Layer {
    buf: Vec<u8>,
    uid: u64,
    gid: u64,
}

impl Layer {
    pub(crate) fn new() -> Self {
        // Owned by whoever runs the test, so the unprivileged tests can lchown.
        let uid = nix::unistd::geteuid().as_raw().into();
        let gid = nix::unistd::getegid().as_raw().into();
        Self { buf: Vec::new(), uid, gid }
    }

    fn raw(&mut self, name: &str, kind: EntryType, mode: u32, link: &str, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_mtime(if kind == EntryType::Directory { DIR_MTIME } else { FILE_MTIME });
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, EntryType::Directory, mode, "", b"")
    }

    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name, EntryType::Regular, mode, "", data)
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Symlink, 0o777, target, b"")
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Link, 0o644, target, b"")
    }

    /// A whiteout or opaque marker, as image builders write them.
    pub(crate) fn marker(&mut self, name: &str) -> &mut Self {
        self.raw(name, EntryType::Regular, 0o644, "", b"")
    }

    fn fifo(&mut self, name: &str) -> &mut Self {
        self.raw(name, EntryType::Fifo, 0o620, "", b"")
    }

    fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        self.raw(name, kind, 0o666, "", b"");
        // Patch the numbers into the header just written.
        let at = self.buf.len() - 512;
        let mut h = tar::Header::from_byte_slice(&self.buf[at..]).clone();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.buf[at..].copy_from_slice(h.as_bytes());
        self
    }

    /// A PAX extended header applying to the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw("PaxHeaders/x", EntryType::XHeader, 0o644, "", &data)
    }

    /// The stream as tar writes it: two zero blocks, padded to a 10 KiB record.
    pub(crate) fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out.resize(out.len().div_ceil(10240) * 10240, 0);
        out
    }
}

fn unpack_into(dest: &Path, tar: &[u8]) -> UnpackStats {
    unpack_layer(tar, Compression::None, dest, &UnpackLimits::default()).unwrap()
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_hasher(Sha256::new().chain_update(bytes))
}

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn unpacks_files_dirs_and_links_with_metadata() {
    let tar = Layer::new()
        .dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/hello", 0o640, b"hello\n")
        .dir("bin/", 0o711)
        .file("bin/busybox", 0o4755, b"bb")
        .symlink("bin/sh", "busybox")
        .hardlink("bin/ash", "bin/busybox")
        .symlink("lib", "/usr/lib")
        .fifo("run/fifo")
        .file("./deep/a/b", 0o600, b"")
        .finish();
    let dest = TempDir::new().unwrap();
    let stats = unpack_into(dest.path(), &tar);
    let d = dest.path();

    assert_eq!(stats.entries, 10);
    assert_eq!(stats.bytes, 8);
    assert_eq!(fs::read(d.join("etc/hello")).unwrap(), b"hello\n");
    let hello = lmeta(&d.join("etc/hello"));
    assert_eq!(hello.mode() & 0o7777, 0o640);
    assert_eq!(hello.mtime() as u64, FILE_MTIME);
    assert_eq!(hello.uid(), nix::unistd::geteuid().as_raw());
    // Directory mtimes survive the children written after them.
    assert_eq!(lmeta(&d.join("etc")).mtime() as u64, DIR_MTIME);
    assert_eq!(lmeta(&d.join("bin")).mtime() as u64, DIR_MTIME);
    assert_eq!(lmeta(&d.join("bin")).mode() & 0o7777, 0o711);
    assert_eq!(lmeta(&d.join("bin/busybox")).mode() & 0o7777, 0o4755);
    assert_eq!(fs::read_link(d.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert_eq!(lmeta(&d.join("bin/sh")).mtime() as u64, FILE_MTIME);
    assert_eq!(lmeta(&d.join("bin/ash")).ino(), lmeta(&d.join("bin/busybox")).ino());
    assert_eq!(fs::read_link(d.join("lib")).unwrap(), Path::new("/usr/lib"));
    assert!(lmeta(&d.join("run/fifo")).file_type().is_fifo());
    assert_eq!(lmeta(&d.join("run/fifo")).mode() & 0o7777, 0o620);
    // Implicit parents are plain 0755 directories.
    assert_eq!(lmeta(&d.join("run")).mode() & 0o7777, 0o755);
    assert!(lmeta(&d.join("deep/a")).is_dir());
    assert_eq!(fs::read(d.join("deep/a/b")).unwrap(), b"");
}

#[test]
fn diff_id_is_sha256_of_the_whole_uncompressed_stream() {
    let mut tar = Layer::new().dir("etc/", 0o755).file("etc/os-release", 0o644, b"ID=berth\n").finish();
    // Some writers pad past the record; that is part of the diff_id too.
    tar.extend_from_slice(&[0; 4096]);
    let want = sha256(&tar);

    let (first, second) = tar.split_at(700);
    let mut multi_member = gzip(first);
    multi_member.extend(gzip(second));
    let blobs = [
        (Compression::None, tar.clone()),
        (Compression::Gzip, gzip(&tar)),
        (Compression::Gzip, multi_member),
        (Compression::Zstd, zstd::encode_all(&tar[..], 3).unwrap()),
    ];
    for (compression, blob) in blobs {
        let dest = TempDir::new().unwrap();
        let stats = unpack_layer(&blob[..], compression, dest.path(), &UnpackLimits::default()).unwrap();
        assert_eq!(stats.diff_id, want, "{compression:?}");
        assert_eq!((stats.entries, stats.bytes), (2, 9), "{compression:?}");
        assert_eq!(fs::read(dest.path().join("etc/os-release")).unwrap(), b"ID=berth\n");
    }
}

#[test]
fn later_entries_replace_earlier_ones_in_the_same_layer() {
    let tar = Layer::new()
        .file("a", 0o644, b"one")
        .file("a", 0o600, b"two")
        .dir("d/", 0o755)
        .file("d/x", 0o644, b"x")
        .file("d", 0o644, b"now a file")
        .dir("e/", 0o700)
        .file("e/kept", 0o644, b"k")
        .dir("e/", 0o751)
        .symlink("s", "a")
        .file("s", 0o644, b"plain")
        .finish();
    let dest = TempDir::new().unwrap();
    unpack_into(dest.path(), &tar);
    let d = dest.path();
    assert_eq!(fs::read(d.join("a")).unwrap(), b"two");
    assert_eq!(lmeta(&d.join("a")).mode() & 0o7777, 0o600);
    assert_eq!(fs::read(d.join("d")).unwrap(), b"now a file");
    assert_eq!(lmeta(&d.join("e")).mode() & 0o7777, 0o751);
    assert_eq!(fs::read(d.join("e/kept")).unwrap(), b"k");
    assert!(lmeta(&d.join("s")).is_file());
    assert_eq!(fs::read(d.join("a")).unwrap(), b"two", "writing s must not follow the old link");
}

#[test]
fn pax_xattrs_are_applied_except_selinux_and_overlay_ones() {
    let tar = Layer::new()
        .pax(&[
            ("SCHILY.xattr.user.note", b"hi"),
            ("SCHILY.xattr.security.selinux", b"system_u:object_r:etc_t:s0"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .dir("d/", 0o755)
        .finish();
    let dest = TempDir::new().unwrap();
    unpack_into(dest.path(), &tar);
    let d = dest.path().join("d");
    assert_eq!(xattr::get(&d, "user.note").unwrap().as_deref(), Some(&b"hi"[..]));
    assert_eq!(xattr::get(&d, OPAQUE_XATTR).unwrap(), None);
}

/// A layer that starts well, so a refusal has something to clean up.
fn good_start() -> Layer {
    let mut l = Layer::new();
    l.dir("keep/", 0o755).file("keep/f", 0o644, b"data").dir("keep/ro/", 0o555);
    l
}

/// Unpacks a blob that must be refused; checks that `dest` is left empty
/// and that the message is one line.
fn refuse_blob(blob: &[u8], compression: Compression, limits: &UnpackLimits) -> UnpackError {
    let dest = TempDir::new().unwrap();
    let err = unpack_layer(blob, compression, dest.path(), limits).expect_err("layer accepted");
    assert!(is_empty(dest.path()), "dest not emptied after {err:?}");
    assert!(!err.to_string().contains('\n'), "message spans lines: {err}");
    err
}

fn refuse(layer: &mut Layer) -> UnpackError {
    refuse_blob(&layer.finish(), Compression::None, &UnpackLimits::default())
}

#[test]
fn refuses_names_outside_the_root() {
    let e = refuse(good_start().file("../x", 0o644, b"x"));
    assert!(matches!(e, UnpackError::UnsafePath { source: PathError::Escapes { .. } }), "{e:?}");
    let e = refuse(good_start().file("/etc/x", 0o644, b"x"));
    assert!(matches!(e, UnpackError::UnsafePath { source: PathError::Absolute { .. } }), "{e:?}");
    let e = refuse(good_start().dir("a/../../x/", 0o755));
    assert!(matches!(e, UnpackError::UnsafePath { .. }), "{e:?}");
    let e = refuse(good_start().marker("keep/.wh."));
    assert!(matches!(e, UnpackError::UnsafePath { source: PathError::BadWhiteout { .. } }), "{e:?}");
    let e = refuse(good_start().file("keep/f/x", 0o644, b"x"));
    assert!(matches!(e, UnpackError::ParentNotDirectory { .. }), "{e:?}");
}

#[test]
fn refuses_writing_through_symlinks() {
    let through = |e: &UnpackError, link: &str| matches!(e, UnpackError::ThroughSymlink { symlink, .. } if symlink == Path::new(link));
    let e = refuse(good_start().symlink("a", "/etc").file("a/passwd", 0o644, b"root::0:0::/:/bin/sh\n"));
    assert!(through(&e, "a"), "{e:?}");
    let e = refuse(good_start().symlink("a", ".").file("a/a/x", 0o644, b"x"));
    assert!(through(&e, "a"), "{e:?}");
    let e = refuse(good_start().symlink("keep/l", "..").dir("keep/l/d/", 0o755));
    assert!(through(&e, "keep/l"), "{e:?}");
    let e = refuse(good_start().symlink("a", "/etc").marker("a/.wh.passwd"));
    assert!(through(&e, "a"), "{e:?}");
    let e = refuse(good_start().symlink("a", "/etc").marker("a/.wh..wh..opq"));
    assert!(through(&e, "a"), "{e:?}");
}

#[test]
fn refuses_symlinks_that_climb_out() {
    let e = refuse(good_start().symlink("x", "../etc"));
    assert!(matches!(e, UnpackError::EscapingSymlink { .. }), "{e:?}");
    let e = refuse(good_start().symlink("keep/x", "../../../etc/shadow"));
    assert!(matches!(e, UnpackError::EscapingSymlink { .. }), "{e:?}");
}

#[test]
fn refuses_hardlinks_that_leave_the_layer() {
    let bad_link =
        |e: &UnpackError, why: &str| matches!(e, UnpackError::BadHardlink { reason, .. } if reason.contains(why));
    let e = refuse(good_start().hardlink("h", "../x"));
    assert!(bad_link(&e, "'..'"), "{e:?}");
    let e = refuse(good_start().hardlink("h", "/etc/shadow"));
    assert!(bad_link(&e, "absolute"), "{e:?}");
    let e = refuse(good_start().symlink("a", ".").hardlink("h", "a/keep/f"));
    assert!(bad_link(&e, "through symlink"), "{e:?}");
    let e = refuse(good_start().hardlink("h", "nope"));
    assert!(bad_link(&e, "does not exist"), "{e:?}");
    let e = refuse(good_start().hardlink("h", "keep"));
    assert!(bad_link(&e, "directory"), "{e:?}");
}

#[test]
fn refuses_device_nodes_by_default() {
    let e = refuse(good_start().device("dev/mem", EntryType::Char, 1, 1));
    assert!(matches!(e, UnpackError::DeviceNotAllowed { kind: "char", .. }), "{e:?}");
    let e = refuse(good_start().device("dev/sda", EntryType::Block, 8, 0));
    assert!(matches!(e, UnpackError::DeviceNotAllowed { kind: "block", .. }), "{e:?}");
}

#[test]
fn refuses_archive_bombs() {
    let small = UnpackLimits { max_bytes: 10, max_entries: 5, allow_devices: false };
    let too_big = good_start().file("big", 0o644, &[0; 7]).finish();
    let e = refuse_blob(&too_big, Compression::None, &small);
    assert!(matches!(e, UnpackError::LayerTooLarge { limit: 10, kind: LimitKind::Bytes }), "{e:?}");

    let too_many = good_start().file("b", 0o644, b"").file("c", 0o644, b"").file("d", 0o644, b"").finish();
    let e = refuse_blob(&too_many, Compression::None, &small);
    assert!(matches!(e, UnpackError::LayerTooLarge { limit: 5, kind: LimitKind::Entries }), "{e:?}");

    // Endless zeros after the archive's end, as a compressor would yield them.
    let mut endless = good_start().finish();
    endless.resize(endless.len() + 2 * 1024 * 1024, 0);
    let e = refuse_blob(&zstd::encode_all(&endless[..], 3).unwrap(), Compression::Zstd, &small);
    assert!(matches!(e, UnpackError::LayerTooLarge { kind: LimitKind::Stream, .. }), "{e:?}");
}

/// A gzip layer whose first entry is a PAX header declaring 3 GiB, followed
/// by gzip members of zeros: small on disk, endless to a reader that trusts
/// the header (what issue 12 reported OOM-killing the daemon).
pub(crate) fn pax_bomb(declared: u64, zero_mib: usize) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeaders.0/bomb").unwrap();
    h.set_entry_type(EntryType::XHeader);
    h.set_size(declared);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    let zeros = gzip(&vec![0; 1 << 20]);
    for _ in 0..zero_mib {
        out.extend_from_slice(&zeros);
    }
    out
}

#[test]
fn refuses_oversized_extension_headers_before_reading_them() {
    let e = refuse_blob(&pax_bomb(3 << 30, 8), Compression::Gzip, &UnpackLimits::default());
    assert!(
        matches!(&e, UnpackError::Header { source: FrameError::TooLarge { declared, .. } } if *declared == 3 << 30),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("PAX extended header \"PaxHeaders.0/bomb\"") && msg.contains("limit of 1048576"), "{msg}");

    // A GNU long name past PATH_MAX, after a good start.
    let mut l = good_start();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    l.buf.extend_from_slice(h.as_bytes());
    let e = refuse(&mut l);
    assert!(matches!(&e, UnpackError::Header { source: FrameError::TooLarge { limit: 4096, .. } }), "{e:?}");
    assert!(e.to_string().contains("after entry \"keep/ro/\""), "{e}");
}

#[test]
fn refuses_truncated_and_corrupt_streams() {
    let mut truncated = good_start().file("big", 0o644, &[7; 2000]).finish();
    truncated.truncate(2048 + 1000);
    let e = refuse_blob(&truncated, Compression::None, &UnpackLimits::default());
    assert!(matches!(e, UnpackError::Read { .. }), "{e:?}");

    let mut corrupt = gzip(&good_start().finish());
    let mid = corrupt.len() / 2;
    corrupt[mid..].fill(0xff);
    let e = refuse_blob(&corrupt, Compression::Gzip, &UnpackLimits::default());
    assert!(matches!(e, UnpackError::Read { .. }), "{e:?}");
}

#[test]
fn refusals_name_the_entry_and_the_way_out() {
    let dest = TempDir::new().unwrap();
    let tar = Layer::new().symlink("a", "/etc").file("a/passwd", 0o644, b"x").finish();
    let msg = unpack_layer(&tar[..], Compression::None, dest.path(), &UnpackLimits::default()).unwrap_err().to_string();
    assert!(msg.contains("\"a/passwd\"") && msg.contains("symlink \"a\""), "{msg}");

    let limits = UnpackLimits { max_bytes: 3, ..UnpackLimits::default() };
    let tar = Layer::new().file("f", 0o644, b"four").finish();
    let msg = unpack_layer(&tar[..], Compression::None, dest.path(), &limits).unwrap_err().to_string();
    assert!(msg.contains("limit of 3 bytes") && msg.contains("max_layer_bytes"), "{msg}");
}

#[test]
fn destination_must_be_an_empty_directory_and_is_left_alone_otherwise() {
    let dest = TempDir::new().unwrap();
    fs::write(dest.path().join("mine"), b"caller data").unwrap();
    let tar = Layer::new().file("../x", 0o644, b"x").finish();
    let err = unpack_layer(&tar[..], Compression::None, dest.path(), &UnpackLimits::default()).unwrap_err();
    assert!(matches!(err, UnpackError::BadDestination { .. }), "{err:?}");
    assert_eq!(fs::read(dest.path().join("mine")).unwrap(), b"caller data");

    let missing = dest.path().join("missing");
    let err = unpack_layer(&tar[..], Compression::None, &missing, &UnpackLimits::default()).unwrap_err();
    assert!(matches!(err, UnpackError::BadDestination { .. }), "{err:?}");
}
