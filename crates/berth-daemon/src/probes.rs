//! Running one probe (Kubernetes semantics): `exec` in the container,
//! `httpGet` (2xx and 3xx succeed, redirects are not followed, HTTPS
//! certificates are not checked, as the kubelet does), `tcpSocket` (a
//! connection is enough) and `grpc` (the standard `grpc.health.v1` check,
//! SERVING succeeds). What the results mean over time is
//! `berth_control::ProbeTracker`'s business; this only measures.

use std::net::Ipv4Addr;
use std::time::Duration;

use berth_control::ProbeResult;
use berth_manifest::model::{HttpGet, ProbeHandler, Scheme};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The most a gRPC health answer may hold (a `HealthCheckResponse` is a
/// few bytes; anything near this is not one).
pub const MAX_GRPC_BODY: usize = 64 << 10;

/// Reads an HTTP answer's body up to `max` bytes, chunk by chunk: a pod
/// (or a Prometheus server) answering endlessly costs at most `max` bytes.
/// `Err` names the cap when the body is longer.
pub async fn body_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("the answer is longer than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Where a probe is aimed: the container (for `exec`) and its pod's
/// address (for the network probes).
pub struct Target<'a> {
    pub container: &'a str,
    pub ip: Option<Ipv4Addr>,
}

/// Probes that reach a pod over the network (`httpGet`, `tcpSocket`,
/// `grpc`): [`SocketProbes`] for real, [`FakeProbes`] in tests.
pub trait NetProbes: Send + Sync {
    /// Runs a network `handler` against `ip` (an `exec` handler is the
    /// caller's: it goes through the container service).
    fn probe<'a>(
        &'a self,
        ip: Ipv4Addr,
        handler: &'a ProbeHandler,
        timeout: Duration,
    ) -> futures::future::BoxFuture<'a, (ProbeResult, String)>;
}

/// Probes over the host's sockets.
#[derive(Debug, Default, Clone, Copy)]
pub struct SocketProbes;

impl NetProbes for SocketProbes {
    fn probe<'a>(
        &'a self,
        ip: Ipv4Addr,
        handler: &'a ProbeHandler,
        timeout: Duration,
    ) -> futures::future::BoxFuture<'a, (ProbeResult, String)> {
        Box::pin(async move {
            match handler {
                ProbeHandler::HttpGet(h) => http_get(ip, h, timeout).await,
                ProbeHandler::TcpSocket { port } => tcp(ip, *port).await,
                ProbeHandler::Grpc { port, service } => grpc(ip, *port, service.as_deref().unwrap_or("")).await,
                ProbeHandler::Exec { .. } => (ProbeResult::Failure, "an exec probe has no network form".into()),
            }
        })
    }
}

/// Answers network probes as told per port (success unless told
/// otherwise), recording each `ip:port` asked.
#[derive(Debug, Default)]
pub struct FakeProbes {
    answers: std::sync::Mutex<std::collections::BTreeMap<u16, ProbeResult>>,
    asked: std::sync::Mutex<Vec<(Ipv4Addr, u16)>>,
}

impl FakeProbes {
    /// From now on, probes of `port` (at any address) answer `result`.
    pub fn answer(&self, port: u16, result: ProbeResult) {
        self.answers.lock().unwrap_or_else(|p| p.into_inner()).insert(port, result);
    }

    pub fn asked(&self) -> Vec<(Ipv4Addr, u16)> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl NetProbes for FakeProbes {
    fn probe<'a>(
        &'a self,
        ip: Ipv4Addr,
        handler: &'a ProbeHandler,
        _timeout: Duration,
    ) -> futures::future::BoxFuture<'a, (ProbeResult, String)> {
        let port = match handler {
            ProbeHandler::HttpGet(h) => h.port,
            ProbeHandler::TcpSocket { port } | ProbeHandler::Grpc { port, .. } => *port,
            ProbeHandler::Exec { .. } => 0,
        };
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).push((ip, port));
        let result = self.answers.lock().unwrap_or_else(|p| p.into_inner()).get(&port).copied();
        let result = result.unwrap_or(ProbeResult::Success);
        let detail = if result == ProbeResult::Success { String::new() } else { format!("{ip}:{port} told to fail") };
        Box::pin(async move { (result, detail) })
    }
}

/// Runs `handler` once against `target`, within `timeout`.
pub async fn run(
    containers: &crate::containers::Containers,
    net: &dyn NetProbes,
    handler: &ProbeHandler,
    target: &Target<'_>,
    timeout: Duration,
) -> (ProbeResult, String) {
    let measured = tokio::time::timeout(timeout, async {
        match (handler, target.ip) {
            (ProbeHandler::Exec { command }, _) => exec(containers, target.container, command).await,
            (_, Some(ip)) => net.probe(ip, handler, timeout).await,
            (_, None) => (ProbeResult::Failure, "the pod has no address to probe".into()),
        }
    })
    .await;
    measured.unwrap_or_else(|_| (ProbeResult::Timeout, format!("no answer within {} ms", timeout.as_millis())))
}

async fn exec(
    containers: &crate::containers::Containers,
    container: &str,
    command: &[String],
) -> (ProbeResult, String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    // Output is not kept (a probe's output is not a log), only drained.
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let req = berth_core::api::ExecRequest { cmd: command.to_vec(), ..Default::default() };
    let result = containers.exec(container, req, tx).await;
    let _ = drain.await;
    match result {
        Ok(0) => (ProbeResult::Success, String::new()),
        Ok(code) => (ProbeResult::Failure, format!("command exited with {code}")),
        Err(e) => (ProbeResult::Failure, e.to_string()),
    }
}

async fn http_get(ip: Ipv4Addr, h: &HttpGet, timeout: Duration) -> (ProbeResult, String) {
    let scheme = match h.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let path = if h.path.starts_with('/') { h.path.clone() } else { format!("/{}", h.path) };
    let url = format!("{scheme}://{ip}:{}{path}", h.port);
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .timeout(timeout)
        .user_agent("berth-probe/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => return (ProbeResult::Failure, format!("cannot build the HTTP client: {e}")),
    };
    let mut req = client.get(&url);
    for (name, value) in &h.headers {
        req = req.header(name, value);
    }
    match req.send().await {
        Ok(resp) if (200..400).contains(&resp.status().as_u16()) => (ProbeResult::Success, String::new()),
        Ok(resp) => (ProbeResult::Failure, format!("HTTP probe failed with statuscode: {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => (ProbeResult::Timeout, format!("GET {url}: no answer in time")),
        Err(e) => (ProbeResult::Failure, format!("GET {url}: {e}")),
    }
}

async fn tcp(ip: Ipv4Addr, port: u16) -> (ProbeResult, String) {
    match tokio::net::TcpStream::connect((ip, port)).await {
        Ok(_) => (ProbeResult::Success, String::new()),
        Err(e) => (ProbeResult::Failure, format!("dial tcp {ip}:{port}: {e}")),
    }
}

/// `grpc.health.v1.Health/Check` over HTTP/2 without TLS.
async fn grpc(ip: Ipv4Addr, port: u16, service: &str) -> (ProbeResult, String) {
    let fail = |why: String| (ProbeResult::Failure, format!("gRPC health check on {ip}:{port}: {why}"));
    let stream = match tokio::net::TcpStream::connect((ip, port)).await {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = match hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await
    {
        Ok(pair) => pair,
        Err(e) => return fail(e.to_string()),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::post(format!("http://{ip}:{port}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(health_request(service))))
        .expect("static request");
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let header_status = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_string);
    let collected = match http_body_util::Limited::new(resp.into_body(), MAX_GRPC_BODY).collect().await {
        Ok(c) => c,
        Err(e) => return fail(format!("{e} (the answer may hold at most {MAX_GRPC_BODY} bytes)")),
    };
    let trailer_status =
        collected.trailers().and_then(|t| t.get("grpc-status")).and_then(|v| v.to_str().ok()).map(str::to_string);
    match trailer_status.or(header_status).as_deref() {
        Some("0") => {}
        Some(code) => return fail(format!("status code {code}")),
        None => return fail("no grpc-status in the answer".into()),
    }
    match health_status(&collected.to_bytes()) {
        Some(1) => (ProbeResult::Success, String::new()),
        Some(s) => fail(format!("service is not serving (status {s})")),
        None => fail("unreadable HealthCheckResponse".into()),
    }
}

/// A length-prefixed `HealthCheckRequest { service }` message.
fn health_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend(msg);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The `status` of a length-prefixed `HealthCheckResponse` (0 when absent,
/// as protobuf defaults it).
fn health_status(frame: &[u8]) -> Option<u64> {
    let len = u32::from_be_bytes(frame.get(1..5)?.try_into().ok()?) as usize;
    let mut msg = frame.get(5..5 + len)?;
    let mut status = 0;
    while let Some((&tag, rest)) = msg.split_first() {
        let (value, rest) = varint(rest)?;
        match tag {
            0x08 => status = value,
            // Any other varint field is skipped; other wire types are not
            // in this message.
            t if t & 0x07 == 0 => {}
            _ => return None,
        }
        msg = rest;
    }
    Some(status)
}

fn varint(mut bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value, bytes));
        }
    }
    None
}

#[cfg(test)]
mod tests;
