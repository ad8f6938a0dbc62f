//! Networks: bridge networks with persisted address allocation, the
//! containers' places on them, published ports and service VIPs, all made
//! real by one nftables table that is recompiled from the store and applied
//! in one transaction after every change.
//!
//! The store is the truth: networks and VIPs are declared objects, each
//! address held is a claim that can never be handed out twice, and a
//! running container's record says where it is attached. [`Networks::sync`]
//! derives the desired rules from that alone, so a daemon restart (or
//! someone flushing nftables) is repaired by one more sync.

mod attach;
mod dns;
mod sandbox;
mod services;
mod vips;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_core::api::{NetworkCreateRequest, NetworkInspect, NetworkMember};
use berth_core::net::{check_subnet, AddressPool, Ipv4Cidr, SubnetPool};
use berth_core::record::Record;
use berth_net::{Conntrack, Desired, Nftables, Ruleset};
use berth_store::{ContainerRecord, Records, Store, StoreError};
use serde::{Deserialize, Serialize};

pub use attach::{Attached, NetworkPlan};
pub use dns::DnsBind;
pub use sandbox::Sandbox;
pub use services::{ServiceNet, ServicePortNet};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("network {0:?} not found; list them with 'berth network ls'")]
    NotFound(String),
    #[error("VIP {0:?} not found; list them with 'berth vip ls'")]
    VipNotFound(String),
    /// The kernel (or a tool Berth drives) refused: `what` Berth was doing,
    /// and the cause.
    #[error("cannot program the network: {what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// The cause of a kernel or tool failure, kept whole for `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl NetworkError {
    /// For `map_err`: a kernel failure while doing `what`.
    pub(crate) fn kernel<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> NetworkError {
        let what = what.into();
        move |e| NetworkError::Kernel { what, source: e.into() }
    }
}

/// `[network]` settings, checked.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub prefix: String,
    pub default_network: String,
    pub default_subnet: Ipv4Cidr,
    pub subnet_pool: SubnetPool,
    pub service_cidr: Ipv4Cidr,
    pub netns_dir: PathBuf,
    pub mtu: u32,
}

/// A network as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    pub bridge: String,
    pub internal: bool,
    pub mtu: u32,
    pub created: String,
}

impl Record for NetworkRecord {
    const KIND: &'static str = "network";
    const WHAT: &'static str = "network record";
}

/// The kernel side, injected so the logic above it can be tested.
#[derive(Clone)]
pub struct Kernel {
    pub nft: Arc<dyn Nftables + Send + Sync>,
    pub conntrack: Arc<dyn Conntrack + Send + Sync>,
    pub links: Arc<dyn berth_net::NetLinks>,
    pub namespaces: Arc<dyn berth_net::Namespaces>,
}

pub struct Networks {
    store: Arc<dyn Store>,
    settings: NetworkSettings,
    kernel: Kernel,
    clock: Arc<dyn berth_core::clock::Clock>,
    /// Serialises changes to networks, addresses, VIPs and the rules.
    lock: tokio::sync::Mutex<()>,
    /// The ruleset last applied, for repair after a flush.
    applied: Mutex<Option<Ruleset>>,
    /// Set when the daemon stops: no rules are applied any more, so a
    /// repair or sync racing the shutdown cannot bring the table back.
    stopping: std::sync::atomic::AtomicBool,
    dns: dns::Dns,
}

fn valid_network_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !matches!(name, "none" | "host" | "bridge")
}

impl Networks {
    pub fn new(store: Arc<dyn Store>, settings: NetworkSettings, host: &crate::host::Host) -> Arc<Self> {
        Arc::new(Self {
            store,
            settings,
            kernel: host.kernel.clone(),
            clock: Arc::clone(&host.clock),
            lock: tokio::sync::Mutex::new(()),
            applied: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
            dns: dns::Dns::new(host.dns),
        })
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// Where the DNS server of `network` listens, while it runs.
    pub async fn dns_address(&self, network: &str) -> Option<std::net::SocketAddr> {
        self.dns.address(network).await
    }

    fn bridge_name(&self, network: &str) -> String {
        if network == self.settings.default_network {
            return format!("{}0", self.settings.prefix);
        }
        let hash = berth_core::Digest::of(network.as_bytes()).hex().to_string();
        format!("{}-{}", self.settings.prefix, &hash[..6])
    }

    pub fn get(&self, name: &str) -> Result<NetworkRecord> {
        self.store.get(name)?.ok_or_else(|| NetworkError::NotFound(name.to_string()))
    }

    pub fn records(&self) -> Result<Vec<NetworkRecord>> {
        Ok(self.store.all::<NetworkRecord>()?.into_iter().map(|(_, n)| n).collect())
    }

    /// Creates a network (its bridge appears when a container first joins).
    pub async fn create(&self, req: NetworkCreateRequest) -> Result<NetworkRecord> {
        let _guard = self.lock.lock().await;
        self.create_locked(req)
    }

    fn create_locked(&self, req: NetworkCreateRequest) -> Result<NetworkRecord> {
        if !valid_network_name(&req.name) {
            return Err(NetworkError::Invalid(format!(
                "network name {:?} is invalid: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or \
                 digit (none, host and bridge are reserved)",
                req.name
            )));
        }
        if self.store.get::<NetworkRecord>(&req.name)?.is_some() {
            return Err(NetworkError::Conflict(format!("network {:?} already exists", req.name)));
        }
        let existing = self.records()?;
        let taken: Vec<(&str, Ipv4Cidr)> = existing
            .iter()
            .map(|n| (n.name.as_str(), n.subnet))
            .chain(std::iter::once(("the service VIP range", self.settings.service_cidr)))
            .collect();
        let subnet = match &req.subnet {
            Some(s) => {
                let subnet = Ipv4Cidr::parse(s).map_err(|e| NetworkError::Invalid(format!("--subnet {s}: {e}")))?;
                check_subnet(subnet, taken.iter().copied()).map_err(|e| NetworkError::Conflict(e.to_string()))?;
                subnet
            }
            None if req.name == self.settings.default_network => {
                let subnet = self.settings.default_subnet;
                check_subnet(subnet, taken.iter().copied()).map_err(|e| NetworkError::Conflict(e.to_string()))?;
                subnet
            }
            None => self
                .settings
                .subnet_pool
                .pick(taken.iter().copied())
                .map_err(|e| NetworkError::Conflict(e.to_string()))?,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                g.parse().map_err(|_| NetworkError::Invalid(format!("--gateway {g:?} is not an IPv4 address")))?
            }
            None => subnet.first_host(),
        };
        AddressPool::try_new(&req.name, subnet, Some(gateway)).map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let mtu = req.mtu.unwrap_or(self.settings.mtu);
        if !(576..=65535).contains(&mtu) {
            return Err(NetworkError::Invalid(format!("--mtu {mtu} must be between 576 and 65535")));
        }
        let rec = NetworkRecord {
            name: req.name.clone(),
            subnet,
            gateway,
            bridge: self.bridge_name(&req.name),
            internal: req.internal,
            mtu,
            created: berth_core::clock::stamp_secs(self.clock.now()),
        };
        // Checked as the rules will see it before anything is stored.
        self.desired_with(Some(&rec), None)?;
        match self.store.create(&rec.name, &rec) {
            Err(StoreError::Exists { .. }) => {
                Err(NetworkError::Conflict(format!("network {:?} already exists", rec.name)))
            }
            other => other.map(|()| rec).map_err(Into::into),
        }
    }

    /// The default network, created on first use.
    pub(crate) fn default_network_locked(&self) -> Result<NetworkRecord> {
        match self.get(&self.settings.default_network) {
            Err(NetworkError::NotFound(_)) => self.create_locked(NetworkCreateRequest {
                name: self.settings.default_network.clone(),
                ..Default::default()
            }),
            other => other,
        }
    }

    pub fn inspect(&self, name: &str) -> Result<NetworkInspect> {
        let n = self.get(name)?;
        Ok(self.view(&n))
    }

    pub fn list(&self) -> Result<Vec<NetworkInspect>> {
        Ok(self.records()?.iter().map(|n| self.view(n)).collect())
    }

    fn view(&self, n: &NetworkRecord) -> NetworkInspect {
        let containers = self.store.list_containers().unwrap_or_default();
        let mut members: Vec<NetworkMember> = containers
            .iter()
            .flat_map(|c| {
                c.network.networks.iter().filter(|a| a.network == n.name).map(|a| NetworkMember {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    ip: a.ip.clone(),
                })
            })
            .collect();
        for s in self.sandbox_records().unwrap_or_default() {
            if let Some(a) = s.attachment.filter(|a| a.network == n.name) {
                members.push(NetworkMember { id: s.id.clone(), name: format!("pod {}", s.owner), ip: a.ip.clone() });
            }
        }
        NetworkInspect {
            name: n.name.clone(),
            subnet: n.subnet.to_string(),
            gateway: n.gateway.to_string(),
            bridge: n.bridge.clone(),
            internal: n.internal,
            mtu: n.mtu,
            created: n.created.clone(),
            dns: format!("{}:53", n.gateway),
            containers: members,
        }
    }

    /// Removes a network nobody uses: its bridge, DNS server and rules.
    pub async fn remove(&self, name: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        let n = self.get(name)?;
        let users: Vec<String> = self
            .store
            .list_containers()?
            .into_iter()
            .filter(|c| wants_network(c, name, &self.settings.default_network))
            .map(|c| c.name)
            .collect();
        let pods =
            self.sandbox_records()?.into_iter().filter(|s| s.attachment.as_ref().is_some_and(|a| a.network == name));
        let users: Vec<String> = users.into_iter().chain(pods.map(|s| format!("pod {}", s.owner))).collect();
        if !users.is_empty() {
            return Err(NetworkError::Conflict(format!(
                "network {name:?} is used by container(s) {}; remove them or disconnect them first",
                users.join(", ")
            )));
        }
        self.store.remove::<NetworkRecord>(name)?;
        self.dns.stop(name).await;
        let links = Arc::clone(&self.kernel.links);
        let bridge = n.bridge.clone();
        let removed = tokio::task::spawn_blocking(move || links.delete_bridge(&bridge)).await;
        let synced = self.sync_locked().await;
        if let Ok(Err(e)) = removed {
            return Err(NetworkError::Kernel { what: format!("removing bridge {}", n.bridge), source: e.into() });
        }
        synced
    }

    /// Everything the rules must say, from the store (plus one candidate
    /// network or VIP being checked before it is stored).
    fn desired_with(
        &self,
        extra_network: Option<&NetworkRecord>,
        vip_override: Option<&vips::VipRecord>,
    ) -> Result<Desired> {
        let mut networks = self.records()?;
        if let Some(n) = extra_network {
            networks.push(n.clone());
        }
        let nets: Vec<berth_net::Network> = networks
            .iter()
            .map(|n| berth_net::Network {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                gateway: n.gateway,
                internal: n.internal,
            })
            .collect();
        let ports = attach::published_ports(&self.store.list_containers()?);
        let mut vips = self.vip_records()?;
        if let Some(v) = vip_override {
            vips.retain(|o| o.name != v.name);
            vips.push(v.clone());
        }
        let mut vips = vips.iter().map(|v| v.to_net()).collect::<Result<Vec<_>>>()?;
        for s in self.service_records()? {
            vips.extend(s.vips()?);
        }
        Desired::try_new(&self.settings.prefix, nets, ports, vips).map_err(|e| NetworkError::Conflict(e.to_string()))
    }

    /// Recompiles the rules from the store and applies them in one
    /// transaction. Idempotent.
    pub async fn sync(&self) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.sync_locked().await
    }

    async fn sync_locked(&self) -> Result<()> {
        let desired = self.desired_with(None, None)?;
        self.apply(berth_net::compile(&desired)).await?;
        self.sync_dns().await
    }

    /// Every network with containers on it has its DNS server, answering
    /// exactly their names; the others' servers stop.
    async fn sync_dns(&self) -> Result<()> {
        let containers = self.store.list_containers()?;
        let sandboxes = self.sandbox_records()?;
        let services = self.service_records()?;
        let networks = self.records()?;
        for n in &networks {
            let used = containers.iter().any(|c| c.network.networks.iter().any(|a| a.network == n.name))
                || sandboxes.iter().any(|s| s.attachment.as_ref().is_some_and(|a| a.network == n.name));
            if used {
                self.dns.refresh(n, dns::entries(&n.name, &containers, &services)).await;
            } else {
                self.dns.stop(&n.name).await;
            }
        }
        for name in self.dns.running().await {
            if !networks.iter().any(|n| n.name == name) {
                self.dns.stop(&name).await;
            }
        }
        Ok(())
    }

    async fn apply(&self, ruleset: Ruleset) -> Result<()> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let nft = Arc::clone(&self.kernel.nft);
        let r = ruleset.clone();
        // Only the chains that changed when that is all that did (new
        // backends or weights); the whole table otherwise, or when the
        // kernel's table is not the one last applied (someone flushed it).
        let previous = self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let changes = previous.as_ref().and_then(|old| berth_net::ruleset::changes(old, &ruleset));
        tokio::task::spawn_blocking(move || match changes {
            Some(c) => nft.apply_changes(&c, &r).or_else(|_| nft.apply(&r)),
            None => nft.apply(&r),
        })
        .await
        .map_err(NetworkError::kernel("applying the ruleset"))?
        .map_err(NetworkError::kernel("applying the ruleset"))?;
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(ruleset);
        Ok(())
    }

    /// Re-applies the rules if someone flushed or changed Berth's table;
    /// returns whether it had to.
    pub async fn repair(&self) -> Result<bool> {
        let _guard = self.lock.lock().await;
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let Some(applied) = self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return Ok(false) };
        let nft = Arc::clone(&self.kernel.nft);
        tokio::task::spawn_blocking(move || berth_net::ensure_applied(nft.as_ref(), &applied))
            .await
            .map_err(NetworkError::kernel("re-applying the ruleset"))?
            .map_err(NetworkError::kernel("re-applying the ruleset"))
    }

    /// At daemon start: the VIP route, forwarding, and the rules.
    pub async fn start(&self) -> Result<()> {
        let links = Arc::clone(&self.kernel.links);
        let (vip_bridge, cidr) = (format!("{}-vip", self.settings.prefix), self.settings.service_cidr);
        tokio::task::spawn_blocking(move || {
            links.set_sysctl("net.ipv4.ip_forward", "1")?;
            links.ensure_vip_route(&vip_bridge, cidr)
        })
        .await
        .map_err(NetworkError::kernel("enabling forwarding and the service route"))?
        .map_err(NetworkError::kernel("enabling forwarding and the service route"))?;
        self.sync().await
    }

    /// At daemon shutdown: the table and the VIP route go; bridges of
    /// networks with running containers stay (the containers keep running).
    pub async fn shutdown(&self) {
        // No apply or repair after this; one in flight finishes first.
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let _guard = self.lock.lock().await;
        self.dns.stop_all().await;
        let (nft, links) = (Arc::clone(&self.kernel.nft), Arc::clone(&self.kernel.links));
        let table = self.settings.prefix.clone();
        let mut bridges: Vec<String> = self.records().unwrap_or_default().into_iter().map(|n| n.bridge).collect();
        bridges.push(format!("{}-vip", self.settings.prefix));
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = nft.delete_table(&table) {
                tracing::warn!(error = %e, "removing Berth's nftables table failed");
            }
            for b in bridges {
                if let Err(e) = links.delete_bridge(&b) {
                    tracing::warn!(bridge = %b, error = %e, "removing a bridge failed");
                }
            }
        })
        .await;
    }

    /// Addresses in use in `network`.
    fn in_use(&self, network: &str) -> Result<BTreeSet<Ipv4Addr>> {
        Ok(self.store.list_addresses(Some(network))?.into_iter().filter_map(|a| a.ip.parse().ok()).collect())
    }
}

/// Whether a container (running or not) is declared on `network`.
fn wants_network(c: &ContainerRecord, network: &str, default: &str) -> bool {
    let req = c.request.clone();
    if req.networks.is_empty() {
        return network == default;
    }
    req.networks.iter().any(|n| n == network) || c.network.networks.iter().any(|a| a.network == network)
}

#[cfg(test)]
mod tests;
