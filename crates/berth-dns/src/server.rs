//! The UDP and TCP listeners of one network's DNS server.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::answer::{self, Outcome, Policy, Transport};
use crate::forward::forward;
use crate::name::normalize;
use crate::records::Records;

/// Forwarded UDP queries in flight at once; beyond that a query gets
/// SERVFAIL at once rather than queueing behind a slow upstream.
const MAX_UDP_FORWARDS: usize = 256;
/// TCP connections served at once; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// At most one "upstreams failed" warning per server in this interval.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Tries to find a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 16;

/// How one network's server answers. [`DnsConfig::new`] gives the
/// defaults; the daemon sets the fields it cares about.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Resolvers for names that are not ours, asked in order; usually
    /// [`upstreams_from_resolv_conf`](crate::upstreams_from_resolv_conf) of
    /// the host's file. Empty: unknown names get SERVFAIL.
    pub upstreams: Vec<SocketAddr>,
    /// How long to wait for each upstream before trying the next.
    /// Default 2 s: a live resolver answers well within it, and with one
    /// dead upstream ahead of a live one the client still gets its answer
    /// inside glibc's 5 s query timeout.
    pub upstream_timeout: Duration,
    /// TTL of local answers. Default 0: the answer comes from memory on
    /// the same host, so caching saves nothing, and any cache in the
    /// container would delay renames and removals.
    pub ttl: u32,
    /// Zones that are entirely ours (e.g. `cluster.local`): unknown names
    /// under them get NXDOMAIN here instead of leaking upstream. Default
    /// none.
    pub local_zones: Vec<String>,
    /// Forward A/AAAA/ANY queries for single-label names that are not ours.
    /// Default false (see the crate docs).
    pub forward_single_label: bool,
    /// Forward names that are not ours to `upstreams` at all. Default true;
    /// false for an internal network, whose containers must not reach the
    /// outside through the server: such queries get REFUSED.
    pub forward: bool,
}

impl DnsConfig {
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        Self {
            upstreams,
            upstream_timeout: Duration::from_secs(2),
            ttl: 0,
            local_zones: Vec::new(),
            forward_single_label: false,
            forward: true,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(
        "cannot listen for DNS on {addr} ({proto}): {source}; the address must be on a \
         local interface (create the bridge and give it its gateway address first), the \
         port must be free, and port 53 needs root or CAP_NET_BIND_SERVICE"
    )]
    Bind { addr: SocketAddr, proto: &'static str, source: io::Error },
    #[error("local zone {zone:?} is not a valid DNS name: {reason}")]
    InvalidZone { zone: String, reason: crate::name::NameError },
}

/// A running server. [`stop`](Self::stop) it to close its sockets;
/// dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct DnsServer {
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    records: Records,
    policy: Policy,
    upstreams: Vec<SocketAddr>,
    upstream_timeout: Duration,
    failure_log: Mutex<FailureLog>,
}

impl DnsServer {
    /// Listens on `bind` (UDP and TCP, same port; port 0 picks a free one)
    /// and answers from `records`, which the caller keeps editing.
    pub async fn start(bind: SocketAddr, records: Records, config: DnsConfig) -> Result<Self, ServerError> {
        let local_zones = config
            .local_zones
            .iter()
            .map(|zone| normalize(zone).map_err(|reason| ServerError::InvalidZone { zone: zone.clone(), reason }))
            .collect::<Result<Vec<_>, _>>()?;
        let (udp, tcp) = bind_both(bind).await?;
        let local_addr = udp.local_addr().map_err(|source| ServerError::Bind { addr: bind, proto: "udp", source })?;
        // Forwarding to ourselves would loop until every client times out.
        let upstreams: Vec<SocketAddr> = if config.forward {
            config.upstreams.into_iter().filter(|upstream| *upstream != local_addr).collect()
        } else {
            Vec::new()
        };
        if upstreams.is_empty() && config.forward {
            tracing::warn!(
                %local_addr,
                "DNS server has no upstream resolvers: names that are not container or \
                 service names will get SERVFAIL; put nameserver lines in the host's resolv.conf"
            );
        }
        let shared = Arc::new(Shared {
            records,
            policy: Policy {
                ttl: config.ttl,
                local_zones,
                forward_single_label: config.forward_single_label,
                forward: config.forward,
            },
            upstreams,
            upstream_timeout: config.upstream_timeout,
            failure_log: Mutex::new(FailureLog::default()),
        });
        tracing::info!(%local_addr, upstreams = ?shared.upstreams, "DNS server listening");
        let tasks =
            vec![tokio::spawn(serve_udp(Arc::new(udp), Arc::clone(&shared))), tokio::spawn(serve_tcp(tcp, shared))];
        Ok(Self { local_addr, tasks })
    }

    /// Where the server listens (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops answering and waits until both sockets are closed, so the
    /// address can be bound again at once. Queries in flight are dropped.
    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            // The only error is the cancellation we asked for.
            let _ = task.await;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind_both(bind: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
    let attempts = if bind.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp =
            UdpSocket::bind(bind).await.map_err(|source| ServerError::Bind { addr: bind, proto: "udp", source })?;
        let port = udp.local_addr().map(|a| a.port()).unwrap_or(bind.port());
        let tcp_addr = SocketAddr::new(bind.ip(), port);
        match listen_tcp(tcp_addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            // The random UDP port is taken for TCP: pick another.
            Err(source) => last = Some(ServerError::Bind { addr: tcp_addr, proto: "tcp", source }),
        }
    }
    Err(last.expect("at least one attempt"))
}

fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restarted daemon must get the port back while old connections
    // linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    // Owned here, so aborting this task aborts every forward in flight.
    let mut forwards = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(received) => received,
                    Err(err) => {
                        tracing::debug!(error = %err, "DNS UDP receive failed");
                        continue;
                    }
                };
                let query = &buf[..n];
                match answer::handle(query, &shared.records, &shared.policy, Transport::Udp) {
                    Outcome::Reply(reply) => send(&socket, &reply, peer).await,
                    Outcome::Drop => {}
                    Outcome::Forward(request) if forwards.len() >= MAX_UDP_FORWARDS => {
                        let reply = answer::server_failure(&request, Transport::Udp);
                        send(&socket, &reply, peer).await;
                    }
                    Outcome::Forward(request) => {
                        let (socket, shared, query) = (Arc::clone(&socket), Arc::clone(&shared), query.to_vec());
                        forwards.spawn(async move {
                            let reply = shared.relay(&query, &request, Transport::Udp).await;
                            send(&socket, &reply, peer).await;
                        });
                    }
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
}

async fn send(socket: &UdpSocket, reply: &[u8], peer: SocketAddr) {
    if let Err(err) = socket.send_to(reply, peer).await {
        tracing::debug!(%peer, error = %err, "DNS UDP reply not sent");
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() >= MAX_TCP_CONNECTIONS => drop(stream),
                Ok((stream, peer)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        if let Err(err) = serve_connection(stream, &shared).await {
                            tracing::debug!(%peer, error = %err, "DNS TCP connection ended");
                        }
                    });
                }
                Err(err) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %err, "DNS TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers length-prefixed queries one after another until the client
/// closes the connection or stays idle for [`TCP_IDLE`].
async fn serve_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            Ok(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(err)) => return Err(err),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "query body not sent in time"))??;
        let reply = match answer::handle(&query, &shared.records, &shared.policy, Transport::Tcp) {
            Outcome::Reply(reply) => reply,
            Outcome::Forward(request) => shared.relay(&query, &request, Transport::Tcp).await,
            Outcome::Drop => continue,
        };
        // Replies are at most 65535 bytes: relayed ones arrived in a TCP
        // frame, local ones are bounded by `answer::handle`.
        let len = u16::try_from(reply.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply[..usize::from(len)]);
        stream.write_all(&framed).await?;
    }
}

impl Shared {
    /// The upstream's answer, or SERVFAIL.
    async fn relay(&self, query: &[u8], request: &hickory_proto::op::Message, via: Transport) -> Vec<u8> {
        match forward(query, request, &self.upstreams, self.upstream_timeout, via).await {
            Ok(answer) => answer,
            Err(err) => {
                let suppressed = self.failure_log.lock().unwrap_or_else(PoisonError::into_inner).admit(Instant::now());
                if let Some(suppressed) = suppressed {
                    tracing::warn!(error = %err, suppressed, "DNS forwarding failed; answering SERVFAIL");
                }
                answer::server_failure(request, via)
            }
        }
    }
}

/// Rate limit for the forwarding-failure warning: a dead upstream fails
/// every query, and one line per interval says as much as thousands.
#[derive(Debug, Default)]
struct FailureLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    /// `Some(suppressed since the last line)` when a line may be logged.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < FAILURE_LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failure_log_admits_one_line_per_interval_and_counts_the_rest() {
        let mut log = FailureLog::default();
        assert_eq!(log.admit(Instant::now()), Some(0));
        assert_eq!(log.admit(Instant::now()), None);
        assert_eq!(log.admit(Instant::now()), None);
        tokio::time::advance(FAILURE_LOG_INTERVAL).await;
        assert_eq!(log.admit(Instant::now()), Some(2));
    }
}
