//! The network service on a fake host: no root, no kernel, no sleeps. The
//! fakes record what reached "the kernel"; each network's DNS server runs
//! for real on loopback, so names are checked with real queries.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_core::api::{ContainerCreateRequest, IdMapping, NetworkCreateRequest};
use berth_net::NftCall;
use berth_store::{ContainerRecord, FakeStore, Store};

use super::*;
use crate::host::{Fakes, Host};

struct Lab {
    _dir: tempfile::TempDir,
    bundle: std::path::PathBuf,
    store: Arc<FakeStore>,
    fakes: Fakes,
    nets: Arc<Networks>,
}

async fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let (host, fakes) = Host::fake(dir.path());
    let config = crate::config::NetworkConfig {
        prefix: "bt".into(),
        netns_dir: dir.path().join("netns").display().to_string(),
        ..Default::default()
    };
    let store = Arc::new(FakeStore::new());
    let nets = Networks::new(store.clone(), config.settings().unwrap(), &host);
    nets.start().await.unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    Lab { _dir: dir, bundle, store, fakes, nets }
}

fn container(id_byte: char, name: &str, req: &ContainerCreateRequest) -> ContainerRecord {
    serde_json::from_value(serde_json::json!({
        "id": id_byte.to_string().repeat(64),
        "name": name,
        "image": "busybox",
        "image_digest": format!("sha256:{}", "0".repeat(64)),
        "request": serde_json::to_value(req).unwrap(),
        "state": "created",
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": null, "finished_at": null, "pid": null, "shim_pid": null,
        "exit_code": null, "exit_signal": null, "oom_killed": false, "error": null,
        "restart_count": 0, "stopped_by_user": false, "backoff_ms": null
    }))
    .unwrap()
}

impl Lab {
    /// Attaches `c` as a start does, records the answer and syncs.
    async fn start(&self, c: &mut ContainerRecord, req: &ContainerCreateRequest) {
        self.store.put_container(c).unwrap();
        c.network = self.nets.attach(c, req, &[], &self.bundle, &c.name.clone()).await.unwrap();
        self.store.put_container(c).unwrap();
        self.nets.sync().await.unwrap();
    }

    /// The last ruleset applied to the fake nftables, as JSON text.
    fn rules(&self) -> String {
        let applied = self.fakes.nft.calls().into_iter().rev().find_map(|c| match c {
            NftCall::Apply(r) => Some(r),
            _ => None,
        });
        serde_json::to_string(&applied.expect("rules were applied")).unwrap()
    }
}

/// Asks the DNS server at `server` for `name`'s A records.
async fn resolve(server: SocketAddr, name: &str) -> Vec<Ipv4Addr> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut msg = Message::new(0x1234, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&msg.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await.expect("an answer").unwrap();
    Message::from_vec(&buf[..n])
        .unwrap()
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn start_enables_forwarding_and_routes_the_service_range() {
    let lab = lab().await;
    assert_eq!(lab.fakes.links.sysctl("net.ipv4.ip_forward").as_deref(), Some("1"));
    assert_eq!(lab.fakes.links.vip_route("bt-vip"), Some(lab.nets.settings().service_cidr));
    assert!(lab.rules().contains("\"bt\""), "Berth's table is applied: {}", lab.rules());
}

#[tokio::test]
async fn a_container_gets_a_namespace_an_address_its_ports_and_a_name() {
    let lab = lab().await;
    lab.nets.create(NetworkCreateRequest { name: "lab".into(), ..Default::default() }).await.unwrap();
    let req = ContainerCreateRequest {
        networks: vec!["lab".into()],
        publish: vec!["8080:80".into()],
        network_aliases: vec!["api".into()],
        ..Default::default()
    };
    let mut c = container('a', "web", &req);
    lab.start(&mut c, &req).await;

    let lab_net = lab.nets.get("lab").unwrap();
    let a = &c.network.networks[0];
    assert_eq!((a.network.as_str(), a.interface.as_str()), ("lab", "eth0"));
    let ip: Ipv4Addr = a.ip.parse().unwrap();
    assert!(lab_net.subnet.contains(ip) && ip != lab_net.gateway, "{ip} in {}", lab_net.subnet);
    assert_eq!(lab.fakes.namespaces.live(), vec![lab.nets.netns_path(&c.id)]);
    assert_eq!(lab.fakes.links.bridges().iter().filter(|b| **b == lab_net.bridge).count(), 1);
    assert_eq!(lab.fakes.links.veths().len(), 1);
    let claims = lab.store.list_addresses(Some("lab")).unwrap();
    assert_eq!((claims.len(), claims[0].ip.as_str(), claims[0].owner.as_str()), (1, a.ip.as_str(), c.id.as_str()));
    // The published port reaches the container's address.
    let rules = lab.rules();
    assert!(rules.contains(&a.ip) && rules.contains("8080"), "{rules}");
    // resolv.conf points at the gateway; the names answer from the
    // network's own server.
    let resolv = std::fs::read_to_string(lab.bundle.join("resolv.conf")).unwrap();
    assert!(resolv.contains(&format!("nameserver {}", lab_net.gateway)), "{resolv}");
    let dns = lab.nets.dns_address("lab").await.expect("the network's DNS server runs");
    for name in ["web", "api", &c.id[..12]] {
        assert_eq!(resolve(dns, name).await, vec![ip], "{name}");
    }

    // Detach gives everything back; the DNS server of an unused network stops.
    lab.nets.detach(&c.id, 1).await.unwrap();
    c.network = Default::default();
    lab.store.put_container(&c).unwrap();
    lab.nets.sync().await.unwrap();
    assert!(lab.fakes.namespaces.live().is_empty());
    assert!(lab.fakes.links.veths().is_empty());
    assert!(lab.store.list_addresses(Some("lab")).unwrap().is_empty());
    assert!(!lab.rules().contains("8080"));
    assert_eq!(lab.nets.dns_address("lab").await, None);
}

#[tokio::test]
async fn a_failed_attach_leaves_nothing_behind() {
    let lab = lab().await;
    let req = ContainerCreateRequest::default();
    let c = container('b', "flaky", &req);
    lab.store.put_container(&c).unwrap();
    lab.fakes.links.fail_next(1);
    assert!(lab.nets.attach(&c, &req, &[], &lab.bundle, "flaky").await.is_err());
    assert!(lab.fakes.namespaces.live().is_empty(), "the namespace is removed again");
    assert!(lab.store.list_addresses(None).unwrap().is_empty(), "the address is given back");
    // And a retry succeeds.
    let mut c = c;
    lab.start(&mut c, &req).await;
    assert_eq!(lab.fakes.namespaces.live().len(), 1);
}

#[tokio::test]
async fn a_user_namespaced_container_gets_a_namespace_its_user_namespace_owns() {
    let lab = lab().await;
    let m = IdMapping { host_uid: 1 << 30, host_gid: 1 << 30, size: 65536 };
    let req = ContainerCreateRequest { userns: Some("auto".into()), userns_mapping: Some(m), ..Default::default() };
    let mut c = container('c', "confined", &req);
    let plan = lab.nets.plan(&req, &lab.bundle, &c.id, |_| None).unwrap();
    assert_eq!(plan.userns, Some(lab.nets.userns_path(&c.id)), "the spec joins the owner too");
    lab.start(&mut c, &req).await;
    assert_eq!(lab.fakes.namespaces.owner(&lab.nets.netns_path(&c.id)), Some(m));

    // A container without one gets a plain namespace, and joining the
    // confined one's network names its user namespace.
    let plain = ContainerCreateRequest::default();
    let mut d = container('d', "plain", &plain);
    lab.start(&mut d, &plain).await;
    assert_eq!(lab.fakes.namespaces.owner(&lab.nets.netns_path(&d.id)), None);
    let joiner = ContainerCreateRequest { networks: vec!["container:confined".into()], ..Default::default() };
    let other = |_: &str| Some((c.id.clone(), lab.bundle.clone(), Some(m)));
    let plan = lab.nets.plan(&joiner, &lab.bundle, &"e".repeat(64), other).unwrap();
    assert_eq!(plan.netns, Some(lab.nets.netns_path(&c.id)));
    assert_eq!(plan.userns, Some(lab.nets.userns_path(&c.id)));
}

#[tokio::test]
async fn a_pod_sandbox_keeps_its_address_and_its_user_namespace() {
    let lab = lab().await;
    let m = IdMapping { host_uid: 1 << 30, host_gid: 1 << 30, size: 65536 };
    let uid = "f".repeat(32);
    let dir = lab.bundle.join("pod");
    let s = lab.nets.ensure_sandbox(&uid, "default/web-1", "web-1", &[], &dir, Some(m)).await.unwrap();
    assert_eq!(lab.fakes.namespaces.owner(&s.netns), Some(m));
    assert_eq!(s.userns, Some(lab.nets.userns_path(&uid)));
    assert_eq!(lab.nets.sandbox_mappings().unwrap(), vec![(uid.clone(), m)]);
    // Idempotent: the same sandbox, the same address.
    let again = lab.nets.ensure_sandbox(&uid, "default/web-1", "web-1", &[], &dir, Some(m)).await.unwrap();
    assert_eq!(again, s);
    lab.nets.remove_sandbox(&uid).await.unwrap();
    assert!(lab.fakes.namespaces.live().is_empty());
    assert!(lab.store.list_addresses(None).unwrap().is_empty());
}

#[tokio::test]
async fn namespaces_no_container_owns_are_collected() {
    let lab = lab().await;
    let req = ContainerCreateRequest::default();
    let mut kept = container('a', "kept", &req);
    lab.start(&mut kept, &req).await;
    // Left by a crash between making a namespace and recording it.
    use berth_net::Namespaces as _;
    let stray = lab.fakes.namespaces.create("bt-bbbbbbbbbbbb").unwrap();
    let foreign = lab.fakes.namespaces.create("other-ns").unwrap();
    lab.nets.collect_garbage(&[kept.id.clone()].into_iter().collect()).await;
    let live = lab.fakes.namespaces.live();
    assert!(live.contains(&lab.nets.netns_path(&kept.id)) && live.contains(&foreign), "{live:?}");
    assert!(!live.contains(&stray), "{live:?}");
}

#[tokio::test]
async fn a_flushed_table_is_put_back_and_an_intact_one_left_alone() {
    let lab = lab().await;
    assert!(!lab.nets.repair().await.unwrap(), "nothing to repair");
    lab.fakes.nft.flush("bt");
    assert!(lab.nets.repair().await.unwrap(), "a flushed table is re-applied");
    assert!(!lab.nets.repair().await.unwrap());
}

#[tokio::test]
async fn networks_refuse_bad_and_overlapping_input_and_change_nothing() {
    let lab = lab().await;
    let create = |name: &str, subnet: Option<&str>| NetworkCreateRequest {
        name: name.into(),
        subnet: subnet.map(String::from),
        ..Default::default()
    };
    lab.nets.create(create("a", Some("10.77.0.0/24"))).await.unwrap();
    for (req, want) in [
        (create("b", Some("10.77.0.128/25")), "overlaps"),
        (create("a", None), "already exists"),
        (create("host", None), "invalid"),
        (create("c", Some("10.96.1.0/24")), "service VIP range"),
    ] {
        let e = lab.nets.create(req).await.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    assert_eq!(lab.nets.records().unwrap().len(), 1);
}

// ---- Services and VIPs ----

use berth_core::api::{VipBackendsRequest, VipCreateRequest};
use berth_core::net::{Backend, Protocol};

mod services;
