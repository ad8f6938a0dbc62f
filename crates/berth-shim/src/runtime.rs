//! The OCI runtime (runc, crun, youki: they share a command line) behind a
//! narrow trait, so the daemon's logic can be tested with a fake.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot run the OCI runtime {binary}: {source}; install it (Debian: runc) or set runtime in the config")]
    Spawn { binary: String, source: std::io::Error },
    #[error("{binary} {action} {id} failed: {detail}")]
    Failed { binary: String, action: &'static str, id: String, detail: String },
}

/// What the runtime reports about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    pub pid: i32,
}

pub trait OciRuntime: Send + Sync {
    /// Sends `signal` to the container's init (or all its processes).
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError>;
    /// Deletes the runtime's record of the container; idempotent.
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    /// The runtime's view, or `None` if it does not know the container.
    fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError>;
    /// The command that runs `process` in container `id` (`runc exec`),
    /// not yet started: the caller sets its stdio, spawns and waits for
    /// it. With `tty`, the runtime gives the process a terminal of its own
    /// and must itself run on a terminal.
    fn exec_command(&self, id: &str, process: &ExecProcess) -> Command;
    /// `ps ARGS` over the container's processes (`runc ps`): ps's output.
    fn ps(&self, id: &str, args: &[&str]) -> Result<String, RuntimeError>;
}

/// A process to run in a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecProcess {
    pub args: Vec<String>,
    /// `KEY=VALUE`, added to the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
}

/// A runc-compatible runtime binary with its own state root.
#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    /// `--root`: where the runtime keeps its state (under berth's run root).
    pub root: PathBuf,
}

impl Runc {
    pub fn new(binary: &Path, root: &Path) -> Self {
        Self { binary: binary.to_path_buf(), root: root.to_path_buf() }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    fn run(&self, action: &'static str, id: &str, args: &[&str]) -> Result<String, RuntimeError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RuntimeError::Spawn { binary: self.binary.display().to_string(), source })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(RuntimeError::Failed {
                binary: self.binary.display().to_string(),
                action,
                id: id.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

impl OciRuntime for Runc {
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run("kill", id, &args).map(|_| ())
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        // runc keeps one directory per container under its root; without it
        // there is nothing to delete, and a process spawn is saved.
        if !self.root.join(id).exists() {
            return Ok(());
        }
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        match self.run("delete", id, &args) {
            Ok(_) => Ok(()),
            Err(RuntimeError::Failed { detail, .. })
                if detail.contains("does not exist") || detail.contains("not exist") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn exec_command(&self, id: &str, p: &ExecProcess) -> Command {
        let mut cmd = self.command();
        cmd.arg("exec").arg("--user").arg(format!("{}:{}", p.uid, p.gid));
        for g in &p.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
        for e in &p.env {
            cmd.arg("--env").arg(e);
        }
        if let Some(cwd) = &p.cwd {
            cmd.arg("--cwd").arg(cwd);
        }
        if p.tty {
            cmd.arg("--tty");
        }
        cmd.arg(id).args(&p.args);
        cmd
    }

    fn ps(&self, id: &str, args: &[&str]) -> Result<String, RuntimeError> {
        let mut all = vec!["ps", id];
        all.extend_from_slice(args);
        self.run("ps", id, &all)
    }

    fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError> {
        match self.run("state", id, &["state", id]) {
            Ok(out) => {
                let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| RuntimeError::Failed {
                    binary: self.binary.display().to_string(),
                    action: "state",
                    id: id.to_string(),
                    detail: format!("unreadable state: {e}"),
                })?;
                Ok(Some(RuntimeState {
                    status: v["status"].as_str().unwrap_or("unknown").to_string(),
                    pid: v["pid"].as_i64().unwrap_or(0) as i32,
                }))
            }
            Err(RuntimeError::Failed { detail, .. })
                if detail.contains("does not exist") || detail.contains("not exist") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
