//! The modes of the state root and the run root, enforced at every start.
//!
//! Both roots hold what local users must not read: container root
//! filesystems, bundles (`config.json` carries the environment), logs, the
//! store, shim and runtime state. A root that already existed with a wider
//! mode (say 0755, made by hand or by an older berth) is narrowed again at
//! every start, and so is every directory below it that berth knows.
//!
//! Directories a container's own uid may have to pass through (with user
//! namespaces the container's mapped uid walks to its root filesystem, its
//! bundle's bind-mounted files and its pod volumes) are 0711: traversable,
//! not listable. Everything else is 0700, and files holding configuration
//! or output 0600. In a root that is berth's own, entries berth does not
//! know are closed (0700/0600); in a root berth shares with others (e.g.
//! `--run-root /run`) only berth's entries are touched. A root is berth's
//! own when it holds the marker file [`MARKER`], written by [`claim`] into
//! a root that berth makes or finds empty, or by [`secure`] into a root
//! holding nothing but entries berth knows (that of an older berth).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A mode berth wants on a path below a root.
struct Rule {
    path: &'static str,
    mode: u32,
    /// A directory berth makes here if it is missing, so it never comes
    /// into being later with the umask's mode.
    dir: bool,
}

const fn dir(path: &'static str, mode: u32) -> Rule {
    Rule { path, mode, dir: true }
}

const fn file(path: &'static str, mode: u32) -> Rule {
    Rule { path, mode, dir: false }
}

/// Marks a root as berth's own.
pub const MARKER: &str = ".berth";

/// The state root (`--root`): "" is the root itself.
const STATE: &[Rule] = &[
    dir("", 0o711),
    file(MARKER, 0o600),
    dir("containers", 0o711),
    dir("images", 0o711),
    dir("images/snapshots", 0o711),
    dir("images/blobs", 0o700),
    dir("images/layers", 0o700),
    dir("images/tmp", 0o700),
    dir("pods", 0o711),
    file("state.db", 0o600),
    file("state.db-wal", 0o600),
    file("state.db-shm", 0o600),
    file("secrets.key", 0o600),
    file("secrets.key", 0o600),
    file("daemon.lock", 0o600),
];

/// The run root (`--run-root`).
const RUN: &[Rule] = &[
    dir("", 0o711),
    file(MARKER, 0o600),
    dir("containers", 0o700),
    dir("runtime", 0o700),
    dir("pods", 0o711),
    file("berth.sock", 0o600),
];

/// Files in a bundle that only the daemon and the runtime read.
const BUNDLE_PRIVATE: &[&str] = &["config.json"];

/// A path whose mode could not be set.
#[derive(Debug, thiserror::Error)]
#[error("cannot set the mode of {path} to {mode:o}: {source}; check the file system under it is writable by root")]
pub struct ModeError {
    pub path: PathBuf,
    pub mode: u32,
    pub source: io::Error,
}

/// What [`secure`] changed and what it could not.
#[derive(Debug, Default)]
pub struct Report {
    /// Paths whose mode was narrowed, with the mode they had.
    pub narrowed: Vec<(PathBuf, u32)>,
    /// Roots left as they were because they hold files that are not
    /// berth's.
    pub shared_roots: Vec<PathBuf>,
    /// A root that could not be narrowed: the daemon must not start.
    pub fatal: Vec<ModeError>,
    pub errors: Vec<ModeError>,
}

/// Makes `dir` (0700) if it is missing and marks it berth's own if it is
/// empty; a directory with others' files in it stays unmarked. Call it
/// before anything is written into the root.
pub fn claim(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.symlink_metadata().is_err() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if fs::read_dir(dir)?.next().is_none() {
        fs::write(dir.join(MARKER), b"")?;
        fs::set_permissions(dir.join(MARKER), fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Enforces the modes on both roots and on every container bundle below
/// `root/containers`. Idempotent; keeps going past failures and reports
/// them all. Paths that do not exist are left alone (they are created with
/// the right mode, or fixed at the next start); symbolic links are never
/// followed.
pub fn secure(root: &Path, run_root: &Path) -> Report {
    let mut report = Report::default();
    // A root given as a symbolic link is the directory it names.
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let run_root = fs::canonicalize(run_root).unwrap_or_else(|_| run_root.to_path_buf());
    for (dir, rules) in [(root.as_path(), STATE), (run_root.as_path(), RUN)] {
        if !is_real_dir(dir) {
            continue;
        }
        let own = is_berths(dir, rules);
        if own && !dir.join(MARKER).exists() {
            if let Err(source) = fs::write(dir.join(MARKER), b"") {
                report.errors.push(ModeError { path: dir.join(MARKER), mode: 0o600, source });
            }
        }
        if !own {
            report.shared_roots.push(dir.to_path_buf());
        }
        for r in rules {
            if r.path.is_empty() {
                if own {
                    let mut narrowed = Report::default();
                    set_mode(dir, r.mode, &mut narrowed);
                    report.narrowed.extend(narrowed.narrowed);
                    report.fatal.extend(narrowed.errors);
                }
                continue;
            }
            let path = dir.join(r.path);
            if r.dir && !r.path.is_empty() {
                make_dir(&path, r.mode, &mut report);
            }
            set_mode(&path, r.mode, &mut report);
        }
        if own {
            close_unknown(dir, rules, &mut report);
        }
    }
    if let Ok(entries) = fs::read_dir(root.join("containers")) {
        for e in entries.flatten() {
            secure_bundle_into(&e.path(), &mut report);
        }
    }
    report
}

/// Sets a container bundle's modes: the directory 0711, its `config.json`
/// and logs 0600. For a bundle just written.
pub fn secure_bundle(bundle: &Path) -> Result<(), ModeError> {
    let mut report = Report::default();
    secure_bundle_into(bundle, &mut report);
    report.errors.into_iter().next().map_or(Ok(()), Err)
}

fn secure_bundle_into(bundle: &Path, report: &mut Report) {
    if !is_real_dir(bundle) {
        return;
    }
    set_mode(bundle, 0o711, report);
    let Ok(entries) = fs::read_dir(bundle) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        // ctr.log, ctr.log.1, …: a container's output may hold anything.
        if BUNDLE_PRIVATE.contains(&name.as_str()) || name == "ctr.log" || name.starts_with("ctr.log.") {
            set_mode(&e.path(), 0o600, report);
        }
    }
}

/// Whether `dir` is berth's own: marked, or holding only what `rules`
/// name (nothing at all, just made for berth, included).
fn is_berths(dir: &Path, rules: &[Rule]) -> bool {
    if !is_real_dir(dir) {
        return false;
    }
    if dir.join(MARKER).symlink_metadata().is_ok() {
        return true;
    }
    let Ok(entries) = fs::read_dir(dir) else { return false };
    entries.flatten().all(|e| rules.iter().any(|r| !r.path.is_empty() && e.file_name() == *r.path))
}

/// Direct children of an own root that no rule names: closed.
fn close_unknown(dir: &Path, rules: &[Rule], report: &mut Report) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if rules.iter().any(|r| r.path == name) {
            continue;
        }
        let Ok(meta) = e.path().symlink_metadata() else { continue };
        if meta.is_dir() {
            set_mode(&e.path(), 0o700, report);
        } else if meta.is_file() {
            set_mode(&e.path(), 0o600, report);
        }
    }
}

/// Makes a missing directory (its parent must exist) with `mode`.
fn make_dir(path: &Path, mode: u32, report: &mut Report) {
    use std::os::unix::fs::DirBuilderExt;
    if path.symlink_metadata().is_ok() || !path.parent().is_some_and(is_real_dir) {
        return;
    }
    if let Err(source) = fs::DirBuilder::new().mode(mode).create(path) {
        if source.kind() != io::ErrorKind::AlreadyExists {
            report.errors.push(ModeError { path: path.to_path_buf(), mode, source });
        }
    }
}

fn is_real_dir(p: &Path) -> bool {
    p.symlink_metadata().is_ok_and(|m| m.is_dir())
}

/// Narrows `path` to `mode` unless it is absent or a symbolic link. Only
/// the permission bits change (never setuid/setgid/sticky on).
fn set_mode(path: &Path, mode: u32, report: &mut Report) {
    let Ok(meta) = path.symlink_metadata() else { return };
    if meta.file_type().is_symlink() {
        return;
    }
    let old = meta.permissions().mode() & 0o7777;
    if old == mode {
        return;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) => report.narrowed.push((path.to_path_buf(), old)),
        Err(source) => report.errors.push(ModeError { path: path.to_path_buf(), mode, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn mkdir(p: &Path, m: u32) {
        fs::create_dir_all(p).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    fn touch(p: &Path, m: u32) {
        fs::write(p, b"x").unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    /// A state root and run root as an older berth left them: 0755/0644.
    fn old_layout(t: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (root, run) = (t.join("root"), t.join("run"));
        let bundle = root.join("containers").join("a".repeat(64));
        for d in [&root, &run, &bundle, &root.join("images/snapshots"), &root.join("images/blobs"), &root.join("pods")]
        {
            mkdir(d, 0o755);
        }
        for d in [run.join("containers"), run.join("runtime"), run.join("pods")] {
            mkdir(&d, 0o755);
        }
        touch(&root.join("state.db"), 0o644);
        touch(&root.join("daemon.lock"), 0o644);
        touch(&bundle.join("config.json"), 0o644);
        touch(&bundle.join("ctr.log"), 0o644);
        touch(&bundle.join("ctr.log.1"), 0o640);
        touch(&bundle.join("hosts"), 0o644);
        (root, run, bundle)
    }

    #[test]
    fn an_old_0755_layout_is_narrowed() {
        let t = tempfile::tempdir().unwrap();
        let (root, run, bundle) = old_layout(t.path());
        let report = secure(&root, &run);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(report.shared_roots.is_empty());
        for (p, m) in [
            (root.clone(), 0o711),
            (root.join("containers"), 0o711),
            (root.join("images/snapshots"), 0o711),
            (root.join("images/blobs"), 0o700),
            (root.join("pods"), 0o711),
            (root.join("state.db"), 0o600),
            (root.join("daemon.lock"), 0o600),
            (root.join(MARKER), 0o600),
            (bundle.clone(), 0o711),
            (bundle.join("config.json"), 0o600),
            (bundle.join("ctr.log"), 0o600),
            (bundle.join("ctr.log.1"), 0o600),
            (run.clone(), 0o711),
            (run.join("containers"), 0o700),
            (run.join("runtime"), 0o700),
            (run.join("pods"), 0o711),
        ] {
            assert_eq!(mode(&p), m, "{}", p.display());
        }
        assert_eq!(mode(&bundle.join("hosts")), 0o644, "the container reads its /etc/hosts");
        // Idempotent: nothing left to narrow.
        let again = secure(&root, &run);
        assert!(again.narrowed.is_empty() && again.errors.is_empty(), "{:?}", again.narrowed);
    }

    #[test]
    fn an_empty_precreated_root_is_narrowed() {
        let t = tempfile::tempdir().unwrap();
        let (root, run) = (t.path().join("root"), t.path().join("run"));
        mkdir(&root, 0o755);
        mkdir(&run, 0o777);
        secure(&root, &run);
        assert_eq!((mode(&root), mode(&run)), (0o711, 0o711));
        // Berth's directories are made with their modes, not the umask's.
        assert_eq!((mode(&root.join("containers")), mode(&run.join("runtime"))), (0o711, 0o700));
        assert_eq!(mode(&root.join("images/snapshots")), 0o711);
    }

    #[test]
    fn a_shared_root_keeps_its_mode_and_others_files() {
        let t = tempfile::tempdir().unwrap();
        let (root, run) = (t.path().join("root"), t.path().join("run"));
        mkdir(&root, 0o755);
        // --run-root pointed at a directory others use too.
        mkdir(&run, 0o755);
        touch(&run.join("utmp"), 0o644);
        mkdir(&run.join("lock"), 0o1777);
        // Podman's, say: a name berth uses too.
        mkdir(&run.join("containers"), 0o755);
        let report = secure(&root, &run);
        assert_eq!(report.shared_roots, vec![run.clone()]);
        assert_eq!((mode(&run), mode(&run.join("utmp")), mode(&run.join("lock"))), (0o755, 0o644, 0o1777));
        assert!(!run.join(MARKER).exists());
        // Berth's entries are closed all the same.
        assert_eq!(mode(&run.join("containers")), 0o700);
    }

    #[test]
    fn a_root_of_berths_own_is_marked_and_stays_its_own() {
        let t = tempfile::tempdir().unwrap();
        let (root, run) = (t.path().join("root"), t.path().join("run"));
        mkdir(&root, 0o755);
        touch(&root.join("daemon.lock"), 0o644);
        mkdir(&run, 0o755);
        secure(&root, &run);
        assert!(root.join(MARKER).exists() && run.join(MARKER).exists());
        // Something dropped in later is closed, and the root stays narrowed.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        mkdir(&root.join("dropped"), 0o777);
        touch(&root.join("notes.txt"), 0o644);
        secure(&root, &run);
        assert_eq!((mode(&root), mode(&root.join("dropped"))), (0o711, 0o700));
        assert_eq!(mode(&root.join("notes.txt")), 0o600);
    }

    #[test]
    fn a_root_is_claimed_only_when_made_or_empty() {
        let t = tempfile::tempdir().unwrap();
        let made = t.path().join("a/b");
        claim(&made).unwrap();
        assert_eq!(mode(&made), 0o700);
        assert!(made.join(MARKER).exists());
        let shared = t.path().join("shared");
        mkdir(&shared, 0o755);
        touch(&shared.join("utmp"), 0o644);
        claim(&shared).unwrap();
        assert!(!shared.join(MARKER).exists());
        // Later files (the store's key, say) do not unmark a claimed root.
        touch(&made.join("whatever"), 0o644);
        let report = secure(&made, &t.path().join("run"));
        assert!(report.shared_roots.is_empty());
        assert_eq!((mode(&made), mode(&made.join("whatever"))), (0o711, 0o600));
    }

    #[test]
    fn a_root_given_as_a_link_is_the_directory_it_names() {
        let t = tempfile::tempdir().unwrap();
        let (real, run) = (t.path().join("real"), t.path().join("run"));
        mkdir(&real, 0o755);
        std::os::unix::fs::symlink(&real, t.path().join("root")).unwrap();
        let report = secure(&t.path().join("root"), &run);
        assert!(report.fatal.is_empty() && report.errors.is_empty());
        assert_eq!((mode(&real), mode(&real.join("containers"))), (0o711, 0o711));
    }

    #[test]
    fn symlinks_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let (root, run) = (t.path().join("root"), t.path().join("run"));
        mkdir(&root, 0o700);
        mkdir(&run, 0o700);
        let elsewhere = t.path().join("elsewhere");
        mkdir(&elsewhere, 0o755);
        std::os::unix::fs::symlink(&elsewhere, root.join("containers")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("other")).unwrap();
        let report = secure(&root, &run);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(mode(&elsewhere), 0o755);
    }

    #[test]
    fn a_fresh_bundle_is_secured() {
        let t = tempfile::tempdir().unwrap();
        let bundle = t.path().join("b");
        mkdir(&bundle, 0o755);
        touch(&bundle.join("config.json"), 0o644);
        secure_bundle(&bundle).unwrap();
        assert_eq!((mode(&bundle), mode(&bundle.join("config.json"))), (0o711, 0o600));
        secure_bundle(&t.path().join("absent")).unwrap();
    }
}
