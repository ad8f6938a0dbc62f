//! A container's place on the networks: planned at create (so bad input is
//! refused before anything exists), made at start (namespace, veths,
//! addresses, published ports, resolv.conf and hosts), undone at exit.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::api::{ContainerCreateRequest, ContainerNetwork, IdMapping, NetworkAttachment, PublishedPortView};
use berth_core::net::{
    check_bindings, pick_host_port, AddressPool, HostBinding, PortSpec, Protocol, DEFAULT_HOST_PORT_RANGE,
};
use berth_net::PublishedPort;
use berth_store::{ContainerRecord, StoreError};

use super::{BoxError, NetworkError, NetworkRecord, Networks, Result};

/// How a container is networked, decided at create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// Its own namespace with only loopback.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace (by id).
    Container(String),
    /// Its own namespace on these Berth networks (the first has the
    /// default route and the published ports).
    Bridge(Vec<String>),
}

/// What the spec needs to know, fixed at create.
pub struct Attached {
    pub plan: NetworkPlan,
    /// The namespace to join, when not the host's or a new empty one.
    pub netns: Option<PathBuf>,
    /// The user namespace that owns `netns`, when it is not the host's:
    /// a container in a user namespace joins it too.
    pub userns: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
}

impl Networks {
    /// The namespace file of a container in bridge mode.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.settings.netns_dir.join(self.netns_name(id))
    }

    pub(super) fn netns_name(&self, id: &str) -> String {
        format!("{}-{}", self.settings.prefix, &id[..12])
    }

    /// The user namespace that owns the network namespace of `id` (a
    /// container or a pod sandbox), if it was made in one.
    pub fn userns_path(&self, id: &str) -> PathBuf {
        self.kernel.namespaces.userns_path(&self.netns_name(id))
    }

    /// Decides and checks a container's networking at create. `other`
    /// resolves `container:NAME` to that container's id, bundle and user
    /// namespace mapping.
    pub fn plan(
        &self,
        req: &ContainerCreateRequest,
        bundle: &Path,
        id: &str,
        other: impl Fn(&str) -> Option<(String, PathBuf, Option<IdMapping>)>,
    ) -> Result<Attached> {
        for p in &req.publish {
            PortSpec::parse(p).map_err(|e| NetworkError::Invalid(e.to_string()))?;
        }
        let special = req
            .networks
            .iter()
            .find(|n| matches!(n.as_str(), "none" | "host") || n.starts_with("container:") || n.starts_with("pod:"));
        if let Some(s) = special {
            if req.networks.len() > 1 {
                return Err(NetworkError::Invalid(format!(
                    "--network {s} cannot be combined with other networks; give it alone"
                )));
            }
            if !req.publish.is_empty() || req.publish_all {
                return Err(NetworkError::Invalid(format!(
                    "ports cannot be published with --network {s}; use a Berth network (the default, or one from \
                     'berth network create')"
                )));
            }
        }
        match special.map(String::as_str) {
            Some("none") => {
                Ok(Attached { plan: NetworkPlan::None, netns: None, userns: None, resolv_conf: None, hosts: None })
            }
            Some("host") => Ok(Attached {
                plan: NetworkPlan::Host,
                netns: None,
                userns: None,
                resolv_conf: Some(PathBuf::from("/etc/resolv.conf")),
                hosts: Some(PathBuf::from("/etc/hosts")),
            }),
            Some(s) if s.starts_with("pod:") => {
                let pod = &s["pod:".len()..];
                let sandbox = self.sandbox(pod)?.ok_or_else(|| {
                    NetworkError::Invalid(format!("--network {s}: the pod has no network sandbox yet"))
                })?;
                Ok(Attached {
                    netns: Some(sandbox.netns),
                    userns: sandbox.userns,
                    resolv_conf: Some(sandbox.resolv_conf),
                    hosts: Some(sandbox.hosts),
                    plan: NetworkPlan::Container(pod.to_string()),
                })
            }
            Some(s) => {
                let name = &s["container:".len()..];
                let (other_id, other_bundle, other_userns) = other(name).ok_or_else(|| {
                    NetworkError::Invalid(format!("--network container:{name}: no such container; start it first"))
                })?;
                Ok(Attached {
                    netns: Some(self.netns_path(&other_id)),
                    userns: other_userns.map(|_| self.userns_path(&other_id)),
                    resolv_conf: Some(other_bundle.join("resolv.conf")),
                    hosts: Some(other_bundle.join("hosts")),
                    plan: NetworkPlan::Container(other_id),
                })
            }
            None => {
                let mut names = Vec::new();
                for n in &req.networks {
                    let n = if n == "bridge" { self.settings.default_network.clone() } else { n.clone() };
                    if n != self.settings.default_network {
                        self.get(&n)?;
                    }
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                if names.is_empty() {
                    names.push(self.settings.default_network.clone());
                }
                for a in &req.network_aliases {
                    if a.is_empty()
                        || a.len() > 63
                        || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    {
                        return Err(NetworkError::Invalid(format!(
                            "--network-alias {a:?} is not a DNS name: use letters, digits, '-' and '.'"
                        )));
                    }
                }
                Ok(Attached {
                    netns: Some(self.netns_path(id)),
                    userns: req.userns_mapping.map(|_| self.userns_path(id)),
                    resolv_conf: Some(bundle.join("resolv.conf")),
                    hosts: Some(bundle.join("hosts")),
                    plan: NetworkPlan::Bridge(names),
                })
            }
        }
    }

    /// Makes the container's networking real before its process starts.
    /// On failure nothing of it is left. The caller stores the answer in
    /// the container's record and then calls [`Networks::sync`].
    pub async fn attach(
        &self,
        c: &ContainerRecord,
        req: &ContainerCreateRequest,
        exposed: &[String],
        bundle: &Path,
        hostname: &str,
    ) -> Result<ContainerNetwork> {
        let plan = self.plan(req, bundle, &c.id, |_| None).ok().map(|a| a.plan);
        let Some(NetworkPlan::Bridge(names)) = plan else {
            // `container:` plans fail to resolve here; their mode is all
            // that is recorded.
            let mode = req.networks.first().cloned().unwrap_or_else(|| "none".into());
            return Ok(ContainerNetwork { mode, ..Default::default() });
        };
        let _guard = self.lock.lock().await;
        // Whatever an interrupted earlier attempt left goes first (its
        // namespace file is the sign: it is made before anything else).
        if self.netns_path(&c.id).exists() {
            self.undo(&c.id, names.len()).await;
        }
        // The record with these attachments is stored by the caller; DNS
        // answers for it follow at its sync.
        match self.attach_locked(c, req, exposed, bundle, hostname, &names).await {
            Ok(n) => Ok(n),
            Err(e) => {
                self.undo(&c.id, names.len()).await;
                Err(e)
            }
        }
    }

    async fn attach_locked(
        &self,
        c: &ContainerRecord,
        req: &ContainerCreateRequest,
        exposed: &[String],
        bundle: &Path,
        hostname: &str,
        names: &[String],
    ) -> Result<ContainerNetwork> {
        let mut networks: Vec<NetworkRecord> = Vec::new();
        for n in names {
            networks.push(if *n == self.settings.default_network {
                self.default_network_locked()?
            } else {
                self.get(n)?
            });
        }
        let ports = self.bindings(c, req, exposed)?;
        if !ports.is_empty() && networks[0].internal {
            return Err(NetworkError::Invalid(format!(
                "network {:?} is internal; ports cannot be published to it",
                networks[0].name
            )));
        }
        let (links, namespaces) = (Arc::clone(&self.kernel.links), Arc::clone(&self.kernel.namespaces));
        let netns_name = self.netns_name(&c.id);
        let specs: Vec<berth_net::BridgeSpec> = networks
            .iter()
            .map(|n| berth_net::BridgeSpec {
                name: n.bridge.clone(),
                gateway: n.gateway,
                subnet: n.subnet,
                mtu: Some(n.mtu),
            })
            .collect();
        // A container in a user namespace gets a network namespace that
        // namespace owns (see berth_net::netns).
        let owner = req.userns_mapping;
        let netns = blocking("creating the container's network namespace", move || {
            for s in &specs {
                links.ensure_bridge(s)?;
            }
            Ok(match owner {
                Some(m) => namespaces.create_owned(&netns_name, m),
                None => namespaces.create(&netns_name),
            }?)
        })
        .await?;

        let mut attachments = Vec::new();
        for (i, n) in networks.iter().enumerate() {
            let ip = self.claim(n, &c.id)?;
            attachments.push(self.link(n, &c.id, &netns, i as u32, ip, &req.network_aliases).await?);
        }
        let resolv = berth_dns::ContainerResolvConf::new(networks[0].gateway.into());
        write_etc_files(bundle, &resolv, &attachments[0].ip, hostname, &c.name)?;
        Ok(ContainerNetwork { mode: "bridge".into(), networks: attachments, ports })
    }

    /// Adds a network to a running container: one more interface
    /// (`ethN`, the lowest free N) in its namespace. The caller records it
    /// and syncs.
    pub async fn connect(&self, c: &ContainerRecord, network: &str, aliases: &[String]) -> Result<NetworkAttachment> {
        if c.network.mode != "bridge" {
            return Err(NetworkError::Invalid(format!(
                "container {} does not have a network namespace of its own (network mode {:?})",
                c.name, c.network.mode
            )));
        }
        if c.network.networks.iter().any(|a| a.network == network) {
            return Err(NetworkError::Conflict(format!("container {} is already on network {network:?}", c.name)));
        }
        let _guard = self.lock.lock().await;
        let n =
            if network == self.settings.default_network { self.default_network_locked()? } else { self.get(network)? };
        let index = (0..).find(|i| !c.network.networks.iter().any(|a| a.interface == format!("eth{i}"))).unwrap_or(0);
        let spec =
            berth_net::BridgeSpec { name: n.bridge.clone(), gateway: n.gateway, subnet: n.subnet, mtu: Some(n.mtu) };
        let links = Arc::clone(&self.kernel.links);
        blocking("creating the bridge", move || Ok(links.ensure_bridge(&spec)?)).await?;
        let ip = self.claim(&n, &c.id)?;
        let linked = self.link(&n, &c.id, &self.netns_path(&c.id), index, ip, aliases).await;
        if linked.is_err() {
            let _ = self.store.release_address(&n.name, &ip.to_string());
        }
        linked
    }

    /// Joins the namespace to network `n` as `eth{index}` with address
    /// `ip`; the first interface carries the default route.
    pub(super) async fn link(
        &self,
        n: &NetworkRecord,
        id: &str,
        netns: &Path,
        index: u32,
        ip: Ipv4Addr,
        aliases: &[String],
    ) -> Result<NetworkAttachment> {
        let a = berth_net::Attachment {
            netns: netns.to_path_buf(),
            bridge: n.bridge.clone(),
            host_ifname: berth_net::host_ifname(&self.settings.prefix, id, index),
            container_ifname: format!("eth{index}"),
            address: ip,
            subnet: n.subnet,
            gateway: (index == 0).then_some(n.gateway),
            mtu: Some(n.mtu),
            // Reused addresses keep their MAC, so no neighbour cache
            // sends a new container's replies to the old one's MAC.
            mac: Some(berth_net::MacAddr::for_ipv4(ip)),
        };
        let links = Arc::clone(&self.kernel.links);
        blocking("linking the container to its network", move || Ok(links.attach(&a).map(drop)?)).await?;
        Ok(NetworkAttachment {
            network: n.name.clone(),
            ip: ip.to_string(),
            gateway: n.gateway.to_string(),
            interface: format!("eth{index}"),
            aliases: aliases.to_vec(),
        })
    }

    /// Takes one network's interface out of a running container and gives
    /// its address back. The caller records it and syncs.
    pub async fn disconnect(&self, c: &ContainerRecord, a: &NetworkAttachment) -> Result<()> {
        let _guard = self.lock.lock().await;
        let index: u32 = a.interface.trim_start_matches("eth").parse().unwrap_or(0);
        let host = berth_net::host_ifname(&self.settings.prefix, &c.id, index);
        let links = Arc::clone(&self.kernel.links);
        blocking("unlinking the container from its network", move || Ok(links.detach(&host)?)).await?;
        self.store.release_address(&a.network, &a.ip)?;
        Ok(())
    }

    /// Takes the next free address of `n` for `owner`, durably.
    pub(super) fn claim(&self, n: &NetworkRecord, owner: &str) -> Result<Ipv4Addr> {
        let pool = AddressPool::try_new(&n.name, n.subnet, Some(n.gateway))
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        for _ in 0..8 {
            let ip = pool.allocate(&self.in_use(&n.name)?, None).map_err(|e| NetworkError::Conflict(e.to_string()))?;
            match self.store.claim_address(&n.name, &ip.to_string(), owner) {
                Ok(()) => return Ok(ip),
                Err(StoreError::Exists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(NetworkError::Conflict(format!("network {:?}: could not claim a free address", n.name)))
    }

    /// The host bindings of `-p` and `-P`, checked against every other
    /// container's and against what already listens on the host.
    fn bindings(
        &self,
        c: &ContainerRecord,
        req: &ContainerCreateRequest,
        exposed: &[String],
    ) -> Result<Vec<PublishedPortView>> {
        let mut specs: Vec<PortSpec> = req
            .publish
            .iter()
            .map(|p| PortSpec::parse(p).map_err(|e| NetworkError::Invalid(e.to_string())))
            .collect::<Result<_>>()?;
        if req.publish_all {
            for e in exposed {
                let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
                let protocol = if proto == "udp" { Protocol::Udp } else { Protocol::Tcp };
                if let Ok(port) = port.parse::<u16>() {
                    if !specs.iter().any(|s| s.container_port() == port && s.protocol() == protocol) {
                        specs.push(PortSpec::random(port, protocol).map_err(|e| NetworkError::Invalid(e.to_string()))?);
                    }
                }
            }
        }
        let others: Vec<(String, HostBinding)> = self
            .store
            .list_containers()?
            .into_iter()
            .filter(|o| o.id != c.id)
            .flat_map(|o| {
                let owner = format!("container {}", o.name);
                o.network
                    .ports
                    .iter()
                    .filter_map(move |p| view_binding(p).map(|b| (owner.clone(), b)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut taken: Vec<HostBinding> = others.iter().map(|(_, b)| *b).collect();
        let mut mine = Vec::new();
        for s in &specs {
            let port = match s.host_port() {
                Some(p) => p,
                None => pick_free(s, &taken)?,
            };
            let b = s.binding(port);
            check_host_free(&b)?;
            taken.push(b);
            mine.push((format!("container {}", c.name), b, s.container_port()));
        }
        check_bindings(
            others.iter().map(|(o, b)| (o.as_str(), *b)).chain(mine.iter().map(|(o, b, _)| (o.as_str(), *b))),
        )
        .map_err(|e| NetworkError::Conflict(e.to_string()))?;
        Ok(mine
            .into_iter()
            .map(|(_, b, cport)| PublishedPortView {
                host_ip: b.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                host_port: b.host_port,
                container_port: cport,
                protocol: b.protocol.as_str().into(),
            })
            .collect())
    }

    /// Undoes what [`Networks::attach`] made for a container: veths, its
    /// namespace, its addresses, then the rules. Idempotent; keeps going
    /// past errors and reports the first.
    pub async fn detach(&self, id: &str, networks: usize) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.undo(id, networks).await;
        self.sync_locked().await
    }

    pub(super) async fn undo(&self, id: &str, networks: usize) {
        let (links, namespaces) = (Arc::clone(&self.kernel.links), Arc::clone(&self.kernel.namespaces));
        let hosts: Vec<String> =
            (0..(networks as u32).max(1) + 4).map(|i| berth_net::host_ifname(&self.settings.prefix, id, i)).collect();
        let netns = self.netns_path(id);
        // Every step is tried, whatever failed before it.
        let failed = tokio::task::spawn_blocking(move || {
            let mut failed: Vec<(String, BoxError)> = Vec::new();
            for h in &hosts {
                if let Err(e) = links.detach(h) {
                    failed.push((format!("removing link {h}"), e.into()));
                }
            }
            if let Err(e) = namespaces.delete(&netns) {
                failed.push((format!("removing {}", netns.display()), e.into()));
            }
            failed
        })
        .await
        .unwrap_or_else(|e| vec![("network cleanup".to_string(), e.into())]);
        for (what, e) in failed {
            tracing::warn!(container = %id, error = %e, "network cleanup incomplete: {what}");
        }
        if let Err(e) = self.store.release_addresses(id) {
            tracing::warn!(container = %id, error = %e, "releasing addresses failed");
        }
    }

    /// Namespaces Berth left behind (a crash between create and record):
    /// those of no container the store knows are removed.
    pub async fn collect_garbage(&self, known: &BTreeSet<String>) {
        let namespaces = Arc::clone(&self.kernel.namespaces);
        let prefix = format!("{}-", self.settings.prefix);
        let keep: BTreeSet<String> = known.iter().chain(&self.sandbox_ids()).map(|id| self.netns_name(id)).collect();
        let _ = blocking("collecting leftover network namespaces", move || {
            for p in namespaces.list(&prefix)? {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                if !keep.contains(&name) {
                    tracing::warn!(netns = %p.display(), "removing a network namespace no container owns");
                    let _ = namespaces.delete(&p);
                }
            }
            Ok(())
        })
        .await;
    }
}

fn view_binding(p: &PublishedPortView) -> Option<HostBinding> {
    Some(HostBinding {
        host_ip: if p.host_ip.is_empty() { None } else { Some(p.host_ip.parse().ok()?) },
        host_port: p.host_port,
        protocol: if p.protocol == "udp" { Protocol::Udp } else { Protocol::Tcp },
    })
}

/// A free host port for a spec without one: free among Berth's bindings and
/// on the host.
fn pick_free(spec: &PortSpec, taken: &[HostBinding]) -> Result<u16> {
    let mut taken = taken.to_vec();
    for _ in 0..64 {
        let port =
            pick_host_port(spec, &taken, DEFAULT_HOST_PORT_RANGE).map_err(|e| NetworkError::Conflict(e.to_string()))?;
        let b = spec.binding(port);
        if check_host_free(&b).is_ok() {
            return Ok(port);
        }
        taken.push(b);
    }
    Err(NetworkError::Conflict("no free host port found in 49153-60999".into()))
}

/// Whether a host process already listens where the binding would; a
/// DNAT there would silently steal its traffic.
fn check_host_free(b: &HostBinding) -> Result<()> {
    let ip = b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let free = match b.protocol {
        Protocol::Tcp => std::net::TcpListener::bind((ip, b.host_port)).map(drop),
        Protocol::Udp => std::net::UdpSocket::bind((ip, b.host_port)).map(drop),
    };
    free.map_err(|e| {
        NetworkError::Conflict(format!(
            "cannot publish {b}: {}; choose another host port",
            if e.kind() == std::io::ErrorKind::AddrInUse {
                "the port is already in use on the host".to_string()
            } else {
                e.to_string()
            }
        ))
    })
}

pub(super) fn write_etc_files(
    bundle: &Path,
    resolv: &berth_dns::ContainerResolvConf,
    ip: &str,
    hostname: &str,
    name: &str,
) -> Result<()> {
    let resolv = resolv.render().map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}{}\n",
        if hostname == name { String::new() } else { format!(" {name}") }
    );
    for (file, text) in [("resolv.conf", resolv), ("hosts", hosts)] {
        berth_shim::protocol::write_atomic(&bundle.join(file), text.as_bytes())
            .map_err(NetworkError::kernel(format!("writing {}", bundle.join(file).display())))?;
    }
    Ok(())
}

/// Published ports of every container that holds some, for the rules.
pub(super) fn published_ports(containers: &[ContainerRecord]) -> Vec<PublishedPort> {
    containers
        .iter()
        .filter_map(|c| {
            let first = c.network.networks.first()?;
            let ip: Ipv4Addr = first.ip.parse().ok()?;
            Some(c.network.ports.iter().filter_map(move |p| {
                let b = view_binding(p)?;
                Some(PublishedPort {
                    owner: format!("container {}", c.name),
                    host_ip: b.host_ip,
                    host_port: b.host_port,
                    protocol: b.protocol,
                    network: first.network.clone(),
                    container_ip: ip,
                    container_port: p.container_port,
                })
            }))
        })
        .flatten()
        .collect()
}

pub(super) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::result::Result<T, BoxError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(NetworkError::kernel(what))?.map_err(NetworkError::kernel(what))
}
