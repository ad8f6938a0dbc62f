//! Relaying a query to the host's resolvers and their answer back.
//!
//! The query goes out byte for byte (EDNS, DO bit and all) with a fresh
//! random ID from a fresh socket (random source port), and the answer comes
//! back byte for byte with the client's ID restored. Nothing is cached here:
//! the upstream (often systemd-resolved or a site resolver) caches already.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::answer::Transport;

/// Why one upstream gave no usable answer.
#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("answered {0}")]
    Failed(ResponseCode),
    #[error("answer of {0} bytes does not fit a DNS message over TCP")]
    TooLong(usize),
}

/// Why a query could not be forwarded; the client gets SERVFAIL.
#[derive(Debug, Error)]
pub enum ForwardError {
    #[error(
        "no upstream resolvers are configured; add nameserver lines to the host's \
         resolv.conf and restart the daemon"
    )]
    NoUpstreams,
    #[error("every upstream resolver failed: {}", list(.0))]
    AllFailed(Vec<(SocketAddr, UpstreamError)>),
}

fn list(failures: &[(SocketAddr, UpstreamError)]) -> String {
    failures.iter().map(|(upstream, err)| format!("{upstream}: {err}")).collect::<Vec<_>>().join("; ")
}

/// Asks each upstream in order, `timeout` each, and returns the first
/// answer that is not SERVFAIL or REFUSED, with `request`'s ID.
pub async fn forward(
    query: &[u8],
    request: &Message,
    upstreams: &[SocketAddr],
    timeout: Duration,
    via: Transport,
) -> Result<Vec<u8>, ForwardError> {
    if upstreams.is_empty() {
        return Err(ForwardError::NoUpstreams);
    }
    let mut failures = Vec::new();
    for &upstream in upstreams {
        let id: u16 = rand::random();
        let mut out = query.to_vec();
        out[..2].copy_from_slice(&id.to_be_bytes());
        let attempt = async {
            match via {
                Transport::Udp => exchange_udp(upstream, &out, id, request).await,
                Transport::Tcp => exchange_tcp(upstream, &out, id, request).await,
            }
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        };
        match result {
            Ok(mut answer) => {
                answer[..2].copy_from_slice(&request.metadata.id.to_be_bytes());
                return Ok(answer);
            }
            Err(err) => {
                tracing::debug!(%upstream, error = %err, "upstream resolver failed; trying the next");
                failures.push((upstream, err));
            }
        }
    }
    Err(ForwardError::AllFailed(failures))
}

async fn exchange_udp(upstream: SocketAddr, out: &[u8], id: u16, request: &Message) -> Result<Vec<u8>, UpstreamError> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from anyone else and reports
    // an unreachable port at once, so a dead upstream fails fast.
    socket.connect(upstream).await?;
    socket.send(out).await?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let n = socket.recv(&mut buf).await?;
        if let Some(answer) = accept(&buf[..n], id, request)? {
            return Ok(answer);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, out: &[u8], id: u16, request: &Message) -> Result<Vec<u8>, UpstreamError> {
    let len = u16::try_from(out.len()).map_err(|_| UpstreamError::TooLong(out.len()))?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(out.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(out);
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await?;
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await?;
        if let Some(answer) = accept(&buf, id, request)? {
            return Ok(answer);
        }
    }
}

/// `Ok(Some)` for the answer to our query, `Ok(None)` for anything else
/// (a stray or spoofed datagram: keep waiting), `Err` for a failure answer.
fn accept(bytes: &[u8], id: u16, request: &Message) -> Result<Option<Vec<u8>>, UpstreamError> {
    let Ok(answer) = Message::from_vec(bytes) else {
        return Ok(None);
    };
    if answer.metadata.id != id
        || answer.metadata.message_type != MessageType::Response
        || answer.queries != request.queries
    {
        return Ok(None);
    }
    match answer.metadata.response_code {
        code @ (ResponseCode::ServFail | ResponseCode::Refused) => Err(UpstreamError::Failed(code)),
        _ => Ok(Some(bytes.to_vec())),
    }
}
