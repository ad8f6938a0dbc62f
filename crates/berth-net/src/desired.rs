//! The desired network state: what the rule set must implement.
//!
//! [`Desired::try_new`] checks the whole state at once (names, overlapping
//! subnets, clashing published ports, duplicate VIPs), so that compiling a
//! `Desired` cannot fail and a bad request is refused before anything is
//! applied.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use berth_core::net::{check_bindings, check_subnet, HostBinding, Ipv4Cidr, PortError, Protocol, Weights};
use serde::Serialize;

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    /// The bridge's interface name on the host (at most 15 bytes).
    pub bridge: String,
    pub subnet: Ipv4Cidr,
    /// The bridge's own address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// No traffic leaves or enters the bridge (no masquerade, no forwarding
    /// to or from other interfaces); the host can still reach it.
    pub internal: bool,
}

/// A published port: `host_ip:host_port/protocol` → `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    /// Who published it, e.g. `container "web"`; used in errors and comments.
    pub owner: String,
    /// `None`: every local address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub protocol: Protocol,
    /// The network the container is attached on (by name).
    pub network: String,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// A service VIP with weighted backends (empty: connections are refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub backends: Weights,
    /// Also reached on this port of every host address (a Kubernetes
    /// NodePort), 127.0.0.1 included.
    pub node_port: Option<u16>,
}

/// A validated desired state for one nftables table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    table: String,
    networks: Vec<Network>,
    ports: Vec<PublishedPort>,
    vips: Vec<Vip>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error("invalid table name {0:?}: use 1 to 32 of [a-zA-Z0-9_-], starting with a letter (e.g. berth or bt-1234)")]
    BadTable(String),
    #[error("invalid {kind} name {name:?}: use 1 to 64 printable characters without quotes")]
    BadName { kind: &'static str, name: String },
    #[error("network {network:?}: invalid bridge name {bridge:?}: use 1 to 15 of [a-zA-Z0-9_.-]")]
    BadBridge { network: String, bridge: String },
    #[error("network {network:?} is defined twice")]
    DuplicateNetwork { network: String },
    #[error("networks {first:?} and {second:?} both use bridge {bridge:?}; give each network its own bridge")]
    DuplicateBridge { first: String, second: String, bridge: String },
    #[error("network {network:?}: {source}")]
    Subnet { network: String, source: berth_core::net::IpamError },
    #[error("network {network:?}: gateway {gateway} is not a host address of {subnet}")]
    BadGateway { network: String, gateway: Ipv4Addr, subnet: Ipv4Cidr },
    #[error("{owner}: network {network:?} does not exist; attach the container to a defined network")]
    UnknownNetwork { owner: String, network: String },
    #[error("{owner}: network {network:?} is internal; ports cannot be published to it")]
    InternalPublish { owner: String, network: String },
    #[error("{owner}: container address {addr} is not a host address of network {network:?} ({subnet})")]
    ContainerOutsideNetwork { owner: String, addr: Ipv4Addr, network: String, subnet: Ipv4Cidr },
    #[error("{owner}: port 0 is not valid; use 1-65535")]
    PortZero { owner: String },
    #[error(transparent)]
    PortConflict(#[from] PortError),
    #[error("VIP {vip:?} is defined twice")]
    DuplicateVip { vip: String },
    #[error("VIP {vip:?}: {ip}:{port}/{protocol} is already served by VIP {other:?}")]
    DuplicateVipAddress { vip: String, other: String, ip: Ipv4Addr, port: u16, protocol: Protocol },
    #[error("VIP {vip:?}: node port {port}/{protocol} is already used by {other}; choose another")]
    NodePortTaken { vip: String, port: u16, protocol: Protocol, other: String },
    #[error("VIP {vip:?}: address {ip} {why}; choose a unicast address outside every network subnet")]
    BadVipAddress { vip: String, ip: Ipv4Addr, why: String },
}

fn valid_table(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && name.chars().all(|c| !c.is_control() && c != '"' && c != '\'')
}

fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Desired {
    /// Validates a whole state. Order is kept (it decides rule order, so
    /// the compiled batch is stable for the same input).
    pub fn try_new(
        table: &str,
        networks: Vec<Network>,
        ports: Vec<PublishedPort>,
        vips: Vec<Vip>,
    ) -> Result<Self, DesiredError> {
        if !valid_table(table) {
            return Err(DesiredError::BadTable(table.to_string()));
        }
        check_networks(&networks)?;
        check_ports(&networks, &ports)?;
        check_vips(&networks, &ports, &vips)?;
        Ok(Self { table: table.to_string(), networks, ports, vips })
    }

    /// Nothing but the (empty) table: what a daemon with no networks applies.
    pub fn empty(table: &str) -> Result<Self, DesiredError> {
        Self::try_new(table, Vec::new(), Vec::new(), Vec::new())
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    pub fn ports(&self) -> &[PublishedPort] {
        &self.ports
    }

    pub fn vips(&self) -> &[Vip] {
        &self.vips
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }
}

fn check_networks(networks: &[Network]) -> Result<(), DesiredError> {
    for (i, n) in networks.iter().enumerate() {
        if !valid_name(&n.name) {
            return Err(DesiredError::BadName { kind: "network", name: n.name.clone() });
        }
        if !valid_ifname(&n.bridge) {
            return Err(DesiredError::BadBridge { network: n.name.clone(), bridge: n.bridge.clone() });
        }
        let earlier = &networks[..i];
        if earlier.iter().any(|o| o.name == n.name) {
            return Err(DesiredError::DuplicateNetwork { network: n.name.clone() });
        }
        if let Some(o) = earlier.iter().find(|o| o.bridge == n.bridge) {
            return Err(DesiredError::DuplicateBridge {
                first: o.name.clone(),
                second: n.name.clone(),
                bridge: n.bridge.clone(),
            });
        }
        check_subnet(n.subnet, earlier.iter().map(|o| (o.name.as_str(), o.subnet)))
            .map_err(|source| DesiredError::Subnet { network: n.name.clone(), source })?;
        let reserved = n.gateway == n.subnet.network() || n.gateway == n.subnet.broadcast();
        if !n.subnet.contains(n.gateway) || (reserved && n.subnet.prefix() < 31) {
            return Err(DesiredError::BadGateway { network: n.name.clone(), gateway: n.gateway, subnet: n.subnet });
        }
    }
    Ok(())
}

fn check_ports(networks: &[Network], ports: &[PublishedPort]) -> Result<(), DesiredError> {
    for p in ports {
        let network = networks
            .iter()
            .find(|n| n.name == p.network)
            .ok_or_else(|| DesiredError::UnknownNetwork { owner: p.owner.clone(), network: p.network.clone() })?;
        if network.internal {
            return Err(DesiredError::InternalPublish { owner: p.owner.clone(), network: p.network.clone() });
        }
        if !network.subnet.is_host(p.container_ip) {
            return Err(DesiredError::ContainerOutsideNetwork {
                owner: p.owner.clone(),
                addr: p.container_ip,
                network: network.name.clone(),
                subnet: network.subnet,
            });
        }
        if p.host_port == 0 || p.container_port == 0 {
            return Err(DesiredError::PortZero { owner: p.owner.clone() });
        }
    }
    let bindings = ports.iter().map(|p| {
        let host_ip = p.host_ip.filter(|ip| !ip.is_unspecified());
        (p.owner.as_str(), HostBinding { host_ip, host_port: p.host_port, protocol: p.protocol })
    });
    check_bindings(bindings)?;
    Ok(())
}

fn check_vips(networks: &[Network], ports: &[PublishedPort], vips: &[Vip]) -> Result<(), DesiredError> {
    let mut seen = BTreeSet::new();
    for (i, v) in vips.iter().enumerate() {
        if !valid_name(&v.name) {
            return Err(DesiredError::BadName { kind: "VIP", name: v.name.clone() });
        }
        if !seen.insert(v.name.as_str()) {
            return Err(DesiredError::DuplicateVip { vip: v.name.clone() });
        }
        if v.port == 0 {
            return Err(DesiredError::PortZero { owner: format!("VIP {:?}", v.name) });
        }
        let bad = |why: String| DesiredError::BadVipAddress { vip: v.name.clone(), ip: v.ip, why };
        if v.ip.is_unspecified() || v.ip.is_loopback() || v.ip.is_multicast() || v.ip.is_broadcast() {
            return Err(bad("is not a unicast address".into()));
        }
        if let Some(n) = networks.iter().find(|n| n.subnet.contains(v.ip)) {
            return Err(bad(format!("lies in network {:?} ({})", n.name, n.subnet)));
        }
        if let Some(np) = v.node_port {
            if np == 0 {
                return Err(DesiredError::PortZero { owner: format!("VIP {:?} node port", v.name) });
            }
            if let Some(o) = vips[..i].iter().find(|o| o.node_port == Some(np) && o.protocol == v.protocol) {
                return Err(DesiredError::NodePortTaken {
                    vip: v.name.clone(),
                    port: np,
                    protocol: v.protocol,
                    other: format!("VIP {:?}", o.name),
                });
            }
            if let Some(p) = ports.iter().find(|p| p.host_port == np && p.protocol == v.protocol) {
                return Err(DesiredError::NodePortTaken {
                    vip: v.name.clone(),
                    port: np,
                    protocol: v.protocol,
                    other: p.owner.clone(),
                });
            }
        }
        if let Some(o) = vips[..i].iter().find(|o| (o.ip, o.port, o.protocol) == (v.ip, v.port, v.protocol)) {
            return Err(DesiredError::DuplicateVipAddress {
                vip: v.name.clone(),
                other: o.name.clone(),
                ip: v.ip,
                port: v.port,
                protocol: v.protocol,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, bridge: &str, subnet: &str, internal: bool) -> Network {
        let subnet: Ipv4Cidr = subnet.parse().unwrap();
        Network { name: name.into(), bridge: bridge.into(), subnet, gateway: subnet.first_host(), internal }
    }

    fn port(owner: &str, host_ip: Option<&str>, host_port: u16, ctr: &str) -> PublishedPort {
        PublishedPort {
            owner: format!("container {owner:?}"),
            host_ip: host_ip.map(|h| h.parse().unwrap()),
            host_port,
            protocol: Protocol::Tcp,
            network: "n1".into(),
            container_ip: ctr.parse().unwrap(),
            container_port: 80,
        }
    }

    fn vip(name: &str, ip: &str, port: u16) -> Vip {
        Vip {
            name: name.into(),
            ip: ip.parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
            backends: Weights::none(),
            node_port: None,
        }
    }

    fn err(networks: Vec<Network>, ports: Vec<PublishedPort>, vips: Vec<Vip>) -> String {
        Desired::try_new("berth", networks, ports, vips).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_state_is_kept_in_order() {
        let d = Desired::try_new(
            "bt-42",
            vec![net("n1", "br-n1", "10.88.0.0/24", false), net("n2", "br-n2", "10.88.1.0/24", true)],
            vec![port("web", None, 8080, "10.88.0.2")],
            vec![vip("b", "10.96.0.2", 80), vip("a", "10.96.0.1", 80)],
        )
        .unwrap();
        assert_eq!(d.table(), "bt-42");
        assert_eq!(d.vips()[0].name, "b");
        assert!(d.network("n2").unwrap().internal);
    }

    #[test]
    fn table_and_bridge_names_are_checked() {
        for t in ["", "1abc", "a b", "a;b", &"x".repeat(33)] {
            assert!(matches!(Desired::empty(t), Err(DesiredError::BadTable(_))), "{t:?}");
        }
        let e = err(vec![net("n1", "a-very-long-bridge", "10.88.0.0/24", false)], vec![], vec![]);
        assert!(e.contains("invalid bridge name \"a-very-long-bridge\""), "{e}");
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let e =
            err(vec![net("b", "br-b", "10.88.1.0/24", false), net("a", "br-a", "10.88.0.0/16", false)], vec![], vec![]);
        assert_eq!(
            e,
            "network \"a\": subnet 10.88.0.0/16 overlaps network \"b\" (10.88.1.0/24); choose a subnet outside it"
        );
        let e = err(vec![net("a", "br", "10.88.0.0/24", false), net("b", "br", "10.89.0.0/24", false)], vec![], vec![]);
        assert!(e.contains("both use bridge \"br\""), "{e}");
        let mut bad_gw = net("a", "br", "10.88.0.0/24", false);
        bad_gw.gateway = "10.88.0.255".parse().unwrap();
        assert!(err(vec![bad_gw], vec![], vec![]).contains("gateway 10.88.0.255 is not a host address"));
    }

    #[test]
    fn published_ports_are_checked() {
        let n1 = || vec![net("n1", "br-n1", "10.88.0.0/24", false)];
        let e = err(
            n1(),
            vec![port("a", None, 8080, "10.88.0.2"), port("b", Some("127.0.0.1"), 8080, "10.88.0.3")],
            vec![],
        );
        assert_eq!(
            e,
            "host port 127.0.0.1:8080/tcp is already published by container \"a\"; choose another host port or host address"
        );
        assert!(Desired::try_new(
            "berth",
            n1(),
            vec![port("a", Some("127.0.0.1"), 8080, "10.88.0.2"), port("b", Some("10.0.0.1"), 8080, "10.88.0.3")],
            vec![]
        )
        .is_ok());
        let e = err(n1(), vec![port("a", None, 8080, "10.99.0.2")], vec![]);
        assert!(e.contains("container address 10.99.0.2 is not a host address of network \"n1\""), "{e}");
        let mut other = port("a", None, 8080, "10.88.0.2");
        other.network = "nope".into();
        assert!(err(n1(), vec![other], vec![]).contains("network \"nope\" does not exist"));
        let e = err(vec![net("n1", "br-n1", "10.88.0.0/24", true)], vec![port("a", None, 8080, "10.88.0.2")], vec![]);
        assert_eq!(e, "container \"a\": network \"n1\" is internal; ports cannot be published to it");
    }

    #[test]
    fn vips_are_checked() {
        let e = err(vec![], vec![], vec![vip("a", "10.96.0.1", 80), vip("b", "10.96.0.1", 80)]);
        assert_eq!(e, "VIP \"b\": 10.96.0.1:80/tcp is already served by VIP \"a\"");
        assert!(err(vec![], vec![], vec![vip("a", "10.96.0.1", 80), vip("a", "10.96.0.2", 80)]).contains("twice"));
        assert!(Desired::try_new("berth", vec![], vec![], vec![vip("a", "10.96.0.1", 80), vip("b", "10.96.0.1", 81)])
            .is_ok());
        let e = err(vec![net("n1", "br", "10.96.0.0/24", false)], vec![], vec![vip("a", "10.96.0.1", 80)]);
        assert!(e.contains("lies in network \"n1\""), "{e}");
        assert!(err(vec![], vec![], vec![vip("a", "127.0.0.1", 80)]).contains("not a unicast address"));
        assert!(err(vec![], vec![], vec![vip("a\"b", "10.96.0.1", 80)]).contains("invalid VIP name"));
    }
}
