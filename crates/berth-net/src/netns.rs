//! Named network namespaces, the way `ip netns` and podman keep them: a
//! namespace is bind-mounted onto a file in a directory (the daemon uses
//! `/run/netns`, so `ip netns exec NAME` works on Berth's namespaces), and
//! lives as long as that mount, with or without processes in it.
//!
//! runc joins such a namespace through the container spec
//! (`linux.namespaces: [{type: network, path: /run/netns/NAME}]`), and
//! [`run_in`] runs code inside one on a dedicated thread, so no thread of
//! the caller (e.g. a tokio worker) ever changes namespace.
//!
//! The directory is made a mount point with shared propagation (as
//! `ip netns add` does), so the namespace mounts propagate to mount
//! namespaces created later and an unmount frees the namespace everywhere.
//!
//! A container in a user namespace gets a network namespace *owned* by
//! that user namespace ([`create_owned`]): the user namespace, with its id
//! mapping, is kept the same way in a second directory and runc joins both
//! by path, user first (containerd's approach). Only then may a process
//! that enters the container later (`exec`, exec probes) join its network
//! namespace: runc 1.1 enters the user namespace before the network one,
//! and a network namespace owned by the host's user namespace refuses it.
//! It also lets the container mount sysfs and set its own network sysctls.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use berth_core::api::IdMapping;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid network namespace name {0:?}: use 1 to 64 of [a-zA-Z0-9_.-], not starting with a dot")]
    BadName(String),
    #[error("network namespace {path} already exists; delete it first (netns::delete) or choose another name")]
    Exists { path: PathBuf },
    #[error("cannot prepare the namespace directory {path}: {source}; it must be a writable local directory and the daemon needs root (CAP_SYS_ADMIN) to mount")]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot create network namespace {path}: {step}: {source}; the daemon needs root (CAP_SYS_ADMIN)")]
    Create { path: PathBuf, step: &'static str, source: io::Error },
    #[error("cannot delete network namespace {path}: {step}: {source}")]
    Delete { path: PathBuf, step: &'static str, source: io::Error },
    #[error("cannot list network namespaces in {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    #[error("cannot open network namespace {path}: {source}; is the container's namespace created (netns::create) and not yet deleted?")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot enter network namespace {path}: {source}; if it is a plain file left by a crash, delete it and create it again")]
    Enter { path: PathBuf, source: io::Error },
    #[error("cannot start a thread to work inside network namespace {path}: {source}")]
    Thread { path: PathBuf, source: io::Error },
    #[error("the thread working inside network namespace {path} panicked")]
    Panicked { path: PathBuf },
    #[error("cannot create the user namespace {path} for a container's network namespace: {step}: {detail}; the daemon needs root, util-linux's unshare(1), and user namespaces enabled (sysctl user.max_user_namespaces > 0)")]
    UserNs { path: PathBuf, step: &'static str, detail: String },
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn check_name(name: &str) -> Result<(), NetnsError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetnsError::BadName(name.to_string()))
    }
}

/// Makes `dir` exist and be a mount point with shared propagation, as
/// `ip netns add` does. Returns whether this call turned it into a mount
/// point (a caller that did so may undo it with [`release_dir`]).
/// Idempotent; [`create`] calls it.
pub fn prepare_dir(dir: &Path) -> Result<bool, NetnsError> {
    let err = |source| NetnsError::Dir { path: dir.to_path_buf(), source };
    fs::create_dir_all(dir).map_err(err)?;
    let mut made = false;
    loop {
        match mount(None::<&str>, dir, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => return Ok(made),
            // EINVAL: not a mount point yet; bind it onto itself once.
            Err(Errno::EINVAL) if !made => {
                mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .map_err(|e| err(io_err(e)))?;
                made = true;
            }
            Err(e) => return Err(err(io_err(e))),
        }
    }
}

/// Undoes what [`prepare_dir`] did to a directory it turned into a mount
/// point: detaches that mount (and anything still mounted under it).
/// Only for directories the caller made a mount point itself (tests);
/// never on a shared `/run/netns`, where it would hide other namespaces.
/// Idempotent.
pub fn release_dir(dir: &Path) -> Result<(), NetnsError> {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(NetnsError::Dir { path: dir.to_path_buf(), source: io_err(e) }),
    }
}

/// Creates a network namespace named `name` under `dir` (made a shared
/// mount point first), with `lo` up, and returns its path
/// (`dir/name`). Fails with [`NetnsError::Exists`] if the file exists;
/// a failed call leaves no file and no mount behind.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    check_name(name)?;
    prepare_dir(dir)?;
    let path = dir.join(name);
    claim_file(&path)?;
    let made = materialize(&path);
    if made.is_err() {
        let _ = delete(&path);
    }
    made.map(|()| path)
}

/// Creates the empty file a namespace is mounted on; an existing one is
/// [`NetnsError::Exists`].
fn claim_file(path: &Path) -> Result<(), NetnsError> {
    match OpenOptions::new().write(true).create_new(true).mode(0o444).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(NetnsError::Exists { path: path.to_path_buf() }),
        Err(source) => Err(NetnsError::Create { path: path.to_path_buf(), step: "create the file", source }),
    }
}

/// Like [`create`], for a container in a user namespace: first a user
/// namespace mapping container ids `0..size` to the host ids of `mapping`,
/// kept on `userns_dir/name`, then the network namespace, owned by it, on
/// `dir/name`, with `lo` up. Returns the network namespace's path. A failed
/// call leaves neither file nor mount behind.
///
/// The two namespaces are made by a short-lived child (`unshare --user
/// --net`, a new process because a multi-threaded one may not make a user
/// namespace) that waits while the daemon writes its id maps and mounts
/// its namespaces, then exits.
pub fn create_owned(dir: &Path, userns_dir: &Path, name: &str, mapping: IdMapping) -> Result<PathBuf, NetnsError> {
    check_name(name)?;
    prepare_dir(dir)?;
    prepare_dir(userns_dir)?;
    let path = dir.join(name);
    let user = userns_dir.join(name);
    claim_file(&path)?;
    if let Err(e) = claim_file(&user) {
        let _ = delete(&path);
        return Err(e);
    }
    let made = make_owned(&path, &user, mapping);
    if made.is_err() {
        let _ = delete(&path);
        let _ = delete(&user);
    }
    made.map(|()| path)
}

/// How long the child that makes a user namespace may take to be ready.
const USERNS_CHILD_DEADLINE: Duration = Duration::from_secs(10);

fn make_owned(path: &Path, user: &Path, m: IdMapping) -> Result<(), NetnsError> {
    let fail = |step, detail: String| NetnsError::UserNs { path: user.to_path_buf(), step, detail };
    // The child says it is inside the new namespaces (a line on stdout),
    // then waits for its stdin to close.
    let mut child = Command::new("unshare")
        .args(["--user", "--net", "--", "/bin/sh", "-c", "echo ready; read _ || true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .spawn()
        .map_err(|e| fail("start unshare(1)", e.to_string()))?;
    let pid = child.id();
    let result = (|| {
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(io::BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let started = Instant::now();
        let line = rx
            .recv_timeout(USERNS_CHILD_DEADLINE.saturating_sub(started.elapsed()))
            .map_err(|_| fail("wait for the child", format!("no answer within {USERNS_CHILD_DEADLINE:?}")))?
            .map_err(|e| fail("read the child's answer", e.to_string()))?;
        if line.trim() != "ready" {
            return Err(fail("wait for the child", "it exited before entering the new namespaces".into()));
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        for (file, start) in [("uid_map", m.host_uid), ("gid_map", m.host_gid)] {
            fs::write(proc_dir.join(file), format!("0 {start} {}\n", m.size))
                .map_err(|e| fail("write the id map", format!("{file}: {e}")))?;
        }
        for (ns, target, step) in
            [("user", user, "mount the user namespace"), ("net", path, "mount the network namespace")]
        {
            mount(Some(&proc_dir.join("ns").join(ns)), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| fail(step, io_err(e).to_string()))?;
        }
        run_in(path, crate::link::loopback_up)?.map_err(|source| NetnsError::Create {
            path: path.to_path_buf(),
            step: "bring lo up",
            source,
        })
    })();
    // Closing stdin lets the child exit; it is ours, so on failure it is
    // also killed by its pid.
    drop(child.stdin.take());
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = io::Read::read_to_string(&mut e, &mut stderr);
    }
    result.map_err(|e| match e {
        NetnsError::UserNs { path, step, detail } if !stderr.trim().is_empty() => {
            NetnsError::UserNs { path, step, detail: format!("{detail} ({})", stderr.trim()) }
        }
        e => e,
    })?;
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(fail("the child", format!("exited with {s}: {}", stderr.trim()))),
        Err(e) => Err(fail("wait for the child", e.to_string())),
    }
}

/// On a thread of its own: a new network namespace, bind-mounted onto
/// `path`, with `lo` up. The thread exits; the mount keeps the namespace.
fn materialize(path: &Path) -> Result<(), NetnsError> {
    let fail = |step, source| NetnsError::Create { path: path.to_path_buf(), step, source };
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(s, || -> Result<(), NetnsError> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| fail("unshare(CLONE_NEWNET)", io_err(e)))?;
                mount(Some("/proc/thread-self/ns/net"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| fail("bind-mount /proc/thread-self/ns/net", io_err(e)))?;
                crate::link::loopback_up().map_err(|source| fail("bring lo up", source))
            })
            .map_err(|source| NetnsError::Thread { path: path.to_path_buf(), source })?;
        handle.join().map_err(|_| NetnsError::Panicked { path: path.to_path_buf() })?
    })
}

/// Unmounts (lazily, `MNT_DETACH`) and removes a namespace file. The
/// kernel frees the namespace, and the veth pairs in it, once no process
/// is left inside. Idempotent: a missing file, or a plain file left by a
/// crash between creating and mounting, is fine.
pub fn delete(path: &Path) -> Result<(), NetnsError> {
    let fail = |step, source| NetnsError::Delete { path: path.to_path_buf(), step, source };
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail("unmount", io_err(e))),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(fail("remove the file", source)),
    }
}

/// The namespace files in `dir` whose names start with `prefix`, sorted:
/// what a daemon left behind before a crash. A missing `dir` is empty.
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, NetnsError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(NetnsError::List { path: dir.to_path_buf(), source }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| NetnsError::List { path: dir.to_path_buf(), source })?;
        if entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Runs `f` on a new thread that has joined the network namespace at
/// `netns`; sockets it opens stay in that namespace after it returns.
/// The caller's threads never change namespace.
pub fn run_in<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let file = File::open(netns).map_err(|source| NetnsError::Open { path: netns.to_path_buf(), source })?;
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(s, move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetnsError::Enter { path: netns.to_path_buf(), source: io_err(e) })?;
                Ok(f())
            })
            .map_err(|source| NetnsError::Thread { path: netns.to_path_buf(), source })?;
        handle.join().map_err(|_| NetnsError::Panicked { path: netns.to_path_buf() })?
    })
}

/// Named network namespaces in one directory, behind a trait so the
/// daemon's tests can use [`FakeNamespaces`].
pub trait Namespaces: Send + Sync {
    /// See [`create`].
    fn create(&self, name: &str) -> Result<PathBuf, NetnsError>;
    /// See [`create_owned`].
    fn create_owned(&self, name: &str, mapping: IdMapping) -> Result<PathBuf, NetnsError>;
    /// Where the user namespace of `create_owned(name, ..)` is kept (the
    /// path runc joins it by); it exists only while that namespace does.
    fn userns_path(&self, name: &str) -> PathBuf;
    /// See [`delete`]; also removes the namespace's user namespace, if it
    /// has one of its own. Idempotent.
    fn delete(&self, path: &Path) -> Result<(), NetnsError>;
    /// See [`list`].
    fn list(&self, prefix: &str) -> Result<Vec<PathBuf>, NetnsError>;
}

/// The real [`Namespaces`]: bind mounts under a directory (`/run/netns`
/// for the daemon, a temporary directory in tests), and the user
/// namespaces of [`create_owned`] under a second one.
#[derive(Debug, Clone)]
pub struct NetnsDir {
    dir: PathBuf,
    userns_dir: PathBuf,
}

impl NetnsDir {
    pub fn new(dir: impl Into<PathBuf>, userns_dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), userns_dir: userns_dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Namespaces for NetnsDir {
    fn create(&self, name: &str) -> Result<PathBuf, NetnsError> {
        create(&self.dir, name)
    }

    fn create_owned(&self, name: &str, mapping: IdMapping) -> Result<PathBuf, NetnsError> {
        create_owned(&self.dir, &self.userns_dir, name, mapping)
    }

    fn userns_path(&self, name: &str) -> PathBuf {
        self.userns_dir.join(name)
    }

    fn delete(&self, path: &Path) -> Result<(), NetnsError> {
        let netns = delete(path);
        let user = match path.file_name() {
            Some(name) => delete(&self.userns_dir.join(name)),
            None => Ok(()),
        };
        netns.and(user)
    }

    fn list(&self, prefix: &str) -> Result<Vec<PathBuf>, NetnsError> {
        list(&self.dir, prefix)
    }
}

/// Keeps namespace paths in memory; the paths it hands out do not exist.
#[derive(Debug, Default)]
pub struct FakeNamespaces {
    dir: PathBuf,
    live: Mutex<Vec<PathBuf>>,
    owners: Mutex<Vec<(PathBuf, IdMapping)>>,
}

impl FakeNamespaces {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), ..Self::default() }
    }

    /// The namespaces created and not deleted.
    pub fn live(&self) -> Vec<PathBuf> {
        self.live.lock().expect("fake lock").clone()
    }

    /// The mapping of the user namespace that owns `path`, if it was made
    /// by `create_owned` and not deleted.
    pub fn owner(&self, path: &Path) -> Option<IdMapping> {
        self.owners.lock().expect("fake lock").iter().find(|(p, _)| p == path).map(|(_, m)| *m)
    }
}

impl Namespaces for FakeNamespaces {
    fn create(&self, name: &str) -> Result<PathBuf, NetnsError> {
        check_name(name)?;
        let path = self.dir.join(name);
        let mut live = self.live.lock().expect("fake lock");
        if live.contains(&path) {
            return Err(NetnsError::Exists { path });
        }
        live.push(path.clone());
        live.sort();
        Ok(path)
    }

    fn create_owned(&self, name: &str, mapping: IdMapping) -> Result<PathBuf, NetnsError> {
        let path = self.create(name)?;
        self.owners.lock().expect("fake lock").push((path.clone(), mapping));
        Ok(path)
    }

    fn userns_path(&self, name: &str) -> PathBuf {
        self.dir.join("userns").join(name)
    }

    fn delete(&self, path: &Path) -> Result<(), NetnsError> {
        self.live.lock().expect("fake lock").retain(|p| p != path);
        self.owners.lock().expect("fake lock").retain(|(p, _)| p != path);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<PathBuf>, NetnsError> {
        let live = self.live.lock().expect("fake lock");
        Ok(live
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n.as_bytes().starts_with(prefix.as_bytes())))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["bt-1234-web", "a", "x.y_z"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", &"n".repeat(65)] {
            let err = check_name(bad).unwrap_err();
            assert!(err.to_string().contains("invalid network namespace name"), "{bad}: {err}");
        }
    }

    #[test]
    fn list_of_a_missing_dir_is_empty() {
        assert!(list(Path::new("/nonexistent/berth-netns"), "b").unwrap().is_empty());
    }

    #[test]
    fn delete_of_nothing_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        delete(&dir.path().join("gone")).unwrap();
    }

    #[test]
    fn fake_keeps_what_was_created() {
        let ns = FakeNamespaces::new("/run/netns");
        let a = ns.create("bt-a").unwrap();
        ns.create("other").unwrap();
        assert!(matches!(ns.create("bt-a"), Err(NetnsError::Exists { .. })));
        assert_eq!(ns.list("bt-").unwrap(), vec![a.clone()]);
        ns.delete(&a).unwrap();
        ns.delete(&a).unwrap();
        assert!(ns.list("bt-").unwrap().is_empty());
        assert_eq!(ns.live(), vec![PathBuf::from("/run/netns/other")]);
    }
}
