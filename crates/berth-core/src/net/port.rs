//! Published ports: docker's `-p` grammar and host-side bindings.
//!
//! `-p [[HOSTIP:][HOSTPORT]:]CTRPORT[/tcp|/udp]`:
//! `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80` (random host port),
//! each optionally with `/tcp` (the default) or `/udp`. A host address of
//! `0.0.0.0` means all addresses, the same as leaving it out. Port ranges
//! (`8000-8002:80-82`) and IPv6 host addresses are refused with a message
//! that says what to write instead.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Transport protocol of a port or service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            _ => Err(PortError::BadProtocol(s.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("-p {spec}: {problem}")]
    Invalid { spec: String, problem: String },
    #[error("protocol {0:?} is not supported; use tcp or udp")]
    BadProtocol(String),
    #[error("host port {binding} is already published by {owner}; choose another host port or host address")]
    Conflict { binding: HostBinding, owner: String },
    #[error("no free {protocol} host port left in {first}-{last}; publish an explicit host port or free some")]
    NoFreePort { protocol: Protocol, first: u16, last: u16 },
}

/// One `-p` argument. Invariant: ports are 1..=65535; `host_ip` is never
/// 0.0.0.0 (that is `None`, all addresses).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec {
    host_ip: Option<Ipv4Addr>,
    host_port: Option<u16>,
    container_port: u16,
    protocol: Protocol,
}

fn invalid(spec: &str, problem: impl Into<String>) -> PortError {
    PortError::Invalid { spec: spec.to_string(), problem: problem.into() }
}

fn parse_port(spec: &str, what: &str, s: &str) -> Result<u16, PortError> {
    if s.contains('-') {
        return Err(invalid(
            spec,
            format!("{what} {s:?} is a range; ranges are not supported, publish each port with its own -p"),
        ));
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(spec, format!("{what} {s:?} is not a number")));
    }
    match s.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(invalid(spec, format!("{what} {s} is out of range 1-65535"))),
    }
}

impl PortSpec {
    /// A spec from its parts; `host_port: None` asks for a random host port.
    pub fn try_new(
        host_ip: Option<Ipv4Addr>,
        host_port: Option<u16>,
        container_port: u16,
        protocol: Protocol,
    ) -> Result<Self, PortError> {
        let spec = || Self { host_ip, host_port, container_port, protocol }.to_string();
        if container_port == 0 {
            return Err(invalid(&spec(), "container port 0 is out of range 1-65535"));
        }
        if host_port == Some(0) {
            return Err(invalid(&spec(), "host port 0 is out of range 1-65535; leave it out for a random port"));
        }
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        Ok(Self { host_ip, host_port, container_port, protocol })
    }

    /// What `-P` publishes for an exposed port: all addresses, random port.
    pub fn random(container_port: u16, protocol: Protocol) -> Result<Self, PortError> {
        Self::try_new(None, None, container_port, protocol)
    }

    pub fn parse(spec: &str) -> Result<Self, PortError> {
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((ports, proto)) => {
                let protocol = proto
                    .parse()
                    .map_err(|_| invalid(spec, format!("protocol {proto:?} is not supported; use tcp or udp")))?;
                (ports, protocol)
            }
            None => (spec, Protocol::Tcp),
        };
        if ports.starts_with('[') || ports.matches(':').count() > 2 {
            return Err(invalid(spec, "IPv6 host addresses are not supported; give an IPv4 address or none"));
        }
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => {
                let addr: Ipv4Addr =
                    ip.parse().map_err(|_| invalid(spec, format!("host address {ip:?} is not an IPv4 address")))?;
                (Some(addr), (!h.is_empty()).then_some(*h), *c)
            }
            _ => unreachable!("at most two ':' were let through"),
        };
        let container_port = parse_port(spec, "container port", container)?;
        let host_port = host_port.map(|h| parse_port(spec, "host port", h)).transpose()?;
        Self::try_new(host_ip, host_port, container_port, protocol)
    }

    /// The host address, `None` for all addresses.
    pub fn host_ip(&self) -> Option<Ipv4Addr> {
        self.host_ip
    }

    /// The host port, `None` when a random one is wanted.
    pub fn host_port(&self) -> Option<u16> {
        self.host_port
    }

    pub fn container_port(&self) -> u16 {
        self.container_port
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The host binding once the host port is known (given or picked).
    pub fn binding(&self, host_port: u16) -> HostBinding {
        HostBinding { host_ip: self.host_ip, host_port, protocol: self.protocol }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.host_ip, self.host_port) {
            (Some(ip), Some(h)) => write!(f, "{ip}:{h}:")?,
            (Some(ip), None) => write!(f, "{ip}::")?,
            (None, Some(h)) => write!(f, "{h}:")?,
            (None, None) => {}
        }
        write!(f, "{}/{}", self.container_port, self.protocol)
    }
}

impl fmt::Debug for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortSpec({self})")
    }
}

impl FromStr for PortSpec {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PortSpec {
    type Error = PortError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PortSpec> for String {
    fn from(p: PortSpec) -> String {
        p.to_string()
    }
}

/// Where a published port listens on the host. `host_ip: None` is every
/// address, and so conflicts with any binding of the same port and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostBinding {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub protocol: Protocol,
}

impl HostBinding {
    /// Two bindings clash when they share protocol and port and their
    /// addresses overlap (equal, or either is "all addresses").
    pub fn conflicts_with(&self, other: &HostBinding) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

impl fmt::Display for HostBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), self.host_port, self.protocol)
    }
}

/// Docker's default range for random host ports.
pub const DEFAULT_HOST_PORT_RANGE: RangeInclusive<u16> = 49153..=60999;

/// Checks that no two bindings clash; `owner` names what published each
/// (e.g. `container "web"`) for the error.
pub fn check_bindings<'a>(bindings: impl IntoIterator<Item = (&'a str, HostBinding)>) -> Result<(), PortError> {
    let mut seen: Vec<(&str, HostBinding)> = Vec::new();
    for (owner, b) in bindings {
        if let Some((other, _)) = seen.iter().find(|(_, s)| s.conflicts_with(&b)) {
            return Err(PortError::Conflict { binding: b, owner: other.to_string() });
        }
        seen.push((owner, b));
    }
    Ok(())
}

/// Picks the lowest host port in `range` that `spec` can bind without
/// clashing with `in_use`. Pure: whether some other program on the host holds
/// the port is for the caller to find out.
pub fn pick_host_port(spec: &PortSpec, in_use: &[HostBinding], range: RangeInclusive<u16>) -> Result<u16, PortError> {
    range
        .clone()
        .find(|&port| !in_use.iter().any(|b| b.conflicts_with(&spec.binding(port))))
        .ok_or(PortError::NoFreePort { protocol: spec.protocol, first: *range.start(), last: *range.end() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> PortSpec {
        PortSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        PortSpec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn the_four_forms() {
        let a = p("80");
        assert_eq!((a.host_ip(), a.host_port(), a.container_port(), a.protocol()), (None, None, 80, Protocol::Tcp));
        let b = p("8080:80");
        assert_eq!((b.host_ip(), b.host_port(), b.container_port()), (None, Some(8080), 80));
        let c = p("127.0.0.1:8080:80/udp");
        assert_eq!(c.host_ip(), Some(Ipv4Addr::LOCALHOST));
        assert_eq!((c.host_port(), c.protocol()), (Some(8080), Protocol::Udp));
        let d = p("127.0.0.1::80");
        assert_eq!((d.host_ip(), d.host_port()), (Some(Ipv4Addr::LOCALHOST), None));
        assert_eq!(p("0.0.0.0:8080:80"), b, "0.0.0.0 is all addresses");
        assert_eq!(p("53/UDP").protocol(), Protocol::Udp);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(p("80").to_string(), "80/tcp");
        assert_eq!(p("0.0.0.0:8080:80").to_string(), "8080:80/tcp");
        assert_eq!(p("127.0.0.1::53/udp").to_string(), "127.0.0.1::53/udp");
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert_eq!(err("80:99999"), "-p 80:99999: container port 99999 is out of range 1-65535");
        assert_eq!(err("0:80"), "-p 0:80: host port 0 is out of range 1-65535");
        assert_eq!(err("80:0"), "-p 80:0: container port 0 is out of range 1-65535");
        assert_eq!(err("http:80"), "-p http:80: host port \"http\" is not a number");
        assert_eq!(err("80/sctp"), "-p 80/sctp: protocol \"sctp\" is not supported; use tcp or udp");
        assert_eq!(err("localhost:80:80"), "-p localhost:80:80: host address \"localhost\" is not an IPv4 address");
        assert!(err("8000-8002:80-82").contains("is a range; ranges are not supported"));
        assert!(err("[::1]:80:80").contains("IPv6"));
        assert!(err("::1:80:80").contains("IPv6"));
        assert!(err("").contains("container port \"\" is not a number"));
        assert!(err("80:").contains("container port \"\""));
        assert!(err("1.2.3.4:80").contains("host port \"1.2.3.4\" is not a number"));
    }

    #[test]
    fn serde_is_the_canonical_string() {
        let s = p("127.0.0.1:8080:80");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"127.0.0.1:8080:80/tcp\"");
        assert_eq!(serde_json::from_str::<PortSpec>("\"8080:80\"").unwrap(), p("8080:80"));
        assert_eq!(serde_json::to_string(&Protocol::Udp).unwrap(), "\"udp\"");
    }

    #[test]
    fn bindings_conflict_on_overlapping_addresses() {
        let any80 = p("8080:80").binding(8080);
        let lo80 = p("127.0.0.1:8080:80").binding(8080);
        let other80 = p("10.0.0.1:8080:80").binding(8080);
        let udp80 = p("8080:80/udp").binding(8080);
        assert!(any80.conflicts_with(&lo80) && lo80.conflicts_with(&any80));
        assert!(!lo80.conflicts_with(&other80));
        assert!(!any80.conflicts_with(&udp80));
        let e = check_bindings([("container \"a\"", any80), ("container \"b\"", lo80)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host port 127.0.0.1:8080/tcp is already published by container \"a\"; \
             choose another host port or host address"
        );
        assert!(check_bindings([("a", lo80), ("b", other80), ("c", udp80)]).is_ok());
    }

    #[test]
    fn random_host_ports_skip_used_ones() {
        let spec = p("80");
        let used = [p("49153:1").binding(49153), p("127.0.0.1:49154:1").binding(49154)];
        assert_eq!(pick_host_port(&spec, &used, DEFAULT_HOST_PORT_RANGE).unwrap(), 49155);
        let lo = p("10.0.0.1::80");
        assert_eq!(pick_host_port(&lo, &used, DEFAULT_HOST_PORT_RANGE).unwrap(), 49154);
        let e = pick_host_port(&spec, &used, 49153..=49154).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no free tcp host port left in 49153-49154; publish an explicit host port or free some"
        );
    }

    fn arb_spec() -> impl Strategy<Value = PortSpec> {
        (
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            proptest::option::of(1u16..),
            1u16..,
            prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
        )
            .prop_map(|(ip, h, c, proto)| PortSpec::try_new(ip, h, c, proto).unwrap())
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(spec in arb_spec()) {
            prop_assert_eq!(PortSpec::parse(&spec.to_string()).unwrap(), spec);
        }

        #[test]
        fn parse_never_panics(s in "[0-9a-z.:/\\[\\]-]{0,24}") {
            let _ = PortSpec::parse(&s);
        }
    }
}
