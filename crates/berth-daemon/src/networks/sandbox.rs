//! Pod sandboxes: a network namespace with one address on the default
//! network that outlives the containers joining it, so a pod keeps its
//! address while its containers restart (what Kubernetes' pause container
//! is for; a named namespace needs no process to stay alive).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::api::{IdMapping, NetworkAttachment};
use berth_core::record::Record;
use berth_store::Records;
use serde::{Deserialize, Serialize};

use super::attach::blocking;
use super::{NetworkError, Networks, Result};

/// A sandbox as the store keeps it; written before the namespace is made,
/// so a crash in between leaves a record that a retry or removal finds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// The pod's uid.
    pub id: String,
    /// `namespace/name` of the pod, for messages and `network inspect`.
    pub owner: String,
    /// Where resolv.conf and hosts are written for the pod's containers.
    pub dir: PathBuf,
    #[serde(default)]
    pub attachment: Option<NetworkAttachment>,
    /// The id range of the pod's user namespace (`hostUsers: false`),
    /// which owns the sandbox's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<IdMapping>,
}

impl Record for SandboxRecord {
    const KIND: &'static str = "sandbox";
    const WHAT: &'static str = "sandbox record";
}

/// What a pod's containers need to join its sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    pub netns: PathBuf,
    /// The pod's user namespace, owner of `netns`, when it has one.
    pub userns: Option<PathBuf>,
    pub mapping: Option<IdMapping>,
    pub ip: std::net::Ipv4Addr,
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

impl Networks {
    pub(super) fn sandbox_records(&self) -> Result<Vec<SandboxRecord>> {
        Ok(self.store.all::<SandboxRecord>()?.into_iter().map(|(_, s)| s).collect())
    }

    fn sandbox_record(&self, id: &str) -> Result<Option<SandboxRecord>> {
        Ok(self.store.get(id)?)
    }

    /// The sandbox of pod `id`, made if it does not exist yet: a namespace
    /// on the default network with the next free address, resolv.conf
    /// (with the pod's search domains) and hosts in `dir`. With `userns`
    /// the namespace is owned by a user namespace with that mapping, which
    /// the pod's containers join. Idempotent; a sandbox half-made by a
    /// crash is remade.
    pub async fn ensure_sandbox(
        &self,
        id: &str,
        owner: &str,
        hostname: &str,
        search: &[String],
        dir: &Path,
        userns: Option<IdMapping>,
    ) -> Result<Sandbox> {
        let _guard = self.lock.lock().await;
        if let Some(rec) = self.sandbox_record(id)? {
            if let (Some(a), true) = (&rec.attachment, self.netns_path(id).exists()) {
                return Ok(self.sandbox_view(id, &rec, a));
            }
            self.undo(id, 1).await;
        }
        let rec = SandboxRecord {
            id: id.to_string(),
            owner: owner.to_string(),
            dir: dir.to_path_buf(),
            attachment: None,
            userns,
        };
        self.store.put(id, &rec)?;
        match self.make_sandbox(rec, hostname, search).await {
            Ok(s) => {
                self.sync_locked().await?;
                Ok(s)
            }
            Err(e) => {
                self.undo(id, 1).await;
                let _ = self.store.remove::<SandboxRecord>(id);
                Err(e)
            }
        }
    }

    async fn make_sandbox(&self, mut rec: SandboxRecord, hostname: &str, search: &[String]) -> Result<Sandbox> {
        let n = self.default_network_locked()?;
        let spec =
            berth_net::BridgeSpec { name: n.bridge.clone(), gateway: n.gateway, subnet: n.subnet, mtu: Some(n.mtu) };
        let (links, namespaces) = (Arc::clone(&self.kernel.links), Arc::clone(&self.kernel.namespaces));
        let netns_name = self.netns_name(&rec.id);
        let owner = rec.userns;
        let netns = blocking("creating the pod's network namespace", move || {
            links.ensure_bridge(&spec)?;
            Ok(match owner {
                Some(m) => namespaces.create_owned(&netns_name, m),
                None => namespaces.create(&netns_name),
            }?)
        })
        .await?;
        let ip = self.claim(&n, &rec.id)?;
        let a = self.link(&n, &rec.id, &netns, 0, ip, &[]).await?;
        std::fs::create_dir_all(&rec.dir).map_err(NetworkError::kernel(format!("creating {}", rec.dir.display())))?;
        let mut resolv = berth_dns::ContainerResolvConf::new(n.gateway.into());
        resolv.search = search.to_vec();
        super::attach::write_etc_files(&rec.dir, &resolv, &a.ip, hostname, hostname)?;
        rec.attachment = Some(a.clone());
        self.store.put(&rec.id, &rec)?;
        Ok(self.sandbox_view(&rec.id, &rec, &a))
    }

    fn sandbox_view(&self, id: &str, rec: &SandboxRecord, a: &NetworkAttachment) -> Sandbox {
        Sandbox {
            netns: self.netns_path(id),
            userns: rec.userns.map(|_| self.userns_path(id)),
            mapping: rec.userns,
            ip: a.ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            resolv_conf: rec.dir.join("resolv.conf"),
            hosts: rec.dir.join("hosts"),
        }
    }

    /// The sandbox of pod `id`, if it exists and is complete.
    pub fn sandbox(&self, id: &str) -> Result<Option<Sandbox>> {
        Ok(self.sandbox_record(id)?.and_then(|rec| rec.attachment.clone().map(|a| self.sandbox_view(id, &rec, &a))))
    }

    /// Removes pod `id`'s sandbox: veth, namespace, address, record.
    /// Idempotent; may be re-run after a crash.
    pub async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.undo(id, 1).await;
        self.store.remove::<SandboxRecord>(id)?;
        self.sync_locked().await
    }

    /// Ids of every sandbox the store knows (their namespaces are kept by
    /// garbage collection).
    pub fn sandbox_ids(&self) -> Vec<String> {
        self.sandbox_records().unwrap_or_default().into_iter().map(|r| r.id).collect()
    }

    /// The user namespace ranges pod sandboxes hold, by pod uid.
    pub fn sandbox_mappings(&self) -> Result<Vec<(String, IdMapping)>> {
        Ok(self.sandbox_records()?.into_iter().filter_map(|r| Some((r.id, r.userns?))).collect())
    }
}
