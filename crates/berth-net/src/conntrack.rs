//! Connections per VIP backend, from the kernel's connection tracking.
//!
//! A connection to a VIP is tracked with its original destination (the VIP)
//! and its reply source (the backend it was DNATed to). Counting entries by
//! reply source tells how many connections each backend still serves, which
//! is what draining waits for. The parser is pure; [`ConntrackCli`] runs
//! `conntrack -L` (conntrack-tools), and [`FakeConntrack`] serves canned
//! lines.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Mutex;

use berth_core::net::Protocol;
use serde::Serialize;

use crate::cmd::{one_line, Invocation};
use crate::desired::Vip;

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("cannot run {program}: {source}; install conntrack (apt-get install conntrack) or configure its path")]
    Spawn { program: String, source: std::io::Error },
    #[error("conntrack -L failed: {stderr}")]
    Failed { stderr: String },
}

/// One tracked connection, as much of it as Berth needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub protocol: Protocol,
    /// TCP state (`ESTABLISHED`, `TIME_WAIT`, …); `None` for UDP.
    pub state: Option<String>,
    pub orig_dst: SocketAddrV4,
    /// Where the connection really goes: the DNAT target.
    pub reply_src: SocketAddrV4,
    /// No reply seen yet (`[UNREPLIED]`).
    pub unreplied: bool,
}

impl Entry {
    /// Can still carry data: a TCP connection being opened or
    /// ESTABLISHED. One past its first FIN (FIN_WAIT, CLOSE_WAIT,
    /// LAST_ACK, TIME_WAIT, CLOSE) is done or finishing, and the kernel
    /// keeps such entries for up to two minutes: waiting for them made
    /// deleting a Deployment that had served traffic take the whole drain
    /// timeout. UDP has no end to wait for, so it never holds a drain.
    pub fn is_active(&self) -> bool {
        self.protocol == Protocol::Tcp
            && matches!(self.state.as_deref(), Some("SYN_SENT" | "SYN_SENT2" | "SYN_RECV" | "ESTABLISHED"))
    }

    /// TCP ESTABLISHED, or UDP with traffic both ways.
    pub fn is_established(&self) -> bool {
        match &self.state {
            Some(s) => s == "ESTABLISHED",
            None => !self.unreplied,
        }
    }
}

/// Connection counts of one backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendConnections {
    /// TCP ESTABLISHED connections, and UDP flows with replies seen.
    pub established: u32,
    /// Connections that can still carry data (see [`Entry::is_active`]):
    /// what a drain waits to reach 0.
    pub active: u32,
}

/// Parses one line of `conntrack -L` in the default or `-o extended`
/// format; `None` for lines that are not IPv4 TCP/UDP entries.
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.first() == Some(&"ipv4") {
        tokens.drain(..2);
    } else if tokens.first() == Some(&"ipv6") {
        return None;
    }
    let protocol = match *tokens.first()? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    // tokens: proto, number, timeout, [STATE], key=value…
    let state = tokens.get(3).filter(|t| !t.contains('=') && !t.starts_with('[')).map(|s| s.to_string());
    let mut orig: [Option<&str>; 4] = [None; 4];
    let mut reply: [Option<&str>; 4] = [None; 4];
    for t in &tokens[3..] {
        let Some((key, value)) = t.split_once('=') else { continue };
        let i = match key {
            "src" => 0,
            "dst" => 1,
            "sport" => 2,
            "dport" => 3,
            _ => continue,
        };
        if orig[i].is_none() {
            orig[i] = Some(value);
        } else if reply[i].is_none() {
            reply[i] = Some(value);
        }
    }
    let addr = |ip: Option<&str>, port: Option<&str>| -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(ip?.parse::<Ipv4Addr>().ok()?, port?.parse().ok()?))
    };
    Some(Entry {
        protocol,
        state,
        orig_dst: addr(orig[1], orig[3])?,
        reply_src: addr(reply[0], reply[2])?,
        unreplied: tokens.contains(&"[UNREPLIED]"),
    })
}

/// Parses a whole `conntrack -L` output, skipping what is not an entry.
pub fn parse(output: &str) -> Vec<Entry> {
    output.lines().filter_map(parse_line).collect()
}

/// Counts connections to `vip` per backend. Every current backend appears
/// (with zeros if idle); backends that were removed but still have
/// connections appear too, so a drain can watch them.
pub fn count_for_vip(vip: &Vip, entries: &[Entry]) -> BTreeMap<SocketAddrV4, BackendConnections> {
    let target = SocketAddrV4::new(vip.ip, vip.port);
    let mut counts: BTreeMap<SocketAddrV4, BackendConnections> =
        vip.backends.backends().iter().map(|b| (b.socket(), BackendConnections::default())).collect();
    for e in entries.iter().filter(|e| e.protocol == vip.protocol && e.orig_dst == target) {
        if e.is_active() || e.is_established() {
            let c = counts.entry(e.reply_src).or_default();
            c.active += u32::from(e.is_active());
            c.established += u32::from(e.is_established());
        }
    }
    counts
}

/// Lists tracked connections to one destination.
pub trait Conntrack {
    fn list(&self, protocol: Protocol, orig_dst: SocketAddrV4) -> Result<Vec<Entry>, ConntrackError>;
}

/// Per-backend counts for a VIP, for `vip show` and draining.
pub fn vip_connections(
    ct: &dyn Conntrack,
    vip: &Vip,
) -> Result<BTreeMap<SocketAddrV4, BackendConnections>, ConntrackError> {
    let entries = ct.list(vip.protocol, SocketAddrV4::new(vip.ip, vip.port))?;
    Ok(count_for_vip(vip, &entries))
}

/// Runs `conntrack -L -p PROTO --orig-dst IP --orig-port-dst PORT`,
/// optionally inside a network namespace. An empty table is an empty list,
/// not an error.
#[derive(Debug, Clone)]
pub struct ConntrackCli {
    inv: Invocation,
}

impl ConntrackCli {
    pub fn new() -> Self {
        Self { inv: Invocation::new("conntrack", None) }
    }

    pub fn with(program: impl Into<PathBuf>, netns: Option<PathBuf>) -> Self {
        Self { inv: Invocation::new(program, netns) }
    }
}

impl Default for ConntrackCli {
    fn default() -> Self {
        Self::new()
    }
}

impl Conntrack for ConntrackCli {
    fn list(&self, protocol: Protocol, orig_dst: SocketAddrV4) -> Result<Vec<Entry>, ConntrackError> {
        let (ip, port) = (orig_dst.ip().to_string(), orig_dst.port().to_string());
        let args = ["-L", "-p", protocol.as_str(), "--orig-dst", &ip, "--orig-port-dst", &port];
        let out = self
            .inv
            .run(&args, None)
            .map_err(|source| ConntrackError::Spawn { program: self.inv.describe(), source })?;
        if !out.status.success() {
            return Err(ConntrackError::Failed { stderr: one_line(&out.stderr) });
        }
        Ok(parse(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Serves canned `conntrack -L` output and records the queries.
#[derive(Debug, Default)]
pub struct FakeConntrack {
    output: Mutex<String>,
    calls: Mutex<Vec<(Protocol, SocketAddrV4)>>,
}

impl FakeConntrack {
    pub fn new(output: &str) -> Self {
        Self { output: Mutex::new(output.to_string()), calls: Mutex::default() }
    }

    pub fn set_output(&self, output: &str) {
        *self.output.lock().expect("fake lock") = output.to_string();
    }

    pub fn calls(&self) -> Vec<(Protocol, SocketAddrV4)> {
        self.calls.lock().expect("fake lock").clone()
    }
}

impl Conntrack for FakeConntrack {
    fn list(&self, protocol: Protocol, orig_dst: SocketAddrV4) -> Result<Vec<Entry>, ConntrackError> {
        self.calls.lock().expect("fake lock").push((protocol, orig_dst));
        let all = parse(&self.output.lock().expect("fake lock"));
        Ok(all.into_iter().filter(|e| e.protocol == protocol && e.orig_dst == orig_dst).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::net::Weights;

    const SAMPLE: &str = "\
tcp      6 431999 ESTABLISHED src=10.77.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=40000 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431998 ESTABLISHED src=10.77.0.1 dst=10.96.0.10 sport=40001 dport=80 src=10.77.0.3 dst=10.77.0.1 sport=80 dport=40001 [ASSURED] mark=0 use=1
tcp      6 119 TIME_WAIT src=10.77.0.1 dst=10.96.0.10 sport=40002 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=40002 [ASSURED] mark=0 use=1
tcp      6 58 CLOSE_WAIT src=10.77.0.1 dst=10.96.0.10 sport=40003 dport=80 src=10.77.0.9 dst=10.77.0.1 sport=80 dport=40003 [ASSURED] mark=0 use=1
tcp      6 117 SYN_SENT src=10.77.0.1 dst=10.96.0.10 sport=40004 dport=80 [UNREPLIED] src=10.77.0.3 dst=10.77.0.1 sport=80 dport=40004 mark=0 use=1
tcp      6 431999 ESTABLISHED src=10.77.0.1 dst=10.96.0.11 sport=40005 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=40005 [ASSURED] mark=0 use=1
udp      17 29 src=10.77.0.1 dst=10.96.0.10 sport=5000 dport=80 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=80 dport=5000 mark=0 use=1
ipv6     10 tcp      6 431999 ESTABLISHED src=fd00::1 dst=fd00::2 sport=1 dport=2 src=fd00::2 dst=fd00::1 sport=2 dport=1 [ASSURED] mark=0 use=1
icmp     1 29 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=1 src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=1 mark=0 use=1
tcp      6 59 SYN_RECV src=10.77.0.1 dst=10.96.0.10 sport=40006 dport=80 src=10.77.0.8 dst=10.77.0.1 sport=80 dport=40006 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 9 flow entries have been shown.
";

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn parses_both_formats() {
        let entries = parse(SAMPLE);
        assert_eq!(entries.len(), 8, "ipv6, icmp and the summary are skipped");
        assert_eq!(
            entries[0],
            Entry {
                protocol: Protocol::Tcp,
                state: Some("ESTABLISHED".into()),
                orig_dst: sa("10.96.0.10:80"),
                reply_src: sa("10.77.0.2:80"),
                unreplied: false,
            }
        );
        assert_eq!(entries[1].reply_src, sa("10.77.0.3:80"));
        assert!(entries[4].unreplied && entries[4].state.as_deref() == Some("SYN_SENT"));
        assert_eq!((entries[6].protocol, entries[6].state.clone(), entries[6].unreplied), (Protocol::Udp, None, true));
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("tcp 6 1 ESTABLISHED src=1.2.3.4"), None);
    }

    #[test]
    fn counts_per_backend_including_drained_ones() {
        let vip = Vip {
            name: "web".into(),
            ip: "10.96.0.10".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            backends: Weights::parse(["10.77.0.2:80=0", "10.77.0.3:80=100", "10.77.0.4:80=0"]).unwrap(),
            node_port: None,
        };
        let counts = count_for_vip(&vip, &parse(SAMPLE));
        let c = |a: &str| counts[&sa(a)];
        assert_eq!(c("10.77.0.2:80"), BackendConnections { established: 1, active: 1 }, "TIME_WAIT is not active");
        assert_eq!(c("10.77.0.3:80"), BackendConnections { established: 1, active: 2 });
        assert_eq!(c("10.77.0.4:80"), BackendConnections::default(), "idle backends are listed");
        assert_eq!(
            c("10.77.0.8:80"),
            BackendConnections { established: 0, active: 1 },
            "removed backend still draining"
        );
        assert!(!counts.contains_key(&sa("10.77.0.9:80")), "a closing connection (CLOSE_WAIT) never holds a drain");
        assert_eq!(counts.len(), 4);
    }

    #[test]
    fn the_fake_filters_like_conntrack() {
        let fake = FakeConntrack::new(SAMPLE);
        let vip = Vip {
            name: "dns".into(),
            ip: "10.96.0.10".parse().unwrap(),
            port: 80,
            protocol: Protocol::Udp,
            backends: Weights::none(),
            node_port: None,
        };
        let counts = vip_connections(&fake, &vip).unwrap();
        assert!(
            !counts.contains_key(&sa("10.77.0.2:80")),
            "a UDP flow never holds a drain, and one without replies is not established: {counts:?}"
        );
        assert_eq!(fake.calls(), vec![(Protocol::Udp, sa("10.96.0.10:80"))]);
    }
}
