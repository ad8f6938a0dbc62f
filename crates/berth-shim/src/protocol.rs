//! What the shim leaves in its state directory, and how the daemon reads it.
//!
//! - `shim.pid`: the shim's PID, written first.
//! - `shim.json`: its [`ShimIdentity`] (PID, start time, boot ID), written
//!   right after, so a later process with the same PID is never taken for it.
//! - `cgroup.error`: why the shim could not leave the daemon's cgroup, if
//!   it could not.
//! - `init.pid`: the container init's PID, written by the runtime on create.
//! - `started`: present once the runtime started the process.
//! - `exit.json`: the [`ExitRecord`], written atomically when it ended.
//! - `runtime.log`: the runtime's own JSON log (why a create failed).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::ShimIdentity;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code as a shell reports it: the status, or 128 + signal.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    /// RFC 3339 with nanoseconds.
    pub finished_at: String,
    /// Whether the cgroup's OOM killer ended a process in it.
    pub oom_killed: bool,
    /// Set when the container never ran: what went wrong.
    pub error: Option<String>,
    /// The shim that wrote it (absent from records of older shims and from
    /// those the daemon writes itself): the daemon takes an exit only from
    /// the shim it started last, never from one of an earlier start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<i32>,
}

pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn shim_pid(&self) -> PathBuf {
        self.0.join("shim.pid")
    }
    pub fn shim_identity(&self) -> PathBuf {
        self.0.join("shim.json")
    }
    pub fn cgroup_error(&self) -> PathBuf {
        self.0.join("cgroup.error")
    }
    pub fn init_pid(&self) -> PathBuf {
        self.0.join("init.pid")
    }
    pub fn started(&self) -> PathBuf {
        self.0.join("started")
    }
    pub fn exit(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    pub fn runtime_log(&self) -> PathBuf {
        self.0.join("runtime.log")
    }

    pub fn read_pid(path: &Path) -> Option<i32> {
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    pub fn read_identity(&self) -> Option<ShimIdentity> {
        serde_json::from_slice(&fs::read(self.shim_identity()).ok()?).ok()
    }

    pub fn read_exit(&self) -> Option<ExitRecord> {
        serde_json::from_slice(&fs::read(self.exit()).ok()?).ok()
    }

    /// Writes `exit.json` durably: temporary file, fsync, rename, fsync dir.
    pub fn write_exit(&self, rec: &ExitRecord) -> std::io::Result<()> {
        write_private(&self.exit(), &serde_json::to_vec(rec).expect("exit record serialises"))
    }

    /// The last error message the runtime logged, for a failed create.
    pub fn runtime_error(&self) -> Option<String> {
        let text = fs::read_to_string(self.runtime_log()).ok()?;
        text.lines().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or_default().to_string())
        })
    }
}

/// Writes a file durably and atomically: temporary file, fsync, rename,
/// fsync of the directory. The mode follows the umask (0644 as a rule):
/// for files a container reads, like its `/etc/hosts`.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, data, 0o666)
}

/// [`write_atomic`] readable by the owner only (0600), from the first byte:
/// for anything holding configuration or secrets.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, data, 0o600)
}

fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    if mode & 0o077 == 0 {
        // A temporary file left by a crash keeps its old mode on open.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_others_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("config.json");
        fs::write(private.with_extension("tmp"), b"left by a crash").unwrap();
        write_private(&private, b"{}").unwrap();
        assert_eq!(fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        write_private(&private, b"{\"again\":1}").unwrap();
        assert_eq!(fs::read(&private).unwrap(), b"{\"again\":1}");
        let public = dir.path().join("hosts");
        write_atomic(&public, b"127.0.0.1 localhost\n").unwrap();
        assert_eq!(fs::metadata(&public).unwrap().permissions().mode() & 0o044, 0o044 & !umask());
    }

    fn umask() -> u32 {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(old);
        old.bits()
    }

    #[test]
    fn identities_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir(dir.path().to_path_buf());
        assert!(s.read_identity().is_none());
        let id = ShimIdentity { pid: 7, start_time: 99, boot_id: "b".into() };
        write_private(&s.shim_identity(), &serde_json::to_vec(&id).unwrap()).unwrap();
        assert_eq!(s.read_identity(), Some(id));
    }

    #[test]
    fn exit_records_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir(dir.path().to_path_buf());
        assert!(s.read_exit().is_none());
        let rec = ExitRecord {
            code: 137,
            signal: Some(9),
            finished_at: "t".into(),
            oom_killed: true,
            error: None,
            shim_pid: Some(7),
        };
        s.write_exit(&rec).unwrap();
        assert_eq!(s.read_exit().unwrap(), rec);
        assert!(!s.exit().with_extension("tmp").exists());
    }

    #[test]
    fn runtime_errors_are_found_in_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir(dir.path().to_path_buf());
        fs::write(
            s.runtime_log(),
            "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": not found\"}\n",
        )
        .unwrap();
        assert_eq!(s.runtime_error().unwrap(), "exec: \"nope\": not found");
    }
}
