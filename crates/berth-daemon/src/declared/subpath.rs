//! `subPath` volume mounts, bound without trusting the volume's contents.
//!
//! A pod writes its volumes: an init container can leave `esc -> /` in an
//! emptyDir, and a `subPath: esc` handed to the runtime as `VOLUME/esc`
//! would then bind the host's root into the container (the runtime follows
//! symlinks in a bind source on the host). Kubernetes had exactly this bug
//! (CVE-2017-1002101) and fixed it the way this module works:
//!
//! 1. open the subPath beneath the volume directory, one component at a
//!    time or with `openat2(RESOLVE_BENEATH)`: a symlink may point
//!    elsewhere inside the volume, never out of it (an error names it);
//! 2. create it as a directory when it does not exist, as Kubernetes does,
//!    with the same care;
//! 3. bind-mount the opened descriptor onto a mount point the daemon owns
//!    (under the pod's run directory), so what was checked is what is
//!    mounted, whatever the pod renames meanwhile;
//! 4. hand that mount point to the runtime.
//!
//! The pod's teardown unmounts everything under its run directory.

use std::path::Path;

use berth_saferoot::{Kind, Root, SafeRootError};

use super::spec::{ConfigError, SubPathBind};

/// Binds every subPath of `container` onto its target. Blocks (it opens
/// and mounts): run it off the async workers. Idempotent: a target bound
/// by an earlier attempt is unbound and bound again.
pub fn prepare(container: &str, binds: &[SubPathBind]) -> Result<(), ConfigError> {
    for b in binds {
        bind_one(b).map_err(|why| {
            ConfigError(format!(
                "failed to prepare subPath {:?} for volumeMount {:?} of container {container:?}: {why}",
                b.sub_path, b.volume
            ))
        })?;
    }
    Ok(())
}

fn bind_one(b: &SubPathBind) -> Result<(), String> {
    let root = Root::open(&b.volume_dir).map_err(|e| e.to_string())?;
    let fd = match root.open_beneath(&b.sub_path) {
        Ok(fd) => fd,
        Err(e) if e.is_not_found() => root.mkdir_all_beneath(&b.sub_path, 0o755).map_err(describe)?,
        Err(e) => return Err(describe(e)),
    };
    let kind = berth_saferoot::kind_of(&fd).map_err(|e| e.to_string())?;
    let parent = b.target.parent().ok_or("the bind target has no parent")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    berth_saferoot::unbind(&b.target).map_err(|e| format!("unmounting {}: {e}", b.target.display()))?;
    make_target(&b.target, kind)?;
    berth_saferoot::bind_fd(&fd, &b.target).map_err(|e| format!("binding onto {}: {e}", b.target.display()))
}

/// An empty directory or file at `target` to mount onto, of `kind`.
fn make_target(target: &Path, kind: Kind) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", target.display());
    let existing = std::fs::symlink_metadata(target).ok();
    match kind {
        Kind::Directory => {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                std::fs::remove_file(target).map_err(io)?;
            }
            std::fs::create_dir_all(target).map_err(io)
        }
        Kind::Regular => {
            if existing.as_ref().is_some_and(|m| m.is_dir()) {
                std::fs::remove_dir(target).map_err(io)?;
            }
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(target).map(drop).map_err(io)
        }
        Kind::Other(what) => Err(format!("it is a {what}; a subPath must be a directory or a regular file")),
    }
}

fn describe(e: SafeRootError) -> String {
    match e {
        SafeRootError::Escapes { .. } => {
            "it leads out of the volume (a symlink or `..`); give a path inside the volume".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn bind(dir: &Path, sub: &str, target: &Path) -> SubPathBind {
        SubPathBind {
            volume: "data".into(),
            volume_dir: dir.to_path_buf(),
            sub_path: sub.into(),
            target: target.into(),
        }
    }

    // Refusals happen before anything is mounted, so these run without root.
    #[test]
    fn a_subpath_through_a_symlink_out_of_the_volume_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        symlink("/", vol.join("esc")).unwrap();
        symlink("../..", vol.join("up")).unwrap();
        for sub in ["esc", "esc/root", "up", "up/etc"] {
            let e = prepare("web", &[bind(&vol, sub, &t.path().join("target"))]).unwrap_err().0;
            assert!(e.contains("leads out of the volume") && e.contains("\"web\"") && e.contains(sub), "{e}");
            assert!(!t.path().join("target").exists(), "nothing is made for a refused subPath");
        }
    }

    #[test]
    fn a_subpath_naming_a_fifo_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        nix::unistd::mkfifo(&vol.join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = prepare("web", &[bind(&vol, "pipe", &t.path().join("s/0"))]).unwrap_err().0;
        assert!(e.contains("FIFO") && e.contains("directory or a regular file"), "{e}");
    }
}
