//! One DNS server per network, on its gateway address, answering the names
//! of the containers attached to it (and forwarding the rest to the host's
//! resolvers, except on an internal network, where the rest is refused). The answers are rebuilt from the store after every change,
//! so they are never stale.

use std::collections::HashMap;
use std::net::SocketAddr;

use berth_dns::{DnsConfig, DnsServer, Entry, Records};
use berth_store::ContainerRecord;

use super::NetworkRecord;

/// What one network's DNS answers: its containers' names, IDs and
/// aliases, and every Service's names (Services are reachable from every
/// network, like the VIPs behind them).
pub fn entries(network: &str, containers: &[ContainerRecord], services: &[super::ServiceNet]) -> Vec<(String, Entry)> {
    let mut out: Vec<(String, Entry)> = containers
        .iter()
        .filter_map(|c| {
            let a = c.network.networks.iter().find(|a| a.network == network)?;
            let ip = a.ip.parse().ok()?;
            let mut names = vec![c.name.clone(), c.id[..12].to_string()];
            names.extend(a.aliases.iter().cloned());
            Some((c.id.clone(), Entry::new(names, [ip])))
        })
        .collect();
    for s in services {
        let addrs = match s.ip {
            Some(ip) => vec![ip],
            None => s.endpoints.clone(),
        };
        out.push((format!("service {}", s.owner), Entry::new(s.names.clone(), addrs)));
    }
    out
}

/// An internal network's server forwards nothing (and is given no
/// upstreams): its containers resolve the network's names and nothing else.
fn config_for(net: &NetworkRecord) -> DnsConfig {
    if net.internal {
        return DnsConfig { forward: false, ..DnsConfig::new(Vec::new()) };
    }
    let upstreams = berth_dns::read_host_upstreams(std::path::Path::new("/etc/resolv.conf")).unwrap_or_default();
    DnsConfig::new(upstreams)
}

/// Where each network's DNS server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsBind {
    /// Port 53 on the network's gateway, where its containers look.
    #[default]
    Gateway,
    /// Any free port on 127.0.0.1: for tests on a fake host, whose
    /// gateways are not on any interface.
    Loopback,
}

#[derive(Default)]
pub struct Dns {
    bind: DnsBind,
    servers: tokio::sync::Mutex<HashMap<String, (DnsServer, Records)>>,
}

impl Dns {
    pub fn new(bind: DnsBind) -> Self {
        Self { bind, servers: Default::default() }
    }

    /// Where the server of `network` listens, if it runs.
    pub async fn address(&self, network: &str) -> Option<SocketAddr> {
        self.servers.lock().await.get(network).map(|(s, _)| s.local_addr())
    }

    /// Starts the network's server if it is not running, then makes its
    /// answers `entries`.
    pub async fn refresh(&self, net: &NetworkRecord, entries: Vec<(String, Entry)>) {
        let mut servers = self.servers.lock().await;
        if !servers.contains_key(&net.name) {
            let records = Records::new();
            let at = match self.bind {
                DnsBind::Gateway => SocketAddr::from((net.gateway, 53)),
                DnsBind::Loopback => SocketAddr::from(([127, 0, 0, 1], 0)),
            };
            match DnsServer::start(at, records.clone(), config_for(net)).await {
                Ok(server) => {
                    servers.insert(net.name.clone(), (server, records));
                }
                Err(e) => {
                    tracing::warn!(network = %net.name, error = %e, "cannot start the network's DNS server");
                    return;
                }
            }
        }
        let (_, records) = &servers[&net.name];
        if let Err(e) = records.replace_all(entries) {
            tracing::warn!(network = %net.name, error = %e, "a container name cannot be served by DNS");
        }
    }

    pub async fn stop(&self, network: &str) {
        if let Some((server, _)) = self.servers.lock().await.remove(network) {
            server.stop().await;
        }
    }

    pub async fn stop_all(&self) {
        let all: Vec<_> = self.servers.lock().await.drain().collect();
        for (_, (server, _)) in all {
            server.stop().await;
        }
    }

    pub async fn running(&self) -> Vec<String> {
        self.servers.lock().await.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool) -> NetworkRecord {
        NetworkRecord {
            name: "n".into(),
            subnet: "10.88.0.0/24".parse().unwrap(),
            gateway: "10.88.0.1".parse().unwrap(),
            bridge: "br-n".into(),
            internal,
            mtu: 1500,
            created: String::new(),
        }
    }

    #[test]
    fn internal_networks_forward_nothing_and_others_do() {
        let c = config_for(&net(true));
        assert!(!c.forward && c.upstreams.is_empty(), "{c:?}");
        assert!(config_for(&net(false)).forward);
    }
}
