//! Privileged tests of berth-image. Needs root: mounts overlayfs / creates
//! device nodes / chowns; run as root (scripts/test.sh does).
//!
//! Every test here fails (never skips) when not run as root, so a run
//! that cannot exercise them says so. `cargo test --lib` leaves them out
//! and runs as any user.
//!
//! Each test checks what it did as a unit test in `src/`, through the
//! crate's public API: layers are unpacked with
//! [`berth_image::unpack::unpack_layer`] and mounted with
//! [`berth_image::snapshot`] or [`ImageStore::mount_rootfs`].

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::api::ImportRequest;
use berth_core::Compression;
use berth_image::snapshot::{is_mounted, mount_overlay, shift_ownership, unmount, IdShift, OverlaySpec};
use berth_image::unpack::{unpack_layer, UnpackLimits, UnpackStats, OPAQUE_XATTR};
use berth_image::{ImageConfig, ImageStore, NoUsers};
use berth_store::FakeStore;
use nix::sys::stat::makedev;
use tar::EntryType;
use tempfile::TempDir;

/// Panics unless running as root: these tests mount, mknod, chown and set
/// `trusted.*` xattrs, and must fail rather than pass vacuously.
fn require_root(test: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{test} needs root (it mounts overlayfs, creates device nodes or chowns); \
         run `cargo test -p berth-image --test privileged` as root (scripts/test.sh does)"
    );
}

/// Writes a tar stream header by header, so names stay exactly as written
/// (`tar::Builder` refuses `..`). The same builder as the unit tests'.
struct Layer {
    buf: Vec<u8>,
    uid: u64,
    gid: u64,
}

impl Layer {
    fn new() -> Self {
        let uid = nix::unistd::geteuid().as_raw().into();
        let gid = nix::unistd::getegid().as_raw().into();
        Self { buf: Vec::new(), uid, gid }
    }

    fn raw(&mut self, name: &str, kind: EntryType, mode: u32, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_mtime(if kind == EntryType::Directory { 1_500_000_000 } else { 1_600_000_000 });
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
        self
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, EntryType::Directory, mode, b"")
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name, EntryType::Regular, mode, data)
    }

    /// A whiteout or opaque marker, as image builders write them.
    fn marker(&mut self, name: &str) -> &mut Self {
        self.raw(name, EntryType::Regular, 0o644, b"")
    }

    fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        self.raw(name, kind, 0o666, b"");
        // Patch the numbers into the header just written.
        let at = self.buf.len() - 512;
        let mut h = tar::Header::from_byte_slice(&self.buf[at..]).clone();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.buf[at..].copy_from_slice(h.as_bytes());
        self
    }

    /// The stream as tar writes it: two zero blocks, padded to a 10 KiB record.
    fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out.resize(out.len().div_ceil(10240) * 10240, 0);
        out
    }
}

fn unpack_into(dest: &Path, tar: &[u8]) -> UnpackStats {
    unpack_layer(tar, Compression::None, dest, &UnpackLimits::default()).unwrap()
}

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

// ---- Layer unpacking: whiteouts, opaque markers, device nodes ----

#[test]
fn whiteouts_become_overlay_char_devices() {
    require_root("whiteouts_become_overlay_char_devices");
    let tar = Layer::new()
        .file("etc/motd", 0o644, b"hello")
        .marker("etc/.wh.motd")
        .marker(".wh.gone")
        .dir("var/", 0o755)
        .marker("var/.wh.cache")
        .finish();
    let dest = TempDir::new().unwrap();
    unpack_into(dest.path(), &tar);
    for path in ["etc/motd", "gone", "var/cache"] {
        let m = lmeta(&dest.path().join(path));
        assert!(m.file_type().is_char_device(), "{path}");
        assert_eq!(m.rdev(), makedev(0, 0), "{path}");
    }
}

#[test]
fn opaque_markers_set_the_overlay_xattr() {
    require_root("opaque_markers_set_the_overlay_xattr");
    let tar = Layer::new()
        .marker("var/cache/.wh..wh..opq")
        .file("var/cache/new", 0o644, b"n")
        .dir("srv/", 0o750)
        .marker("srv/.wh..wh..opq")
        .finish();
    let dest = TempDir::new().unwrap();
    unpack_into(dest.path(), &tar);
    for dir in ["var/cache", "srv"] {
        let got = xattr::get(dest.path().join(dir), OPAQUE_XATTR).unwrap();
        assert_eq!(got.as_deref(), Some(&b"y"[..]), "{dir}");
    }
    assert_eq!(lmeta(&dest.path().join("srv")).mode() & 0o7777, 0o750);
}

#[test]
fn devices_are_created_only_when_allowed() {
    require_root("devices_are_created_only_when_allowed");
    let tar = Layer::new().device("dev/null", EntryType::Char, 1, 3).device("dev/sda", EntryType::Block, 8, 0).finish();
    let dest = TempDir::new().unwrap();
    let limits = UnpackLimits { allow_devices: true, ..UnpackLimits::default() };
    unpack_layer(&tar[..], Compression::None, dest.path(), &limits).unwrap();
    let null = lmeta(&dest.path().join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!((null.rdev(), null.mode() & 0o7777), (makedev(1, 3), 0o666));
    assert!(lmeta(&dest.path().join("dev/sda")).file_type().is_block_device());
}

#[test]
fn refusal_also_removes_a_root_opaque_marker() {
    require_root("refusal_also_removes_a_root_opaque_marker");
    let tar = Layer::new().marker("./.wh..wh..opq").file("../x", 0o644, b"x").finish();
    let dest = TempDir::new().unwrap();
    unpack_layer(&tar[..], Compression::None, dest.path(), &UnpackLimits::default()).unwrap_err();
    assert_eq!(xattr::get(dest.path(), OPAQUE_XATTR).unwrap(), None);
}

// ---- Overlay snapshots: mounts and ownership shifts ----

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

fn spec<'a>(lower: &[&'a Path], upper: &'a Path, work: &'a Path, target: &'a Path) -> OverlaySpec<'a> {
    OverlaySpec { lower: lower.to_vec(), upper, work, target, metacopy: false }
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
    require_root("overlay_merges_layers_with_whiteouts_and_opaque_dirs");
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
fn shift_ownership_moves_owners_without_copying_data_or_following_links() {
    use std::os::unix::fs::PermissionsExt;
    require_root("shift_ownership_moves_owners_without_copying_data_or_following_links");
    let root = TempDir::new().unwrap();
    let (lower, upper, work, target) =
        (root.path().join("lower"), root.path().join("upper"), root.path().join("work"), root.path().join("merged"));
    let outside = root.path().join("outside");
    fs::write(&outside, b"host file").unwrap();
    fs::create_dir_all(lower.join("etc/deep")).unwrap();
    fs::write(lower.join("etc/big"), vec![7u8; 1 << 20]).unwrap();
    fs::write(lower.join("etc/suid"), b"x").unwrap();
    fs::set_permissions(lower.join("etc/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    // cap_net_raw+ep, as iputils' ping carries it (a v2 entry).
    let mut caps = vec![0x01, 0x00, 0x00, 0x02];
    caps.extend_from_slice(&(1u32 << 13).to_le_bytes());
    caps.extend_from_slice(&[0u8; 12]);
    fs::write(lower.join("etc/ping"), b"x").unwrap();
    rustix::fs::lsetxattr(lower.join("etc/ping"), FILE_CAPS, &caps, rustix::fs::XattrFlags::empty()).unwrap();
    std::os::unix::fs::lchown(lower.join("etc/deep"), Some(33), Some(44)).unwrap();
    std::os::unix::fs::symlink(&outside, lower.join("etc/escape")).unwrap();
    std::os::unix::fs::symlink("/", lower.join("root-link")).unwrap();
    fs::hard_link(lower.join("etc/big"), lower.join("etc/big2")).unwrap();

    let s = OverlaySpec { lower: vec![&lower], upper: &upper, work: &work, target: &target, metacopy: true };
    mount_overlay(&s).unwrap();
    let _guard = MountGuard(target.clone());
    let shift = IdShift { uid: 1_000_000_000, gid: 1_000_000_000, size: 65536 };
    let started = std::time::Instant::now();
    let seen = shift_ownership(&target, &shift).unwrap();
    eprintln!("shifted {seen} entries in {:?}", started.elapsed());
    assert_eq!(seen, 9, "/, etc, deep, big, big2, suid, ping, escape, root-link");

    let meta = |p: &str| fs::symlink_metadata(target.join(p)).unwrap();
    for p in ["", "etc", "etc/big", "etc/big2", "etc/suid", "etc/escape", "root-link"] {
        assert_eq!((meta(p).uid(), meta(p).gid()), (1_000_000_000, 1_000_000_000), "{p:?}");
    }
    assert_eq!((meta("etc/deep").uid(), meta("etc/deep").gid()), (1_000_000_033, 1_000_000_044));
    assert_eq!(meta("etc/suid").mode() & 0o7777, 0o4755, "set-id bit restored");
    assert_eq!(meta("etc/ping").uid(), 1_000_000_000);
    assert_eq!(file_caps(&target.join("etc/ping")).unwrap(), Some(caps), "file capabilities restored");
    assert_eq!(fs::read(target.join("etc/big")).unwrap(), vec![7u8; 1 << 20]);
    // Symlinks were not followed: the host file and / keep their owners.
    assert_eq!(fs::metadata(&outside).unwrap().uid(), 0);
    assert_eq!(fs::metadata("/").unwrap().uid(), 0);
    // metacopy: the data stayed below, the upper copy holds no blocks.
    let up = fs::metadata(upper.join("etc/big")).unwrap();
    assert!(up.blocks() < 64, "data was copied up: {} blocks", up.blocks());
    assert_eq!(fs::metadata(lower.join("etc/big")).unwrap().uid(), 0, "lower layer untouched");

    assert_eq!(shift_ownership(&target, &shift).unwrap(), seen);
    assert_eq!(meta("etc").uid(), 1_000_000_000, "idempotent");
}

/// The cost of the walk on a large tree (the host's /usr as the only
/// lower layer, read-only): `cargo test -p berth-image --test privileged
/// measure_shift -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_shift_of_usr() {
    require_root("measure_shift_of_usr");
    let root = TempDir::new().unwrap();
    let (upper, work, target) = (root.path().join("upper"), root.path().join("work"), root.path().join("merged"));
    let s = OverlaySpec { lower: vec![Path::new("/usr")], upper: &upper, work: &work, target: &target, metacopy: true };
    mount_overlay(&s).unwrap();
    let _guard = MountGuard(target.clone());
    let started = std::time::Instant::now();
    let seen = shift_ownership(&target, &IdShift { uid: 1 << 30, gid: 1 << 30, size: 65536 }).unwrap();
    let took = started.elapsed();
    let du = std::process::Command::new("du").args(["-sk"]).arg(&upper).output().unwrap();
    eprintln!("shifted {seen} entries of /usr in {took:?}; upper: {}", String::from_utf8_lossy(&du.stdout).trim());
}

#[test]
fn unmount_is_idempotent() {
    require_root("unmount_is_idempotent");
    let root = TempDir::new().unwrap();
    unmount(root.path()).unwrap();
    unmount(&root.path().join("missing")).unwrap();
}

// ---- The image store: container root filesystems ----

/// An image store under a temporary directory holding one imported image,
/// `example.org/app:1`, with one file, `/etc/hello`.
async fn store_with_image() -> (TempDir, Arc<ImageStore>) {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/hello"), b"hello\n").unwrap();
    let store = ImageStore::open(
        &dir.path().join("images"),
        Arc::new(FakeStore::new()),
        ImageConfig::default(),
        Arc::new(NoUsers),
    )
    .unwrap();
    let store = Arc::new(store);
    store
        .import(ImportRequest {
            path: rootfs.display().to_string(),
            tag: Some("example.org/app:1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn rootfs_is_an_overlay_with_a_private_upper() {
    require_root("rootfs_is_an_overlay_with_a_private_upper");
    let (_dir, store) = store_with_image().await;
    let root = store.mount_rootfs("example.org/app:1", "c1").unwrap();
    struct Cleanup<'a>(&'a ImageStore);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove_rootfs("c1");
            let _ = self.0.remove_rootfs("c2");
        }
    }
    let _cleanup = Cleanup(&store);
    assert_eq!(fs::read(root.join("etc/hello")).unwrap(), b"hello\n");
    assert_eq!(store.mount_rootfs("example.org/app:1", "c1").unwrap(), root, "idempotent");
    fs::write(root.join("etc/hello"), b"changed\n").unwrap();
    // The layer is untouched; a second root sees the original.
    let other = store.mount_rootfs("example.org/app:1", "c2").unwrap();
    assert_eq!(fs::read(other.join("etc/hello")).unwrap(), b"hello\n");
    store.remove_rootfs("c1").unwrap();
    store.remove_rootfs("c1").unwrap();
    assert!(!store.rootfs_mounted("c1"));
    assert!(store.mount_rootfs("example.org/app:1", "../escape").is_err());
}
