//! `exec`: a further process in a running container, through the runtime so
//! it joins the container's namespaces, cgroup, capabilities and seccomp.
//!
//! Without a terminal the process's stdout and stderr are pipes; with one
//! (`exec -it`) the runtime creates a pseudo-terminal inside the container
//! and hands its master end to us over a console socket (SCM_RIGHTS).

use std::os::fd::OwnedFd;

use base64::Engine as _;
use berth_core::api::{ExecEvent, ExecRequest, ExecTtyRequest};
use berth_shim::runtime::ExecProcess;
use berth_store::ContainerRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ContainerError, Containers, Result};

/// What the runtime needs to know about the process, shared by both forms.
struct ExecSpec<'a> {
    cmd: &'a [String],
    env: &'a [String],
    workdir: Option<&'a str>,
    user: Option<&'a str>,
}

/// A running `exec -it`: the terminal's master end and the runtime process
/// that waits for the command.
pub struct TtySession {
    pub master: std::fs::File,
    pub child: tokio::process::Child,
    pub container: ContainerRecord,
    pub cmd: String,
}

impl Containers {
    /// `runc exec` with the user, environment and directory checked.
    async fn exec_command(
        &self,
        c: &ContainerRecord,
        spec: &ExecSpec<'_>,
        tty: bool,
    ) -> Result<tokio::process::Command> {
        if spec.cmd.is_empty() {
            return Err(ContainerError::Invalid("exec needs a command".into()));
        }
        // The running container may have swapped its /etc/passwd for
        // anything: read it inside its root, bounded, off the workers.
        let creq = c.request.clone();
        let user_spec = spec.user.or(creq.user.as_deref());
        let rootfs = self.images.rootfs_path(&c.id);
        let wanted = user_spec.map(str::to_string);
        let (passwd, group) = tokio::task::spawn_blocking(move || super::user_files(&rootfs, wanted.as_deref()))
            .await
            .map_err(ContainerError::io("reading the container's user files"))??;
        let user = berth_runtime::resolve_user(user_spec, passwd.as_deref(), group.as_deref())
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        for e in spec.env {
            if !e.contains('=') {
                return Err(ContainerError::Invalid(format!("exec env {e:?} must be KEY=VALUE")));
            }
        }
        if let Some(w) = spec.workdir {
            if !w.starts_with('/') {
                return Err(ContainerError::Invalid(format!("exec workdir {w:?} must be absolute")));
            }
        }
        let process = ExecProcess {
            args: spec.cmd.to_vec(),
            env: spec.env.to_vec(),
            cwd: spec.workdir.map(str::to_string),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            tty,
        };
        let mut cmd = tokio::process::Command::from(self.runtime.exec_command(&c.id, &process));
        cmd.kill_on_drop(true);
        Ok(cmd)
    }

    /// Runs a process with piped output, sent to `out` as it comes; returns
    /// the exit code.
    pub async fn exec(&self, key: &str, req: ExecRequest, out: tokio::sync::mpsc::Sender<ExecEvent>) -> Result<i32> {
        let c = self.running(key)?;
        let spec =
            ExecSpec { cmd: &req.cmd, env: &req.env, workdir: req.workdir.as_deref(), user: req.user.as_deref() };
        let mut cmd = self.exec_command(&c, &spec, false).await?;
        let stdin = match &req.stdin {
            Some(b) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| ContainerError::Invalid("stdin is not valid base64".into()))?,
            ),
            None => None,
        };
        cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(ContainerError::io("cannot run the OCI runtime"))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        let pump = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    stream: &'static str,
                    out: tokio::sync::mpsc::Sender<ExecEvent>| async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let data = base64::engine::general_purpose::STANDARD.encode(&buf[..n]);
                        if out.send(ExecEvent::Output { stream: stream.into(), data }).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        let so = tokio::spawn(pump(Box::new(child.stdout.take().expect("piped")), "stdout", out.clone()));
        let se = tokio::spawn(pump(Box::new(child.stderr.take().expect("piped")), "stderr", out.clone()));
        let status = child.wait().await.map_err(ContainerError::io("waiting for the exec'd process"))?;
        let _ = so.await;
        let _ = se.await;
        let code = status.code().unwrap_or(128 + 9);
        self.event(&c, "exec", &[("cmd", req.cmd.join(" ")), ("exit_code", code.to_string())]);
        Ok(code)
    }

    /// Starts a process on a pseudo-terminal and returns the terminal's
    /// master end. The runtime runs in the foreground on a terminal of ours
    /// (so it reports the exit code and forwards signals, SIGWINCH included)
    /// and gives the process a terminal of its own inside the container.
    pub async fn exec_tty(&self, key: &str, req: ExecTtyRequest) -> Result<TtySession> {
        let c = self.running(key)?;
        let spec =
            ExecSpec { cmd: &req.cmd, env: &req.env, workdir: req.workdir.as_deref(), user: req.user.as_deref() };
        let mut cmd = self.exec_command(&c, &spec, true).await?;
        let (master, terminal) = open_pty().map_err(ContainerError::io("cannot open a terminal"))?;
        if let (Some(cols), Some(rows)) = (req.cols, req.rows) {
            let _ = resize(&master, cols, rows);
        }
        let stdio =
            || terminal.try_clone().map(std::process::Stdio::from).map_err(ContainerError::io("sharing the terminal"));
        cmd.stdin(stdio()?).stdout(stdio()?).stderr(stdio()?);
        let child = cmd.spawn().map_err(ContainerError::io("cannot run the OCI runtime"))?;
        // Only the runtime may hold the terminal now, so its end is ours to see.
        drop(cmd);
        drop(terminal);
        let cmd_line = req.cmd.join(" ");
        Ok(TtySession { master: std::fs::File::from(master), child, container: c, cmd: cmd_line })
    }

    /// Records the end of an `exec -it`.
    pub fn exec_ended(&self, session: &ContainerRecord, cmd: &str, code: i32) {
        self.event(session, "exec", &[("cmd", cmd.to_string()), ("exit_code", code.to_string())]);
    }
}

/// Sets the terminal's size; the process gets SIGWINCH.
pub fn resize(master: &impl std::os::fd::AsFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(master, size).map_err(std::io::Error::from)
}

/// A new pseudo-terminal: (master, terminal).
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let terminal = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    Ok((master, terminal))
}
