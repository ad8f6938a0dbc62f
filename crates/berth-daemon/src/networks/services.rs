//! Services as the network sees them: a virtual address (from the service
//! range) with one load-balanced VIP per port, and DNS names on every
//! network. The declared-services layer decides the backends (the ready
//! pods); this makes them real in one atomic rule change.

use std::net::Ipv4Addr;

use berth_core::net::{Backend, Protocol, Weights};
use berth_core::record::Record;
use berth_store::Records;
use serde::{Deserialize, Serialize};

use super::{NetworkError, Networks, Result};

/// One Service's network state, keyed by its owner (`namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNet {
    pub owner: String,
    /// Every name it answers to in DNS, most specific first.
    pub names: Vec<String>,
    /// The virtual address; `None` for a headless Service, whose names
    /// resolve to the ready pods' addresses instead.
    pub ip: Option<Ipv4Addr>,
    pub ports: Vec<ServicePortNet>,
    /// Ready pod addresses (what a headless Service's names resolve to).
    pub endpoints: Vec<Ipv4Addr>,
}

impl Record for ServiceNet {
    const KIND: &'static str = "service";
    const WHAT: &'static str = "service network record";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePortNet {
    pub port: u16,
    pub protocol: Protocol,
    /// Weights sum to 100, or empty: connections are refused at once.
    pub backends: Vec<Backend>,
    /// NodePort Services: also reached on this port of every host address.
    #[serde(default)]
    pub node_port: Option<u16>,
}

impl ServiceNet {
    /// The rules' VIPs: one per port (none when headless).
    pub(super) fn vips(&self) -> Result<Vec<berth_net::Vip>> {
        let Some(ip) = self.ip else { return Ok(Vec::new()) };
        self.ports
            .iter()
            .map(|p| {
                Ok(berth_net::Vip {
                    name: vip_name(&self.owner, p.port, p.protocol),
                    ip,
                    port: p.port,
                    protocol: p.protocol,
                    backends: Weights::try_new(p.backends.clone())
                        .map_err(|e| NetworkError::Invalid(format!("service {}: {e}", self.owner)))?,
                    node_port: p.node_port,
                })
            })
            .collect()
    }
}

/// The VIP's name in the ruleset (at most 64 characters).
fn vip_name(owner: &str, port: u16, protocol: Protocol) -> String {
    let name = format!("svc/{owner}:{port}/{}", protocol.as_str());
    if name.len() <= 64 {
        return name;
    }
    let hash = berth_core::Digest::of(owner.as_bytes()).hex().to_string();
    format!("svc/{}:{port}/{}", &hash[..32], protocol.as_str())
}

impl Networks {
    pub(super) fn service_records(&self) -> Result<Vec<ServiceNet>> {
        Ok(self.store.all::<ServiceNet>()?.into_iter().map(|(_, s)| s).collect())
    }

    /// The service's network state, if it has one.
    pub fn service(&self, owner: &str) -> Result<Option<ServiceNet>> {
        Ok(self.store.get(owner)?)
    }

    /// A free address of the service range for `owner`: its current one,
    /// `wanted` if free and in range, else the lowest free one.
    pub fn service_ip(&self, owner: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        self.service_ip_besides(owner, wanted, &[])
    }

    /// [`Self::service_ip`], also keeping clear of `pending`: services
    /// being set in the same batch, not stored yet.
    pub fn service_ip_besides(
        &self,
        owner: &str,
        wanted: Option<Ipv4Addr>,
        pending: &[ServiceNet],
    ) -> Result<Ipv4Addr> {
        let mut services = self.service_records()?;
        for p in pending {
            services.retain(|s| s.owner != p.owner);
            services.push(p.clone());
        }
        let range = self.settings.service_cidr;
        let taken: Vec<(Ipv4Addr, String)> = services
            .iter()
            .filter(|s| s.owner != owner)
            .filter_map(|s| s.ip.map(|ip| (ip, format!("service {}", s.owner))))
            .chain(self.vip_records()?.into_iter().map(|v| (v.ip, format!("VIP {}", v.name))))
            .collect();
        if let Some(ip) = wanted {
            if !range.contains(ip) {
                return Err(NetworkError::Invalid(format!(
                    "clusterIP {ip} is not in the service range {range}; leave it out or pick one inside"
                )));
            }
            if range.prefix() < 31 && (ip == range.network() || ip == range.broadcast()) {
                return Err(NetworkError::Invalid(format!(
                    "clusterIP {ip} is the service range {range}'s {} address; leave it out or pick another",
                    if ip == range.network() { "network" } else { "broadcast" }
                )));
            }
            if let Some((_, other)) = taken.iter().find(|(t, _)| *t == ip) {
                return Err(NetworkError::Conflict(format!("clusterIP {ip} is already used by {other}")));
            }
            return Ok(ip);
        }
        if let Some(ip) = services.iter().find(|s| s.owner == owner).and_then(|s| s.ip) {
            return Ok(ip);
        }
        range
            .hosts()
            .find(|a| !taken.iter().any(|(t, _)| t == a))
            .ok_or_else(|| NetworkError::Conflict(format!("the service range {range} is full")))
    }

    /// Makes `svc` the service's network state: VIPs, backends and DNS
    /// names change in one step. Returns whether anything changed (an
    /// unchanged service touches nothing). When it returns, the new rules
    /// are in the kernel.
    pub async fn set_service(&self, svc: ServiceNet) -> Result<bool> {
        self.set_services(vec![svc]).await
    }

    /// Sets several services' network state with one rule change: every
    /// VIP that changed switches in the same atomic batch (a blue-green
    /// switch moves the active and the preview Service together). Returns
    /// whether anything changed; on failure nothing did.
    pub async fn set_services(&self, services: Vec<ServiceNet>) -> Result<bool> {
        let _guard = self.lock.lock().await;
        let mut olds = Vec::new();
        for svc in services {
            let old = self.service(&svc.owner)?;
            if old.as_ref() != Some(&svc) {
                olds.push((svc, old));
            }
        }
        if olds.is_empty() {
            return Ok(false);
        }
        for (svc, _) in &olds {
            self.store.put(&svc.owner, svc)?;
        }
        let applied = match self.desired_with(None, None) {
            Ok(desired) => self.apply(berth_net::compile(&desired)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            for (svc, old) in &olds {
                match old {
                    Some(o) => self.store.put(&o.owner, o)?,
                    None => {
                        self.store.remove::<ServiceNet>(&svc.owner)?;
                    }
                }
            }
            return Err(e);
        }
        self.sync_dns().await?;
        Ok(true)
    }

    /// Removes a service's VIPs and names. Idempotent.
    pub async fn remove_service(&self, owner: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        if self.store.get::<ServiceNet>(owner)?.is_none() {
            return Ok(());
        }
        self.store.remove::<ServiceNet>(owner)?;
        self.sync_locked().await
    }

    /// Every service's network state.
    pub fn services(&self) -> Result<Vec<ServiceNet>> {
        self.service_records()
    }

    /// Connections through a Service to `ip` that can still carry data
    /// (being opened or ESTABLISHED), from conntrack: what a drain waits to
    /// reach zero.
    pub async fn active_connections(&self, ip: Ipv4Addr) -> Result<u32> {
        let conntrack = std::sync::Arc::clone(&self.kernel.conntrack);
        let vips: Vec<berth_net::Vip> = self
            .service_records()?
            .iter()
            .map(|s| s.vips())
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let counts = tokio::task::spawn_blocking(move || {
            let mut total = 0u32;
            for v in &vips {
                for (addr, c) in berth_net::vip_connections(conntrack.as_ref(), v)? {
                    if *addr.ip() == ip {
                        total += c.active;
                    }
                }
            }
            Ok::<_, berth_net::ConntrackError>(total)
        })
        .await
        .map_err(NetworkError::kernel("reading conntrack"))?
        .map_err(NetworkError::kernel("reading conntrack"))?;
        Ok(counts)
    }
}
