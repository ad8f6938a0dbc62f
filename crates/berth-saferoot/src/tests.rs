use std::fs;
use std::os::unix::fs::symlink;

use super::*;

// The test of `bind_fd`, which mounts and so needs root, is in
// `tests/privileged.rs`.

/// A hostile tree: a root with symlinks out of it, and a "host" beside it
/// holding a secret.
struct Lab {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host_secret: PathBuf,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let host = dir.path().join("host");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(&host).unwrap();
    let host_secret = host.join("shadow");
    fs::write(&host_secret, "host-secret").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(root.join("etc/shadow"), "image-shadow").unwrap();
    fs::write(root.join("data/sub/file"), "inside").unwrap();
    // /etc/passwd -> an absolute host path; in the root it names etc/shadow.
    symlink("/etc/shadow", root.join("etc/passwd")).unwrap();
    symlink(&host_secret, root.join("abs-host")).unwrap();
    symlink("../../host/shadow", root.join("data/up")).unwrap();
    symlink("/", root.join("data/esc")).unwrap();
    symlink("sub", root.join("data/rel")).unwrap();
    symlink("loop", root.join("loop")).unwrap();
    Lab { _dir: dir, root, host_secret }
}

fn both(root: &Path) -> [Root; 2] {
    [Root::open(root).unwrap(), Root::open(root).unwrap().with_walk_only()]
}

#[test]
fn absolute_symlinks_resolve_inside_the_root() {
    let l = lab();
    for r in both(&l.root) {
        assert_eq!(r.read_text("etc/passwd", 1024).unwrap().as_deref(), Some("image-shadow"), "{r:?}");
        // A symlink to the host's absolute path names the root's own path.
        let e = r.read_text("abs-host", 1024).unwrap();
        assert_eq!(e, None, "no such file inside the root: {}", l.host_secret.display());
    }
}

#[test]
fn dotdot_never_climbs_above_the_root() {
    let l = lab();
    for r in both(&l.root) {
        assert_eq!(r.read_text("../../../etc/shadow", 1024).unwrap().as_deref(), Some("image-shadow"));
        assert_eq!(r.read_text("data/up", 1024).unwrap(), None, "../../host/shadow clamps to /host/shadow in the root");
    }
}

#[test]
fn beneath_refuses_every_way_out() {
    let l = lab();
    for r in both(&l.root) {
        for bad in ["data/esc", "data/up", "../x", "data/../../x", "abs-host"] {
            let e = r.open_beneath(bad).unwrap_err();
            assert!(matches!(e, SafeRootError::Escapes { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("leaves"), "{e}");
        }
        assert_eq!(kind_of(&r.open_beneath("data/rel").unwrap()).unwrap(), Kind::Directory);
        assert_eq!(kind_of(&r.open_beneath("data/sub/file").unwrap()).unwrap(), Kind::Regular);
        assert_eq!(kind_of(&r.open_beneath("data/./sub/../sub").unwrap()).unwrap(), Kind::Directory);
        assert_eq!(kind_of(&r.open_beneath("").unwrap()).unwrap(), Kind::Directory);
    }
}

#[test]
fn only_regular_files_are_read_and_only_up_to_the_cap() {
    let l = lab();
    rustix::fs::mknodat(rustix::fs::CWD, l.root.join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    fs::write(l.root.join("big"), vec![b'x'; 4096]).unwrap();
    for r in both(&l.root) {
        let e = r.read_file("fifo", 1024).unwrap_err();
        assert!(matches!(e, SafeRootError::NotRegular { kind: "FIFO", .. }), "{e}");
        let e = r.read_file("etc", 1024).unwrap_err();
        assert!(matches!(e, SafeRootError::NotRegular { kind: "directory", .. }), "{e}");
        let e = r.read_file("big", 1024).unwrap_err();
        assert!(matches!(e, SafeRootError::TooLarge { max: 1024, .. }), "{e}");
        assert_eq!(r.read_file("big", 4096).unwrap().unwrap().len(), 4096);
        assert_eq!(r.read_file("missing/file", 10).unwrap(), None);
        let e = r.read_file("loop", 10).unwrap_err();
        assert!(matches!(e, SafeRootError::Loop { .. }), "{e}");
    }
}

#[test]
fn a_file_in_the_middle_of_a_path_is_not_a_directory() {
    let l = lab();
    for r in both(&l.root) {
        let e = r.open_in_root("etc/group/x").unwrap_err();
        assert!(e.to_string().contains("Not a directory") || e.to_string().contains("not a directory"), "{e}");
    }
}

#[test]
fn mkdir_all_beneath_creates_inside_and_refuses_symlinked_parents() {
    let l = lab();
    let r = Root::open(&l.root).unwrap();
    let fd = r.mkdir_all_beneath("data/new/deeper", 0o755).unwrap();
    assert_eq!(kind_of(&fd).unwrap(), Kind::Directory);
    assert!(l.root.join("data/new/deeper").is_dir());
    r.mkdir_all_beneath("data/new/deeper", 0o755).unwrap();
    let e = r.mkdir_all_beneath("data/esc/tmp/evil", 0o755).unwrap_err();
    assert!(matches!(e, SafeRootError::Escapes { .. }), "{e}");
    let e = r.mkdir_all_beneath("../evil", 0o755).unwrap_err();
    assert!(matches!(e, SafeRootError::Escapes { .. }), "{e}");
    // A relative symlink to a directory inside is fine (Kubernetes allows it).
    r.mkdir_all_beneath("data/rel/x", 0o755).unwrap();
    assert!(l.root.join("data/sub/x").is_dir());
}
