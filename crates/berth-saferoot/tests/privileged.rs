//! Privileged tests of berth-saferoot. Needs root: bind-mounts from a held
//! descriptor; run as root (scripts/test.sh does).
//!
//! Every test here fails (never skips) when not run as root. `cargo test
//! --lib` leaves them out and runs as any user.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use berth_saferoot::{bind_fd, unbind, Root};

/// Panics unless running as root: these tests mount, and must fail rather
/// than pass vacuously.
fn require_root(test: &str) {
    assert!(
        rustix::process::geteuid().is_root(),
        "{test} needs root (it mounts); run `cargo test -p berth-saferoot --test privileged` as root \
         (scripts/test.sh does)"
    );
}

/// A hostile tree: a root with symlinks out of it, and a "host" beside it
/// holding a secret (the unit tests' fixture).
struct Lab {
    _dir: tempfile::TempDir,
    root: PathBuf,
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
    Lab { _dir: dir, root }
}

#[test]
fn bind_fd_mounts_the_object_checked_not_the_path() {
    require_root("bind_fd_mounts_the_object_checked_not_the_path");
    let l = lab();
    let r = Root::open(&l.root).unwrap();
    let fd = r.open_beneath("data/sub").unwrap();
    // The pod swaps the checked directory for a symlink out before the bind.
    fs::rename(l.root.join("data/sub"), l.root.join("data/moved")).unwrap();
    symlink("/", l.root.join("data/sub")).unwrap();
    let target = l.root.parent().unwrap().join("target");
    fs::create_dir_all(&target).unwrap();
    bind_fd(&fd, &target).unwrap();
    let seen = fs::read_to_string(target.join("file"));
    let listing: Vec<_> = fs::read_dir(&target).unwrap().flatten().map(|e| e.file_name()).collect();
    unbind(&target).unwrap();
    assert_eq!(seen.unwrap(), "inside", "the bind shows the directory that was checked: {listing:?}");
    unbind(&target).unwrap();
}
