//! What the shim leaves in its state directory, and how the daemon reads it.
//!
//! - `shim.pid`: the shim's PID, written first.
//! - `init.pid`: the container init's PID, written by the runtime on create.
//! - `started`: present once the runtime started the process.
//! - `exit.json`: the [`ExitRecord`], written atomically when it ended.
//! - `runtime.log`: the runtime's own JSON log (why a create failed).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
}

pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn shim_pid(&self) -> PathBuf {
        self.0.join("shim.pid")
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

    pub fn read_exit(&self) -> Option<ExitRecord> {
        serde_json::from_slice(&fs::read(self.exit()).ok()?).ok()
    }

    /// Writes `exit.json` durably: temporary file, fsync, rename, fsync dir.
    pub fn write_exit(&self, rec: &ExitRecord) -> std::io::Result<()> {
        write_atomic(&self.exit(), &serde_json::to_vec(rec).expect("exit record serialises"))
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

pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
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

/// Whether a process with this PID exists (signal 0).
pub fn alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_records_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir(dir.path().to_path_buf());
        assert!(s.read_exit().is_none());
        let rec = ExitRecord { code: 137, signal: Some(9), finished_at: "t".into(), oom_killed: true, error: None };
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
