//! [`NetlinkLinks`]: the [`NetLinks`] trait over rtnetlink, with no helper
//! processes. Work inside a container's namespace goes through a socket
//! opened there by a short-lived thread (see [`crate::netns::run_in`]).

use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_core::net::Ipv4Cidr;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::rtnl::{NlError, Rtnl};
use super::{check_ifname, sysctl_path, Attached, Attachment, BridgeSpec, LinkError, MacAddr, NetLinks};
use crate::netns::{run_in, NetnsError};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// The real [`NetLinks`]. Bridges, host ends of veth pairs and sysctls
/// live in the caller's network namespace, or in the one given to
/// [`in_netns`](Self::in_netns) (how the privileged tests keep everything
/// off the real host).
#[derive(Debug, Clone)]
pub struct NetlinkLinks {
    netns: Option<PathBuf>,
    proc: PathBuf,
}

impl Default for NetlinkLinks {
    fn default() -> Self {
        Self::new()
    }
}

fn fail(action: impl Into<String>) -> impl FnOnce(NlError) -> LinkError {
    let action = action.into();
    move |e| LinkError::Netlink { action, source: e.source, detail: e.detail }
}

/// What Berth needs to know about an existing link.
struct Facts {
    index: u32,
    /// `IFLA_INFO_KIND` (`bridge`, `veth`, …); `None` for devices without
    /// one, such as physical NICs and `lo`.
    kind: Option<String>,
    mac: Option<Vec<u8>>,
}

impl Facts {
    fn kind_name(&self) -> String {
        self.kind.as_ref().map_or_else(|| "a device without a kind (physical?)".into(), |k| format!("a {k}"))
    }
}

fn link_named(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

fn get_link(rt: &mut Rtnl, name: &str) -> Result<Option<Facts>, NlError> {
    let answer = match rt.get(RouteNetlinkMessage::GetLink(link_named(name))) {
        Ok(answer) => answer,
        Err(e) if e.errno() == Some(ENODEV) => return Ok(None),
        Err(e) => return Err(e),
    };
    let RouteNetlinkMessage::NewLink(msg) = answer else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{answer:?} instead of a link")).into());
    };
    let mut facts = Facts { index: msg.header.index, kind: None, mac: None };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        facts.kind = Some(kind.to_string());
                    }
                }
            }
            LinkAttribute::Address(mac) => facts.mac = Some(mac),
            _ => {}
        }
    }
    Ok(Some(facts))
}

fn up(msg: &mut LinkMessage) {
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
}

/// Brings `lo` up in the calling thread's namespace (new namespaces start
/// with it down).
pub(crate) fn loopback_up() -> io::Result<()> {
    let mut rt = Rtnl::open()?;
    let mut msg = link_named("lo");
    up(&mut msg);
    rt.request(RouteNetlinkMessage::NewLink(msg), 0).map_err(|e| e.source)
}

impl NetlinkLinks {
    /// Works in the caller's network namespace (the host's, for the daemon).
    pub fn new() -> Self {
        Self { netns: None, proc: PathBuf::from("/proc") }
    }

    /// Works in the network namespace at `netns` instead of the caller's.
    pub fn in_netns(netns: impl Into<PathBuf>) -> Self {
        Self { netns: Some(netns.into()), ..Self::new() }
    }

    /// Where procfs is mounted (default `/proc`).
    pub fn with_proc(mut self, proc: impl Into<PathBuf>) -> Self {
        self.proc = proc.into();
        self
    }

    fn where_(&self) -> String {
        self.netns.as_ref().map_or_else(String::new, |p| format!(" in {}", p.display()))
    }

    /// A socket in the namespace this instance manages.
    fn host(&self) -> Result<Rtnl, LinkError> {
        let open = match &self.netns {
            None => Rtnl::open(),
            Some(ns) => Rtnl::open_in(ns)?,
        };
        open.map_err(|source| LinkError::Netlink { action: "open a netlink socket".into(), source, detail: None })
    }

    /// The bridge's index, creating it (up, with a MAC derived from its
    /// name) if missing, or setting MTU and up on an existing one.
    fn ensure_bridge_link(&self, rt: &mut Rtnl, name: &str, mtu: Option<u32>) -> Result<u32, LinkError> {
        let action = || format!("create bridge {name}{}", self.where_());
        let mut msg = link_named(name);
        up(&mut msg);
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        match get_link(rt, name).map_err(fail(action()))? {
            Some(f) if f.kind.as_deref() != Some("bridge") => {
                Err(LinkError::WrongKind { name: name.into(), kind: f.kind_name(), expected: "a bridge" })
            }
            Some(f) => {
                msg.header.index = f.index;
                rt.request(RouteNetlinkMessage::NewLink(msg), 0)
                    .map_err(fail(format!("set bridge {name} up{}", self.where_())))?;
                Ok(f.index)
            }
            None => {
                msg.attributes.push(LinkAttribute::Address(MacAddr::derived(&["bridge", name]).bytes().to_vec()));
                msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
                rt.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map_err(fail(action()))?;
                let made = get_link(rt, name).map_err(fail(action()))?;
                made.map(|f| f.index).ok_or_else(|| LinkError::NoBridge { bridge: name.into() })
            }
        }
    }

    /// Leaves exactly `addr/prefix` as the IPv4 address of link `index`.
    fn set_only_address(&self, rt: &mut Rtnl, index: u32, spec: &BridgeSpec) -> Result<(), LinkError> {
        let name = &spec.name;
        let mut query = AddressMessage::default();
        query.header.family = AddressFamily::Inet;
        query.header.index = index;
        let present = rt
            .dump(RouteNetlinkMessage::GetAddress(query))
            .map_err(fail(format!("list the addresses of {name}{}", self.where_())))?;
        for msg in present {
            let RouteNetlinkMessage::NewAddress(m) = msg else { continue };
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            if m.header.index != index || (local == Some(spec.gateway) && m.header.prefix_len == spec.subnet.prefix()) {
                continue;
            }
            let shown = local.map_or_else(|| "?".into(), |ip| format!("{ip}/{}", m.header.prefix_len));
            match rt.request(RouteNetlinkMessage::DelAddress(m), 0) {
                Ok(()) => {}
                // Gone with a primary address deleted just before.
                Err(e) if e.errno() == Some(EADDRNOTAVAIL) => {}
                Err(e) => return Err(fail(format!("remove old address {shown} from {name}{}", self.where_()))(e)),
            }
        }
        let add = address_message(index, spec.gateway, spec.subnet);
        rt.request(RouteNetlinkMessage::NewAddress(add), NLM_F_CREATE | NLM_F_REPLACE).map_err(fail(format!(
            "add {}/{} to {name}{}",
            spec.gateway,
            spec.subnet.prefix(),
            self.where_()
        )))
    }

    /// Creates the veth pair; a leftover veth of the same host name is
    /// replaced once.
    fn create_veth(&self, rt: &mut Rtnl, a: &Attachment, bridge: u32, ns: &File) -> Result<(), LinkError> {
        let action = || {
            format!(
                "create veth {} (peer {} in {}){}",
                a.host_ifname,
                a.container_ifname,
                a.netns.display(),
                self.where_()
            )
        };
        for attempt in 0..2 {
            let err = match rt
                .request(RouteNetlinkMessage::NewLink(veth_message(a, bridge, ns)), NLM_F_CREATE | NLM_F_EXCL)
            {
                Ok(()) => return Ok(()),
                Err(e) if e.errno() == Some(EEXIST) => e,
                Err(e) => return Err(fail(action())(e)),
            };
            match get_link(rt, &a.host_ifname).map_err(fail(action()))? {
                Some(f) if f.kind.as_deref() == Some("veth") && attempt == 0 => {
                    let mut del = LinkMessage::default();
                    del.header.index = f.index;
                    rt.request(RouteNetlinkMessage::DelLink(del), 0).map_err(fail(format!(
                        "remove leftover veth {}{}",
                        a.host_ifname,
                        self.where_()
                    )))?;
                }
                Some(f) if f.kind.as_deref() != Some("veth") => {
                    return Err(LinkError::WrongKind {
                        name: a.host_ifname.clone(),
                        kind: f.kind_name(),
                        expected: "a veth",
                    });
                }
                // The host name is free: the name clashes in the container.
                _ => {
                    return Err(LinkError::Netlink {
                        action: action(),
                        source: err.source,
                        detail: Some(format!(
                            "{} already exists in {}; give each of a container's networks its own interface name (eth0, eth1, …)",
                            a.container_ifname,
                            a.netns.display()
                        )),
                    });
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Everything after the pair exists; the caller deletes the pair if
    /// this fails.
    fn configure(&self, host: &mut Rtnl, ctr: &mut Rtnl, a: &Attachment) -> Result<Attached, LinkError> {
        let inside = |what: &str| format!("{what} in {}", a.netns.display());
        let peer = get_link(ctr, &a.container_ifname)
            .map_err(fail(inside(&format!("find {}", a.container_ifname))))?
            .ok_or_else(|| LinkError::Netlink {
            action: inside(&format!("find {}", a.container_ifname)),
            source: io::Error::from_raw_os_error(ENODEV),
            detail: None,
        })?;
        let mut set_up = LinkMessage::default();
        set_up.header.index = peer.index;
        up(&mut set_up);
        ctr.request(RouteNetlinkMessage::NewLink(set_up), 0)
            .map_err(fail(inside(&format!("set {} up", a.container_ifname))))?;
        let add = address_message(peer.index, a.address, a.subnet);
        ctr.request(RouteNetlinkMessage::NewAddress(add), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(fail(inside(&format!("add {}/{} to {}", a.address, a.subnet.prefix(), a.container_ifname))))?;
        if let Some(gw) = a.gateway {
            ctr.request(RouteNetlinkMessage::NewRoute(default_route(peer.index, gw)), NLM_F_CREATE | NLM_F_EXCL)
                .map_err(|e| {
                    let mut err = fail(inside(&format!("add the default route via {gw}")))(e);
                    if let LinkError::Netlink { source, detail, .. } = &mut err {
                        if source.raw_os_error() == Some(EEXIST) {
                            *detail = Some("the namespace has a default route already; give a gateway only for the container's first network".into());
                        }
                    }
                    err
                })?;
        }
        host.request(RouteNetlinkMessage::NewLink(hairpin_message(&a.host_ifname)), 0).map_err(fail(format!(
            "turn hairpin mode on for {}{}",
            a.host_ifname,
            self.where_()
        )))?;
        let mac = peer.mac.as_deref().and_then(|m| MacAddr::try_from(m).ok());
        let mac = a.mac.or(mac).ok_or_else(|| LinkError::Netlink {
            action: inside(&format!("read the MAC address of {}", a.container_ifname)),
            source: io::Error::new(io::ErrorKind::InvalidData, "no Ethernet address in the kernel's answer"),
            detail: None,
        })?;
        Ok(Attached { mac })
    }

    /// Deletes `name` if it exists and is of `kind`.
    fn delete_link(&self, name: &str, kind: &'static str, expected: &'static str) -> Result<(), LinkError> {
        let mut rt = self.host()?;
        let action = || format!("delete {kind} {name}{}", self.where_());
        let Some(f) = get_link(&mut rt, name).map_err(fail(action()))? else { return Ok(()) };
        if f.kind.as_deref() != Some(kind) {
            return Err(LinkError::WrongKind { name: name.into(), kind: f.kind_name(), expected });
        }
        let mut del = LinkMessage::default();
        del.header.index = f.index;
        match rt.request(RouteNetlinkMessage::DelLink(del), 0) {
            Err(e) if e.errno() != Some(ENODEV) => Err(fail(action())(e)),
            _ => Ok(()),
        }
    }
}

fn address_message(index: u32, addr: Ipv4Addr, subnet: Ipv4Cidr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = subnet.prefix();
    m.header.index = index;
    m.header.scope = AddressScope::Universe;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(addr)));
    if subnet.prefix() <= 30 {
        m.attributes.push(AddressAttribute::Broadcast(subnet.broadcast()));
    }
    m
}

fn route_message(dst: Ipv4Cidr, scope: RouteScope) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = dst.prefix();
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = scope;
    m.header.kind = RouteType::Unicast;
    if dst.prefix() > 0 {
        m.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(dst.network())));
    }
    m
}

fn default_route(index: u32, gateway: Ipv4Addr) -> RouteMessage {
    let mut m = route_message(Ipv4Cidr::containing(Ipv4Addr::UNSPECIFIED, 0), RouteScope::Universe);
    m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    m
}

fn veth_message(a: &Attachment, bridge: u32, ns: &File) -> LinkMessage {
    // Not up yet: a veth end cannot be opened before its peer exists
    // (ENOTCONN); `configure` brings it up inside the namespace.
    let mut peer = link_named(&a.container_ifname);
    // Created straight inside the container's namespace: its name never
    // exists on the host, so eth0 of every container cannot clash there.
    peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
    if let Some(mtu) = a.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = a.mac {
        peer.attributes.push(LinkAttribute::Address(mac.bytes().to_vec()));
    }
    let mut host = link_named(&a.host_ifname);
    up(&mut host);
    if let Some(mtu) = a.mtu {
        host.attributes.push(LinkAttribute::Mtu(mtu));
    }
    host.attributes.push(LinkAttribute::Controller(bridge));
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    host
}

/// `ip link set NAME type bridge_slave hairpin on`
fn hairpin_message(name: &str) -> LinkMessage {
    let mut m = link_named(name);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(true)])),
    ]));
    m
}

impl NetLinks for NetlinkLinks {
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<(), LinkError> {
        spec.check()?;
        let mut rt = self.host()?;
        let index = self.ensure_bridge_link(&mut rt, &spec.name, spec.mtu)?;
        self.set_only_address(&mut rt, index, spec)?;
        self.set_sysctl(&format!("net/ipv4/conf/{}/route_localnet", spec.name), "1")
    }

    fn delete_bridge(&self, name: &str) -> Result<(), LinkError> {
        check_ifname("bridge", name)?;
        self.delete_link(name, "bridge", "a bridge")
    }

    fn ensure_vip_route(&self, bridge: &str, cidr: Ipv4Cidr) -> Result<(), LinkError> {
        check_ifname("VIP bridge", bridge)?;
        let mut rt = self.host()?;
        let index = self.ensure_bridge_link(&mut rt, bridge, None)?;
        let mut route = route_message(cidr, RouteScope::Link);
        route.attributes.push(RouteAttribute::Oif(index));
        rt.request(RouteNetlinkMessage::NewRoute(route), NLM_F_CREATE | NLM_F_REPLACE)
            .map_err(fail(format!("route {cidr} to {bridge}{}", self.where_())))
    }

    fn attach(&self, a: &Attachment) -> Result<Attached, LinkError> {
        a.check()?;
        let ns = File::open(&a.netns).map_err(|source| NetnsError::Open { path: a.netns.clone(), source })?;
        let mut ctr = Rtnl::open_in(&a.netns)?.map_err(|source| LinkError::Netlink {
            action: format!("open a netlink socket in {}", a.netns.display()),
            source,
            detail: None,
        })?;
        let mut host = self.host()?;
        let bridge = match get_link(&mut host, &a.bridge).map_err(fail(format!("find bridge {}", a.bridge)))? {
            None => return Err(LinkError::NoBridge { bridge: a.bridge.clone() }),
            Some(f) if f.kind.as_deref() != Some("bridge") => {
                return Err(LinkError::WrongKind { name: a.bridge.clone(), kind: f.kind_name(), expected: "a bridge" })
            }
            Some(f) => f.index,
        };
        self.create_veth(&mut host, a, bridge, &ns)?;
        let made = self.configure(&mut host, &mut ctr, a);
        if made.is_err() {
            // Deleting the host end takes the container end with it.
            let _ = self.detach(&a.host_ifname);
        }
        made
    }

    fn detach(&self, host_ifname: &str) -> Result<(), LinkError> {
        check_ifname("host-side veth", host_ifname)?;
        self.delete_link(host_ifname, "veth", "a veth")
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LinkError> {
        let path = self.proc.join("sys").join(sysctl_path(key)?);
        let write = |p: &Path| fs::write(p, value);
        let written = match &self.netns {
            None => write(&path),
            Some(ns) => run_in(ns, || write(&path))?,
        };
        written.map_err(|source| LinkError::Sysctl { key: key.to_string(), value: value.to_string(), source })
    }
}
