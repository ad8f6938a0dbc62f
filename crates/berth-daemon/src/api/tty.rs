//! The upgraded connection of `exec -it`: frames between the client and the
//! master end of the process's pseudo-terminal.

use std::time::Duration;

use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use berth_core::frames::{Decoder, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::error::ApiError;
use crate::containers::TtySession;

/// The protocol name in `Upgrade:`.
pub const PROTOCOL: &str = "berth-exec";

/// The pending switch of the request's connection to [`PROTOCOL`].
pub struct Upgrade(pub hyper::upgrade::OnUpgrade);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let asked = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(PROTOCOL));
        if !asked {
            return Err(ApiError::BadRequest(format!(
                "this endpoint needs an upgraded connection: send Connection: Upgrade and Upgrade: {PROTOCOL} \
                 (as berth exec -it does)"
            )));
        }
        parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .map(Upgrade)
            .ok_or_else(|| ApiError::BadRequest("this connection cannot be upgraded".into()))
    }
}

pub fn switching_protocols() -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, PROTOCOL)
        .body(axum::body::Body::empty())
        .expect("static response")
}

/// Carries frames until the process ends; returns its exit code (also sent
/// to the client as the last frame). A client that goes away hangs up the
/// terminal, as closing a terminal window does.
pub async fn pump<IO>(io: IO, session: TtySession) -> i32
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let TtySession { master, mut child, .. } = session;
    let (mut rd, mut wr) = tokio::io::split(io);
    // The master end, non-blocking, once for reading and once for writing
    // (tokio's pipe types work for any stream-like descriptor).
    let halves = rustix::io::ioctl_fionbio(&master, true)
        .map_err(std::io::Error::from)
        .and_then(|()| master.try_clone())
        .and_then(|read_end| {
            Ok((pipe::Receiver::from_file_unchecked(read_end)?, pipe::Sender::from_file_unchecked(master)?))
        });
    let (mut from_tty, mut to_tty) = match halves {
        Ok(h) => h,
        Err(e) => {
            let _ = wr.write_all(&Frame::Error(format!("cannot use the terminal: {e}")).encode()).await;
            let _ = child.start_kill();
            return 126;
        }
    };

    // One writer, so output and the final frame never interleave.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if wr.write_all(&f.encode()).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });

    let output = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from_tty.read(&mut buf).await {
                    // EIO: every holder of the terminal's other end is gone.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Frame::Output(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };

    let runtime_pid = child.id();
    let input = {
        tokio::spawn(async move {
            let mut frames = Decoder::default();
            let mut buf = vec![0u8; 16 * 1024];
            'conn: loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                frames.push(&buf[..n]);
                loop {
                    match frames.next_frame() {
                        Ok(Some(Frame::Stdin(bytes))) => {
                            if to_tty.write_all(&bytes).await.is_err() {
                                break 'conn;
                            }
                        }
                        Ok(Some(Frame::Resize { cols, rows })) => {
                            let _ = crate::containers::resize(&to_tty, cols, rows);
                            // The runtime copies the size to the process's own
                            // terminal when told.
                            if let Some(pid) = runtime_pid {
                                let pid = nix::unistd::Pid::from_raw(pid as i32);
                                let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGWINCH);
                            }
                        }
                        // End of input on a terminal is the EOF character.
                        Ok(Some(Frame::StdinClosed)) => {
                            let _ = to_tty.write_all(&[4]).await;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "exec -it: bad frame from the client; hanging up");
                            break 'conn;
                        }
                    }
                }
            }
            // runc forwards the hangup to the process it runs.
            if let Some(pid) = runtime_pid {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGHUP);
            }
        })
    };

    let code = match child.wait().await {
        Ok(s) => s.code().unwrap_or(128 + 9),
        Err(_) => 255,
    };
    // Output still in the terminal arrives first; processes the command
    // left behind cannot hold the session open for long.
    let _ = tokio::time::timeout(Duration::from_secs(2), output).await;
    input.abort();
    let _ = tx.send(Frame::Exit(code)).await;
    drop(tx);
    let _ = writer.await;
    code
}
