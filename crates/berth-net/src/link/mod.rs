//! Links, addresses and routes: the [`NetLinks`] trait, the real
//! [`NetlinkLinks`] (rtnetlink, no helper processes) and [`FakeNetLinks`].
//!
//! The trait is synchronous: every call is a handful of netlink round
//! trips (well under a millisecond) plus, for work inside a container's
//! namespace, a short-lived thread. The tokio daemon calls it through
//! `spawn_blocking`.

mod fake;
mod names;
mod real;
mod rtnl;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_core::net::Ipv4Cidr;

pub use fake::{FakeNetLinks, LinkCall};
pub use names::{derive_ifname, host_ifname, valid_ifname, MacAddr, MacError, IFNAME_MAX};
pub(crate) use real::loopback_up;
pub use real::NetlinkLinks;

use crate::netns::NetnsError;

/// A network's bridge: its name, the gateway address it carries (the
/// containers' default route) within `subnet`, and its MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub subnet: Ipv4Cidr,
    /// `None`: the kernel default (1500).
    pub mtu: Option<u32>,
}

impl BridgeSpec {
    /// The bridge of a [`Network`](crate::Network) from the desired state.
    pub fn of_network(network: &crate::Network, mtu: Option<u32>) -> Self {
        Self { name: network.bridge.clone(), gateway: network.gateway, subnet: network.subnet, mtu }
    }

    fn check(&self) -> Result<(), LinkError> {
        check_ifname("bridge", &self.name)?;
        check_host(&format!("bridge {}", self.name), self.gateway, self.subnet)?;
        check_mtu(&self.name, self.mtu)
    }
}

/// One container interface: a veth pair from the bridge to the
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The container's network namespace file (`/run/netns/NAME`).
    pub netns: PathBuf,
    /// The network's bridge (made by [`NetLinks::ensure_bridge`]).
    pub bridge: String,
    /// The host end, e.g. from [`host_ifname`]; at most 15 bytes.
    pub host_ifname: String,
    /// The name inside the container: `eth0`, `eth1`, …
    pub container_ifname: String,
    /// The container's address within `subnet`.
    pub address: Ipv4Addr,
    pub subnet: Ipv4Cidr,
    /// The default route's next hop: `Some(gateway)` for the container's
    /// first network only (a namespace has one default route).
    pub gateway: Option<Ipv4Addr>,
    /// `None`: the kernel default (1500). Use the bridge's MTU.
    pub mtu: Option<u32>,
    /// `None`: the kernel picks a random one.
    pub mac: Option<MacAddr>,
}

impl Attachment {
    fn check(&self) -> Result<(), LinkError> {
        check_ifname("bridge", &self.bridge)?;
        check_ifname("host-side veth", &self.host_ifname)?;
        check_ifname("container interface", &self.container_ifname)?;
        check_host(&format!("container interface {}", self.container_ifname), self.address, self.subnet)?;
        if let Some(gw) = self.gateway {
            check_host("gateway", gw, self.subnet)?;
        }
        check_mtu(&self.host_ifname, self.mtu)
    }
}

/// What [`NetLinks::attach`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The container interface's MAC address.
    pub mac: MacAddr,
}

/// The link plumbing the daemon needs. Every method is idempotent and may
/// be re-run after a crash; a failed call leaves nothing half made.
/// Methods only ever change links they are given the name of, and refuse
/// (with [`LinkError::WrongKind`]) to change or delete a link of another
/// kind than the one they manage.
pub trait NetLinks: Send + Sync {
    /// Creates the bridge if missing (with a MAC address derived from its
    /// name, so the gateway's address never changes as ports come and
    /// go), sets the MTU, leaves exactly the gateway address on it
    /// (`gateway/prefix`), brings it up, and sets
    /// `net.ipv4.conf.<bridge>.route_localnet=1` (published ports on
    /// 127.0.0.1, see the crate docs).
    fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<(), LinkError>;

    /// Deletes a bridge, which also removes its routes and detaches its
    /// ports (their veth pairs stay). A missing bridge is not an error.
    fn delete_bridge(&self, name: &str) -> Result<(), LinkError>;

    /// Routes `cidr` (the service VIP range) to an empty, up bridge named
    /// `bridge` with no address, created if missing (see the crate docs on
    /// why a route is needed and why not a dummy interface). Removed by
    /// [`delete_bridge`](Self::delete_bridge).
    fn ensure_vip_route(&self, bridge: &str, cidr: Ipv4Cidr) -> Result<(), LinkError>;

    /// Creates a veth pair: the host end on the bridge with hairpin mode
    /// on, up; the other end inside the namespace, named, addressed, up,
    /// with the default route via `gateway` when given. A veth already
    /// named `host_ifname` is taken for a leftover of an earlier attempt
    /// and replaced. On failure the pair is deleted.
    fn attach(&self, attachment: &Attachment) -> Result<Attached, LinkError>;

    /// Deletes the veth pair by its host end (the container end goes with
    /// it). A missing link is not an error.
    fn detach(&self, host_ifname: &str) -> Result<(), LinkError>;

    /// Writes a sysctl of the network namespace, e.g.
    /// `set_sysctl("net.ipv4.ip_forward", "1")` at daemon start. Keys use
    /// dots, or slashes when a part contains a dot
    /// (`net/ipv4/conf/eth0.100/forwarding`).
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LinkError>;
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid {what} name {name:?}: use 1 to 15 bytes of printable ASCII without '/' or ':' (e.g. eth0)")]
    BadName { what: &'static str, name: String },
    #[error("{what}: address {addr} is not a host address of {subnet}; use one from {} to {}", subnet.first_host(), subnet.last_host())]
    BadAddress { what: String, addr: Ipv4Addr, subnet: Ipv4Cidr },
    #[error("{link}: MTU {mtu} is out of range; use 68 to 65535")]
    BadMtu { link: String, mtu: u32 },
    #[error("invalid sysctl key {key:?}: use a dotted name like net.ipv4.ip_forward")]
    BadSysctl { key: String },
    #[error("bridge {bridge:?} does not exist; create the network's bridge first (ensure_bridge)")]
    NoBridge { bridge: String },
    #[error(
        "link {name:?} exists but is {kind}, not {expected}; Berth leaves it alone: remove it or choose another name"
    )]
    WrongKind { name: String, kind: String, expected: &'static str },
    #[error("cannot {action}: {source}{}{}", detail.as_ref().map(|d| format!(" (kernel: {d})")).unwrap_or_default(), hint(source))]
    Netlink { action: String, source: io::Error, detail: Option<String> },
    #[error("cannot set sysctl {key}={value}: {source}{}", hint(source))]
    Sysctl { key: String, value: String, source: io::Error },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// What to do about common kernel answers.
fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        // EPERM, EACCES
        Some(1 | 13) => "; the daemon must run as root (CAP_NET_ADMIN)",
        _ => "",
    }
}

fn check_ifname(what: &'static str, name: &str) -> Result<(), LinkError> {
    if valid_ifname(name) {
        Ok(())
    } else {
        Err(LinkError::BadName { what, name: name.to_string() })
    }
}

fn check_host(what: &str, addr: Ipv4Addr, subnet: Ipv4Cidr) -> Result<(), LinkError> {
    if subnet.is_host(addr) {
        Ok(())
    } else {
        Err(LinkError::BadAddress { what: what.to_string(), addr, subnet })
    }
}

fn check_mtu(link: &str, mtu: Option<u32>) -> Result<(), LinkError> {
    match mtu {
        Some(mtu) if !(68..=65535).contains(&mtu) => Err(LinkError::BadMtu { link: link.to_string(), mtu }),
        _ => Ok(()),
    }
}

/// `net.ipv4.ip_forward` → `net/ipv4/ip_forward`; keys with a slash are
/// taken as paths already. Refuses anything that could leave `/proc/sys`.
fn sysctl_path(key: &str) -> Result<String, LinkError> {
    let path = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    let ok = !path.is_empty()
        && path.split('/').all(|p| !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_graphic()));
    if ok {
        Ok(path)
    } else {
        Err(LinkError::BadSysctl { key: key.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            netns: "/run/netns/c1".into(),
            bridge: "bt-br0".into(),
            host_ifname: "btabcdefghijklm".into(),
            container_ifname: "eth0".into(),
            address: "10.89.0.2".parse().unwrap(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: Some("10.89.0.1".parse().unwrap()),
            mtu: Some(1500),
            mac: None,
        }
    }

    #[test]
    fn attachments_are_checked_before_anything_happens() {
        attachment().check().unwrap();
        let bad = Attachment { host_ifname: "much-too-long-name".into(), ..attachment() };
        assert!(matches!(bad.check(), Err(LinkError::BadName { what: "host-side veth", .. })));
        let bad = Attachment { address: "10.89.0.255".parse().unwrap(), ..attachment() };
        let err = bad.check().unwrap_err().to_string();
        assert!(err.contains("10.89.0.255 is not a host address of 10.89.0.0/24"), "{err}");
        assert!(err.contains("10.89.0.1 to 10.89.0.254"), "{err}");
        let bad = Attachment { gateway: Some("10.90.0.1".parse().unwrap()), ..attachment() };
        assert!(matches!(bad.check(), Err(LinkError::BadAddress { .. })));
        let bad = Attachment { mtu: Some(10), ..attachment() };
        assert!(bad.check().unwrap_err().to_string().contains("use 68 to 65535"));
    }

    #[test]
    fn bridge_specs_are_checked() {
        let spec = BridgeSpec {
            name: "bt-br0".into(),
            gateway: "10.89.0.1".parse().unwrap(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            mtu: None,
        };
        spec.check().unwrap();
        let bad = BridgeSpec { gateway: "10.89.0.0".parse().unwrap(), ..spec.clone() };
        assert!(matches!(bad.check(), Err(LinkError::BadAddress { .. })));
        let bad = BridgeSpec { name: "a/b".into(), ..spec };
        assert!(matches!(bad.check(), Err(LinkError::BadName { what: "bridge", .. })));
    }

    #[test]
    fn sysctl_keys_map_to_paths_under_proc_sys() {
        assert_eq!(sysctl_path("net.ipv4.ip_forward").unwrap(), "net/ipv4/ip_forward");
        assert_eq!(sysctl_path("net/ipv4/conf/eth0.100/forwarding").unwrap(), "net/ipv4/conf/eth0.100/forwarding");
        for bad in ["", "net..x", "net/../../etc/passwd", "/net/ipv4", "net.ipv4.a b"] {
            assert!(matches!(sysctl_path(bad), Err(LinkError::BadSysctl { .. })), "{bad}");
        }
    }

    #[test]
    fn netlink_errors_say_what_failed_and_what_the_kernel_said() {
        let e = LinkError::Netlink {
            action: "add the default route via 10.89.0.1 in /run/netns/c1".into(),
            source: io::Error::from_raw_os_error(101),
            detail: Some("Nexthop has invalid gateway".into()),
        };
        let s = e.to_string();
        assert!(s.starts_with("cannot add the default route via 10.89.0.1 in /run/netns/c1: "), "{s}");
        assert!(s.ends_with("(kernel: Nexthop has invalid gateway)"), "{s}");
        let e = LinkError::Netlink {
            action: "create bridge x".into(),
            source: io::Error::from_raw_os_error(1),
            detail: None,
        };
        assert!(e.to_string().ends_with("the daemon must run as root (CAP_NET_ADMIN)"), "{e}");
    }
}
