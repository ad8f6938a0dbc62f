//! A small HTTP/1.1 client for the daemon's unix socket.

use std::path::{Path, PathBuf};

use berth_core::api::ErrorBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub enum CliError {
    /// The daemon could not be reached (exit 3).
    Unreachable(String),
    /// The daemon refused or failed the request (exit 1).
    Api { status: StatusCode, body: ErrorBody },
    /// Anything else the CLI itself detected (exit 1).
    Other(String),
    /// Arguments clap accepted but that make no sense together, or name
    /// something that does not exist (exit 2, as clap's own errors).
    Usage(String),
    /// A failure already reported on stderr (exit 1).
    Silent,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) | Self::Other(m) | Self::Usage(m) => f.write_str(m),
            Self::Silent => Ok(()),
            Self::Api { body, .. } => f.write_str(&body.error),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Unreachable(_) => 3,
            Self::Usage(_) => 2,
            Self::Api { .. } | Self::Other(_) | Self::Silent => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

pub struct Client {
    socket: PathBuf,
}

/// Percent-encodes a path segment (image names hold `/`, `:` and `@`).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_path_buf() }
    }

    async fn connect(&self) -> Result<UnixStream> {
        UnixStream::connect(&self.socket).await.map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => "is the daemon running?".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied: the socket is root-only; run as root".to_string(),
                _ => e.to_string(),
            };
            CliError::Unreachable(format!(
                "cannot reach the berth daemon at {} ({why}); start it with 'berth daemon', or point --socket / BERTH_SOCKET at its socket",
                self.socket.display()
            ))
        })
    }

    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response<Incoming>> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| {
            CliError::Unreachable(format!("cannot talk to the daemon at {}: {e}", self.socket.display()))
        })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder().method(method).uri(format!("http://berth{path}")).header("host", "berth");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req =
            req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| CliError::Other(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| CliError::Unreachable(format!("the daemon closed the connection: {e}")))
    }

    /// POSTs `body` asking to switch the connection to `protocol`; returns
    /// the raw connection once the daemon agreed (`101`).
    pub async fn upgrade<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        protocol: &str,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| {
            CliError::Unreachable(format!("cannot talk to the daemon at {}: {e}", self.socket.display()))
        })?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let body = serde_json::to_vec(body).expect("request serialises");
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("http://berth{path}"))
            .header("host", "berth")
            .header("content-type", "application/json")
            .header("connection", "Upgrade")
            .header("upgrade", protocol)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CliError::Other(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CliError::Unreachable(format!("the daemon closed the connection: {e}")))?;
        if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            Self::check(resp).await?;
            return Err(CliError::Other(format!("the daemon did not switch to {protocol}; is it the same version?")));
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| CliError::Unreachable(format!("the daemon dropped the upgraded connection: {e}")))?;
        Ok(TokioIo::new(upgraded))
    }

    async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
            error: format!("daemon answered {status}: {}", String::from_utf8_lossy(&bytes)),
            kind: "internal".into(),
        });
        Err(CliError::Api { status, body })
    }

    async fn json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
        let resp = Self::check(resp).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Other(format!("reading the daemon's answer: {e}")))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Other(format!(
                "the daemon's answer is not what this CLI expects ({e}); are CLI and daemon the same version?"
            ))
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Self::json(self.send(Method::GET, path, None).await?).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Self::json(self.send(Method::DELETE, path, None).await?).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let body = serde_json::to_vec(body).expect("request serialises");
        Self::json(self.send(Method::POST, path, Some(body)).await?).await
    }

    /// DELETE that expects no body back (204).
    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let body = serde_json::to_vec(body).expect("request serialises");
        Self::json(self.send(Method::PUT, path, Some(body)).await?).await
    }

    pub async fn delete_empty(&self, path: &str) -> Result<()> {
        Self::check(self.send(Method::DELETE, path, None).await?).await.map(|_| ())
    }

    /// GET that answers with JSON lines.
    pub async fn get_stream<T: DeserializeOwned>(&self, path: &str, on_line: impl FnMut(T)) -> Result<()> {
        let resp = Self::check(self.send(Method::GET, path, None).await?).await?;
        Self::lines(resp, on_line).await
    }

    /// POST that expects no body back (204).
    pub async fn post_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<()> {
        let body = serde_json::to_vec(body).expect("request serialises");
        Self::check(self.send(Method::POST, path, Some(body)).await?).await.map(|_| ())
    }

    /// POST that answers with JSON lines; `on_line` sees each parsed line.
    pub async fn post_stream<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        on_line: impl FnMut(T),
    ) -> Result<()> {
        let body = serde_json::to_vec(body).expect("request serialises");
        let resp = Self::check(self.send(Method::POST, path, Some(body)).await?).await?;
        Self::lines(resp, on_line).await
    }

    async fn lines<T: DeserializeOwned>(resp: Response<Incoming>, mut on_line: impl FnMut(T)) -> Result<()> {
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CliError::Unreachable(format!("the daemon's stream broke off: {e}")))?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let item = serde_json::from_slice(&line)
                        .map_err(|e| CliError::Other(format!("unexpected stream line from the daemon: {e}")))?;
                    on_line(item);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_encode_reference_punctuation() {
        assert_eq!(segment("127.0.0.1:5000/a/b:1"), "127.0.0.1%3A5000%2Fa%2Fb%3A1");
        assert_eq!(segment("busybox"), "busybox");
    }
}
