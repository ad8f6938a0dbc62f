//! Service VIPs: a virtual address and port spread over weighted backends.
//! Used by services and rollouts, and exposed for direct use as `berth vip`.

use std::net::Ipv4Addr;

use berth_core::api::{VipBackendView, VipBackendsRequest, VipCreateRequest, VipInspect};
use berth_core::net::{Backend, Protocol, Weights};
use berth_core::record::Record;
use berth_store::{Records, StoreError};
use serde::{Deserialize, Serialize};

use super::{NetworkError, Networks, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipRecord {
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub backends: Vec<Backend>,
}

impl Record for VipRecord {
    const KIND: &'static str = "vip";
    const WHAT: &'static str = "VIP record";
}

impl VipRecord {
    pub(super) fn to_net(&self) -> Result<berth_net::Vip> {
        Ok(berth_net::Vip {
            name: self.name.clone(),
            ip: self.ip,
            port: self.port,
            protocol: self.protocol,
            backends: Weights::try_new(self.backends.clone()).map_err(|e| NetworkError::Invalid(e.to_string()))?,
            node_port: None,
        })
    }
}

fn valid_vip_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

impl Networks {
    pub(super) fn vip_records(&self) -> Result<Vec<VipRecord>> {
        Ok(self.store.all::<VipRecord>()?.into_iter().map(|(_, v)| v).collect())
    }

    fn vip(&self, name: &str) -> Result<VipRecord> {
        self.store.get(name)?.ok_or_else(|| NetworkError::VipNotFound(name.to_string()))
    }

    /// Creates a VIP with no backends: connections to it are refused until
    /// backends are set.
    pub async fn create_vip(&self, req: VipCreateRequest) -> Result<VipInspect> {
        let _guard = self.lock.lock().await;
        if !valid_vip_name(&req.name) {
            return Err(NetworkError::Invalid(format!(
                "VIP name {:?} is invalid: use 1-63 letters, digits, '-', '_', '.' or '/'",
                req.name
            )));
        }
        if req.port == 0 {
            return Err(NetworkError::Invalid("--port 0 is not valid; use 1-65535".into()));
        }
        let protocol = match req.protocol.as_deref().unwrap_or("tcp") {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(NetworkError::Invalid(format!("protocol {other:?} is not tcp or udp"))),
        };
        if self.store.get::<VipRecord>(&req.name)?.is_some() {
            return Err(NetworkError::Conflict(format!("VIP {:?} already exists", req.name)));
        }
        let taken: Vec<Ipv4Addr> = self
            .vip_records()?
            .iter()
            .map(|v| v.ip)
            .chain(self.service_records()?.iter().filter_map(|s| s.ip))
            .collect();
        let ip = match &req.ip {
            Some(ip) => {
                let ip: Ipv4Addr =
                    ip.parse().map_err(|_| NetworkError::Invalid(format!("--ip {ip:?} is not an IPv4 address")))?;
                ip
            }
            None => self.settings.service_cidr.hosts().find(|a| !taken.contains(a)).ok_or_else(|| {
                NetworkError::Conflict(format!("the service range {} is full", self.settings.service_cidr))
            })?,
        };
        let rec = VipRecord { name: req.name.clone(), ip, port: req.port, protocol, backends: Vec::new() };
        let desired = self.desired_with(None, Some(&rec))?;
        match self.store.create(&rec.name, &rec) {
            Err(StoreError::Exists { .. }) => {
                return Err(NetworkError::Conflict(format!("VIP {:?} already exists", rec.name)));
            }
            other => other?,
        }
        if let Err(e) = self.apply(berth_net::compile(&desired)).await {
            let _ = self.store.remove::<VipRecord>(&rec.name);
            return Err(e);
        }
        Ok(self.vip_view(&rec))
    }

    /// Replaces the VIP's backends in one atomic rule change. New
    /// connections follow the new weights at once; established ones stay
    /// where they are until they close.
    pub async fn set_vip_backends(&self, name: &str, req: VipBackendsRequest) -> Result<VipInspect> {
        let _guard = self.lock.lock().await;
        let old = self.vip(name)?;
        let weights = Weights::parse(req.backends.iter().map(String::as_str))
            .map_err(|e| NetworkError::Invalid(format!("VIP {name}: {e}")))?;
        let rec = VipRecord { backends: weights.backends().to_vec(), ..old.clone() };
        let desired = self.desired_with(None, Some(&rec))?;
        self.store.put(name, &rec)?;
        if let Err(e) = self.apply(berth_net::compile(&desired)).await {
            let _ = self.store.put(name, &old);
            return Err(e);
        }
        Ok(self.vip_view(&rec))
    }

    pub async fn show_vip(&self, name: &str) -> Result<VipInspect> {
        let rec = self.vip(name)?;
        let conntrack = std::sync::Arc::clone(&self.kernel.conntrack);
        let net = rec.to_net()?;
        let counts = tokio::task::spawn_blocking(move || berth_net::vip_connections(conntrack.as_ref(), &net))
            .await
            .map_err(NetworkError::kernel("reading conntrack"))?
            .map_err(NetworkError::kernel("reading conntrack"))?;
        let mut view = self.vip_view(&rec);
        // Backends that were removed but still have connections show up with
        // weight 0, so a drain can be watched.
        for (addr, c) in &counts {
            match view.backends.iter_mut().find(|b| b.ip == addr.ip().to_string() && b.port == addr.port()) {
                Some(b) => {
                    b.established = c.established;
                    b.active = c.active;
                }
                None if c.active > 0 => view.backends.push(VipBackendView {
                    ip: addr.ip().to_string(),
                    port: addr.port(),
                    weight: 0,
                    established: c.established,
                    active: c.active,
                }),
                None => {}
            }
        }
        Ok(view)
    }

    pub async fn remove_vip(&self, name: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        let old = self.vip(name)?;
        self.store.remove::<VipRecord>(name)?;
        if let Err(e) = self.sync_locked().await {
            let _ = self.store.put(name, &old);
            return Err(e);
        }
        Ok(())
    }

    pub fn list_vips(&self) -> Result<Vec<VipInspect>> {
        Ok(self.vip_records()?.iter().map(|v| self.vip_view(v)).collect())
    }

    fn vip_view(&self, v: &VipRecord) -> VipInspect {
        VipInspect {
            name: v.name.clone(),
            ip: v.ip.to_string(),
            port: v.port,
            protocol: v.protocol.as_str().to_string(),
            backends: v
                .backends
                .iter()
                .map(|b| VipBackendView {
                    ip: b.addr.to_string(),
                    port: b.port,
                    weight: b.weight,
                    established: 0,
                    active: 0,
                })
                .collect(),
        }
    }
}
