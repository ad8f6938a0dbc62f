//! `exec -it`: the user's terminal joined to a pseudo-terminal in the
//! container, over an upgraded connection carrying `berth_core::frames`.

use std::io::{Read, Write};

use berth_core::api::ExecTtyRequest;
use berth_core::frames::{Decoder, Frame};
use rustix::termios::{self, OptionalActions, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::ExecArgs;
use crate::client::{segment, CliError, Client, Result};

/// Puts the terminal on standard input into raw mode (keys go through
/// as typed, Ctrl-C included) and restores it when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)
            .map_err(|e| CliError::Other(format!("cannot read the terminal's settings: {e}")))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)
            .map_err(|e| CliError::Other(format!("cannot put the terminal into raw mode: {e}")))?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

fn window_size() -> Option<(u16, u16)> {
    termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin()))
        .ok()
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map(|w| (w.ws_col, w.ws_row))
}

pub async fn exec(client: &Client, a: ExecArgs) -> Result<i32> {
    if a.interactive && !termios::isatty(std::io::stdin()) {
        return Err(CliError::Other(
            "the input device is not a TTY: -it needs a terminal on standard input; to pipe input, use -i without -t"
                .into(),
        ));
    }
    let size = window_size();
    let req = ExecTtyRequest {
        cmd: a.command,
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        cols: size.map(|s| s.0),
        rows: size.map(|s| s.1),
    };
    let path = format!("/v1/containers/{}/exec/tty", segment(&a.container));
    let conn = client.upgrade(&path, &req, "berth-exec").await?;
    let _raw = if a.interactive { Some(RawMode::enter()?) } else { None };
    let (mut from_daemon, mut to_daemon) = tokio::io::split(conn);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Frame>(16);
    if a.interactive {
        // A plain thread: a blocking read of stdin must not keep the
        // runtime from shutting down when the command ends.
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.blocking_send(Frame::StdinClosed);
                        return;
                    }
                    Ok(n) => {
                        if tx.blocking_send(Frame::Stdin(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut winch) = signal(SignalKind::window_change()) else { return };
            while winch.recv().await.is_some() {
                if let Some((cols, rows)) = window_size() {
                    if tx.send(Frame::Resize { cols, rows }).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if to_daemon.write_all(&f.encode()).await.is_err() {
                return;
            }
        }
    });

    let mut frames = Decoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdout = std::io::stdout();
    loop {
        let n = from_daemon
            .read(&mut buf)
            .await
            .map_err(|e| CliError::Unreachable(format!("the connection to the daemon broke: {e}")))?;
        if n == 0 {
            return Err(CliError::Unreachable("the daemon ended the session without an exit code".into()));
        }
        frames.push(&buf[..n]);
        while let Some(f) = frames.next_frame().map_err(|e| CliError::Other(e.to_string()))? {
            match f {
                Frame::Output(bytes) => {
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                }
                Frame::Exit(code) => return Ok(code),
                Frame::Error(e) => return Err(CliError::Other(e)),
                Frame::Stdin(_) | Frame::Resize { .. } | Frame::StdinClosed => {}
            }
        }
    }
}
