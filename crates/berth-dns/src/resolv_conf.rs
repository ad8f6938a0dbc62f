//! resolv.conf both ways: reading the host's nameservers (the upstreams)
//! and writing a container's file (pointing at the network's server).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::name::{normalize, NameError};

/// Port of every resolv.conf nameserver (the file has no way to say
/// another).
const DNS_PORT: u16 = 53;
/// resolv(5) ignores `ndots` above this.
const MAX_NDOTS: u8 = 15;

#[derive(Debug, Error)]
pub enum ResolvConfError {
    #[error(
        "cannot read the host's resolver configuration {path}: {source}; the DNS server \
         needs it to forward names that are not container or service names"
    )]
    Read { path: PathBuf, source: std::io::Error },
    #[error("search domain {domain:?} is not a valid DNS name: {reason}")]
    InvalidSearch { domain: String, reason: NameError },
    #[error("ndots {0} is above {MAX_NDOTS}, the most resolv.conf honours")]
    Ndots(u8),
    #[error("a container's resolv.conf needs at least one nameserver (the network's gateway)")]
    NoNameserver,
}

/// The upstream resolvers named by `nameserver` lines, in order, on port 53.
///
/// Follows resolv.conf(5): `#` and `;` start comments, the keyword starts
/// the line, the first word after it is an IPv4 or IPv6 address. An IPv6
/// scope must be numeric (`fe80::1%2`); a named one (`%eth0`) and anything
/// that is not an address is skipped with a warning. Loopback addresses
/// (systemd-resolved's 127.0.0.53, a local dnsmasq) are kept: the daemon,
/// which forwards, runs in the host's network namespace and reaches them.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut upstreams = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(word) = words.next() else {
            tracing::warn!(line, "resolv.conf nameserver line without an address; skipped");
            continue;
        };
        match parse_nameserver(word) {
            Some(addr) if !upstreams.contains(&addr) => upstreams.push(addr),
            Some(_) => {}
            None => tracing::warn!(
                line,
                "resolv.conf nameserver is not an IP address with an optional numeric scope; skipped"
            ),
        }
    }
    upstreams
}

fn parse_nameserver(word: &str) -> Option<SocketAddr> {
    // A trailing comment glued to the address ("1.1.1.1#x") is not valid.
    let (addr, scope) = match word.split_once('%') {
        Some((addr, scope)) => (addr, Some(scope.parse::<u32>().ok()?)),
        None => (word, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) if scope.is_some() => None,
        IpAddr::V4(v4) => Some(SocketAddr::new(v4.into(), DNS_PORT)),
        IpAddr::V6(v6) => Some(SocketAddr::V6(std::net::SocketAddrV6::new(v6, DNS_PORT, 0, scope.unwrap_or(0)))),
    }
}

/// Reads `path` (the host's `/etc/resolv.conf`, or
/// `/run/systemd/resolve/resolv.conf` to skip the stub) and parses it.
pub fn read_host_upstreams(path: &Path) -> Result<Vec<SocketAddr>, ResolvConfError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ResolvConfError::Read { path: path.to_path_buf(), source })?;
    Ok(upstreams_from_resolv_conf(&text))
}

/// What goes into a container's `/etc/resolv.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerResolvConf {
    /// The network's DNS server, i.e. the gateway address (one per network
    /// the container is on, first network first).
    pub nameservers: Vec<IpAddr>,
    /// Search domains, tried in order for names with fewer than `ndots`
    /// dots. Berth registers every form of a name itself, so none are
    /// needed for its own names.
    pub search: Vec<String>,
    /// `options ndots:N`; `None` keeps the resolver's default of 1, which
    /// tries `web.prod` as-is first and does not multiply queries for
    /// external names the way Kubernetes' ndots:5 does.
    pub ndots: Option<u8>,
}

impl ContainerResolvConf {
    pub fn new(gateway: IpAddr) -> Self {
        Self { nameservers: vec![gateway], search: Vec::new(), ndots: None }
    }

    /// The file's text. Checked: at least one nameserver, valid search
    /// domains, ndots within resolv.conf's range.
    pub fn render(&self) -> Result<String, ResolvConfError> {
        if self.nameservers.is_empty() {
            return Err(ResolvConfError::NoNameserver);
        }
        let mut out = String::from("# Written by berth: the network's DNS server.\n");
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.search.is_empty() {
            let domains = self
                .search
                .iter()
                .map(|domain| {
                    normalize(domain)
                        .map_err(|reason| ResolvConfError::InvalidSearch { domain: domain.clone(), reason })
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push_str(&format!("search {}\n", domains.join(" ")));
        }
        match self.ndots {
            Some(n) if n > MAX_NDOTS => return Err(ResolvConfError::Ndots(n)),
            Some(n) => out.push_str(&format!("options ndots:{n}\n")),
            None => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(text: &str) -> Vec<String> {
        upstreams_from_resolv_conf(text).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn systemd_resolved_stub_is_kept() {
        let text = "\
# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
#
# Third party programs should typically not access this file directly, but only
# through the symlink at /etc/resolv.conf.

nameserver 127.0.0.53
options edns0 trust-ad
search corp.example.com
";
        assert_eq!(addrs(text), ["127.0.0.53:53"]);
    }

    #[test]
    fn several_nameservers_in_order_with_ipv6_and_comments() {
        let text = "\
; generated by /usr/sbin/dhclient-script
domain example.net
search example.net
nameserver 192.0.2.53
#nameserver 192.0.2.99
nameserver 2001:db8::53   # site resolver
  nameserver\t198.51.100.1
nameserver 192.0.2.53
nameserver fe80::1%2
";
        assert_eq!(addrs(text), ["192.0.2.53:53", "[2001:db8::53]:53", "198.51.100.1:53", "[fe80::1%2]:53"]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "\
nameserver
nameserver dns.example.com
nameserver 10.0.0.1%eth0
nameserver fe80::1%eth0
nameservers 10.0.0.2
options timeout:1
nameserver 10.0.0.3
";
        assert_eq!(addrs(text), ["10.0.0.3:53"]);
        assert!(upstreams_from_resolv_conf("").is_empty());
    }

    #[test]
    fn reading_a_missing_file_names_it() {
        let err = read_host_upstreams(Path::new("/nonexistent/resolv.conf")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/resolv.conf"), "{err}");
    }

    #[test]
    fn container_file_points_at_the_gateway() {
        let conf = ContainerResolvConf::new("10.88.0.1".parse().unwrap());
        assert_eq!(conf.render().unwrap(), "# Written by berth: the network's DNS server.\nnameserver 10.88.0.1\n");
    }

    #[test]
    fn container_file_with_search_and_ndots() {
        let conf = ContainerResolvConf {
            nameservers: vec!["10.88.0.1".parse().unwrap(), "10.89.0.1".parse().unwrap()],
            search: vec!["prod.svc.cluster.local.".into(), "Svc.Cluster.Local".into()],
            ndots: Some(2),
        };
        assert_eq!(
            conf.render().unwrap(),
            "# Written by berth: the network's DNS server.\n\
             nameserver 10.88.0.1\nnameserver 10.89.0.1\n\
             search prod.svc.cluster.local svc.cluster.local\n\
             options ndots:2\n"
        );
    }

    #[test]
    fn container_file_refuses_what_a_resolver_would_misread() {
        let mut conf = ContainerResolvConf::new("10.88.0.1".parse().unwrap());
        conf.search = vec!["bad domain".into()];
        assert!(matches!(conf.render(), Err(ResolvConfError::InvalidSearch { .. })));
        conf.search.clear();
        conf.ndots = Some(16);
        assert!(matches!(conf.render(), Err(ResolvConfError::Ndots(16))));
        conf.nameservers.clear();
        conf.ndots = None;
        assert!(matches!(conf.render(), Err(ResolvConfError::NoNameserver)));
    }
}
