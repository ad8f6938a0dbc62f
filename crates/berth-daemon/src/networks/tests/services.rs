//! Service networks and VIPs on the fake host: addresses from the service
//! range, the rules' backends and weights, connection counts from the
//! fake conntrack, and refusals that change nothing.

use super::*;

fn backend(addr: &str, weight: u8) -> Backend {
    let socket: std::net::SocketAddrV4 = addr.parse().unwrap();
    Backend { addr: *socket.ip(), port: socket.port(), weight }
}

fn service(owner: &str, ip: Option<Ipv4Addr>, ports: Vec<ServicePortNet>) -> ServiceNet {
    let name = owner.rsplit('/').next().unwrap().to_string();
    ServiceNet { owner: owner.into(), names: vec![name], ip, ports, endpoints: Vec::new() }
}

fn port(port: u16, protocol: Protocol, backends: Vec<Backend>) -> ServicePortNet {
    ServicePortNet { port, protocol, backends, node_port: None }
}

fn vip(name: &str, port: u16) -> VipCreateRequest {
    VipCreateRequest { name: name.into(), port, ..Default::default() }
}

fn backends(items: &[&str]) -> VipBackendsRequest {
    VipBackendsRequest { backends: items.iter().map(|s| s.to_string()).collect() }
}

impl Lab {
    /// How many rulesets reached the fake nftables (whole or as changes:
    /// the fake takes an incremental change as the whole table it makes).
    fn applies(&self) -> usize {
        self.fakes.nft.calls().iter().filter(|c| matches!(c, NftCall::Apply(_))).count()
    }

    /// The comments of the rules last applied: one per VIP, one per
    /// backend with its weight.
    fn comments(&self) -> Vec<String> {
        let applied = self.fakes.nft.calls().into_iter().rev().find_map(|c| match c {
            NftCall::Apply(r) => Some(r),
            _ => None,
        });
        applied
            .expect("rules were applied")
            .commands()
            .iter()
            .filter_map(|c| match c {
                berth_net::ruleset::Command::Add(berth_net::ruleset::Object::Rule(r)) => r.comment.clone(),
                _ => None,
            })
            .collect()
    }

    /// The comments that mention `what`.
    fn comments_about(&self, what: &str) -> Vec<String> {
        self.comments().into_iter().filter(|c| c.contains(what)).collect()
    }
}

#[tokio::test]
async fn service_addresses_come_from_the_service_range_are_kept_and_given_back() {
    let lab = lab().await;
    let range = lab.nets.settings().service_cidr;
    let web_ip = lab.nets.service_ip("default/web", None).unwrap();
    assert!(range.contains(web_ip), "{web_ip} in {range}");
    assert_eq!(web_ip, range.hosts().next().unwrap(), "the lowest free address");
    assert!(lab.nets.set_service(service("default/web", Some(web_ip), Vec::new())).await.unwrap());
    assert_eq!(lab.nets.service("default/web").unwrap().and_then(|s| s.ip), Some(web_ip));

    // Another service gets another address; the first keeps its own.
    let api_ip = lab.nets.service_ip("default/api", None).unwrap();
    assert!(range.contains(api_ip) && api_ip != web_ip, "{api_ip}");
    assert_eq!(lab.nets.service_ip("default/web", None).unwrap(), web_ip);
    assert_eq!(lab.nets.service_ip("default/web", Some(web_ip)).unwrap(), web_ip, "its own address is free to it");

    // A wanted address: taken when free and in range, refused otherwise.
    let wanted: Ipv4Addr = "10.96.7.7".parse().unwrap();
    assert_eq!(lab.nets.service_ip("default/db", Some(wanted)).unwrap(), wanted);
    let e = lab.nets.service_ip("default/db", Some(web_ip)).unwrap_err();
    assert!(matches!(e, NetworkError::Conflict(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("clusterIP {web_ip} is already used by service default/web")), "{e}");
    let e = lab.nets.service_ip("default/db", Some("10.0.0.5".parse().unwrap())).unwrap_err();
    assert!(matches!(e, NetworkError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("not in the service range {range}")), "{e}");
    for (edge, what) in [(range.network(), "network"), (range.broadcast(), "broadcast")] {
        let e = lab.nets.service_ip("default/edge", Some(edge)).unwrap_err();
        assert!(e.to_string().contains(&format!("{what} address")), "{e}");
    }

    // Services being set in the same batch are kept clear of too.
    let pending = service("default/api", Some(api_ip), Vec::new());
    let besides = lab.nets.service_ip_besides("default/db", None, std::slice::from_ref(&pending)).unwrap();
    assert!(besides != web_ip && besides != api_ip && range.contains(besides), "{besides}");
    let e = lab.nets.service_ip_besides("default/db", Some(api_ip), &[pending]).unwrap_err().to_string();
    assert!(e.contains("already used by service default/api"), "{e}");

    // A VIP's address is taken as well.
    let vip_ip: Ipv4Addr = "10.96.1.1".parse().unwrap();
    let req = VipCreateRequest { ip: Some(vip_ip.to_string()), ..vip("lb", 80) };
    lab.nets.create_vip(req).await.unwrap();
    let e = lab.nets.service_ip("default/db", Some(vip_ip)).unwrap_err().to_string();
    assert!(e.contains("already used by VIP lb"), "{e}");

    // Removal gives the address back (and is idempotent).
    lab.nets.remove_service("default/web").await.unwrap();
    lab.nets.remove_service("default/web").await.unwrap();
    assert_eq!(lab.nets.service("default/web").unwrap(), None);
    assert!(lab.nets.services().unwrap().is_empty());
    assert_eq!(lab.nets.service_ip("default/db", Some(web_ip)).unwrap(), web_ip, "free again");
}

#[tokio::test]
async fn a_vip_never_takes_an_address_a_service_holds() {
    let lab = lab().await;
    let web_ip = lab.nets.service_ip("default/web", None).unwrap();
    let ports = vec![port(80, Protocol::Tcp, vec![backend("10.88.0.2:8080", 100)])];
    lab.nets.set_service(service("default/web", Some(web_ip), ports)).await.unwrap();
    // A VIP on another port of the same address would take the service's
    // traffic on that port; a VIP on the same port could not be created.
    let v = lab.nets.create_vip(vip("other", 443)).await.unwrap();
    assert_ne!(v.ip, web_ip.to_string(), "the VIP was given the address of service default/web");
    let v = lab.nets.create_vip(vip("same", 80)).await.unwrap();
    assert_ne!(v.ip, web_ip.to_string());
}

#[tokio::test]
async fn a_services_vips_carry_its_backends_and_weights_into_the_rules() {
    let lab = lab().await;
    let ip = lab.nets.service_ip("default/web", None).unwrap();
    let web = service(
        "default/web",
        Some(ip),
        vec![
            port(80, Protocol::Tcp, vec![backend("10.88.0.2:8080", 70), backend("10.88.0.3:8080", 30)]),
            port(53, Protocol::Udp, Vec::new()),
        ],
    );
    let before = lab.applies();
    assert!(lab.nets.set_service(web.clone()).await.unwrap());
    assert_eq!(lab.applies(), before + 1, "one rule change");
    let label = format!("VIP svc/default/web:80/tcp {ip}:80/tcp");
    let rules = lab.comments_about(&label);
    assert!(rules.contains(&format!("{label}: backend 10.88.0.2:8080 weight 70")), "{rules:#?}");
    assert!(rules.contains(&format!("{label}: backend 10.88.0.3:8080 weight 30")), "{rules:#?}");
    // A port without backends has no chain: its connections are refused.
    assert!(lab.comments_about("svc/default/web:53/udp").is_empty(), "{:#?}", lab.comments());
    assert!(lab.rules().contains(&format!("\"{ip}\"")), "the address is in the VIP set: {}", lab.rules());
    assert_eq!(lab.nets.service("default/web").unwrap(), Some(web.clone()));

    // The same state again changes nothing and touches nothing.
    assert!(!lab.nets.set_service(web.clone()).await.unwrap());
    assert_eq!(lab.applies(), before + 1);

    // New weights: one more rule change, the new weights in it.
    let mut moved = web.clone();
    moved.ports[0].backends = vec![backend("10.88.0.2:8080", 0), backend("10.88.0.3:8080", 100)];
    assert!(lab.nets.set_service(moved.clone()).await.unwrap());
    assert_eq!(lab.applies(), before + 2);
    let rules = lab.comments_about(&label);
    assert!(rules.contains(&format!("{label}: backend 10.88.0.3:8080 weight 100")), "{rules:#?}");
    assert!(!rules.iter().any(|r| r.contains("10.88.0.2:8080")), "weight 0 gets no new connections: {rules:#?}");

    // Weights that do not sum to 100 are refused; nothing changes.
    let mut bad = moved.clone();
    bad.ports[0].backends = vec![backend("10.88.0.2:8080", 50), backend("10.88.0.3:8080", 40)];
    let e = lab.nets.set_service(bad).await.unwrap_err();
    assert!(matches!(e, NetworkError::Invalid(_)), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("service default/web") && e.contains("sum to 90"), "{e}");
    assert_eq!(lab.nets.service("default/web").unwrap(), Some(moved), "the old state is kept");
    assert_eq!(lab.applies(), before + 2, "no rules were applied");

    // A kernel that refuses the whole table: the new service is not stored.
    let other_ip = lab.nets.service_ip("default/other", None).unwrap();
    let other = service("default/other", Some(other_ip), vec![port(80, Protocol::Tcp, Vec::new())]);
    lab.fakes.nft.fail_next("Error: Could not process rule: No buffer space available");
    let e = lab.nets.set_service(other).await.unwrap_err().to_string();
    assert!(e.contains("applying the ruleset") && e.contains("No buffer space"), "{e}");
    assert_eq!(lab.nets.service("default/other").unwrap(), None);
    assert_eq!(lab.nets.services().unwrap().len(), 1);

    // Removed: its VIP goes from the rules.
    lab.nets.remove_service("default/web").await.unwrap();
    assert!(lab.comments_about("svc/default/web").is_empty(), "{:#?}", lab.comments());
    assert!(!lab.rules().contains(&format!("\"{ip}\"")), "{}", lab.rules());
}

#[tokio::test]
async fn a_headless_service_has_no_vip_and_a_set_of_services_changes_at_once() {
    let lab = lab().await;
    let mut headless =
        service("default/db", None, vec![port(5432, Protocol::Tcp, vec![backend("10.88.0.9:5432", 100)])]);
    headless.endpoints = vec!["10.88.0.9".parse().unwrap()];
    assert!(lab.nets.set_service(headless.clone()).await.unwrap());
    assert!(lab.comments_about("svc/default/db").is_empty(), "{:#?}", lab.comments());
    assert_eq!(lab.nets.service("default/db").unwrap(), Some(headless));

    // A blue-green switch: two services in one rule change.
    let (a, b) = (lab.nets.service_ip("default/active", None).unwrap(), "10.96.0.200".parse().unwrap());
    let before = lab.applies();
    let changed = lab
        .nets
        .set_services(vec![
            service("default/active", Some(a), vec![port(80, Protocol::Tcp, vec![backend("10.88.0.4:80", 100)])]),
            service("default/preview", Some(b), vec![port(80, Protocol::Tcp, vec![backend("10.88.0.5:80", 100)])]),
        ])
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(lab.applies(), before + 1, "one atomic change for both");
    assert_eq!(lab.comments_about("backend 10.88.0.4:80 weight 100").len(), 1, "{:#?}", lab.comments());
    assert_eq!(lab.comments_about("backend 10.88.0.5:80 weight 100").len(), 1, "{:#?}", lab.comments());

    // One bad service in the batch: neither is stored.
    let e = lab
        .nets
        .set_services(vec![
            service("default/active", Some(a), vec![port(80, Protocol::Tcp, vec![backend("10.88.0.5:80", 100)])]),
            service("default/preview", Some(b), vec![port(80, Protocol::Tcp, vec![backend("10.88.0.4:80", 99)])]),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("default/preview") && e.contains("sum to 99"), "{e}");
    let active = lab.nets.service("default/active").unwrap().unwrap();
    assert_eq!(active.ports[0].backends, vec![backend("10.88.0.4:80", 100)]);
    assert_eq!(lab.applies(), before + 1);
}

/// `conntrack -L` lines: (state, VIP, backend).
fn conntrack(entries: &[(&str, &str, &str)]) -> String {
    entries
        .iter()
        .enumerate()
        .map(|(i, (state, to, from))| {
            let (to, from): (std::net::SocketAddrV4, std::net::SocketAddrV4) =
                (to.parse().unwrap(), from.parse().unwrap());
            let sport = 40000 + i;
            format!(
                "tcp      6 431999 {state} src=10.77.0.1 dst={} sport={sport} dport={} src={} dst=10.77.0.1 sport={} \
                 dport={sport} [ASSURED] mark=0 use=1\n",
                to.ip(),
                to.port(),
                from.ip(),
                from.port()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_services_open_connections_are_counted_per_backend_from_conntrack() {
    let lab = lab().await;
    let ip = lab.nets.service_ip("default/web", None).unwrap();
    let ports = vec![port(80, Protocol::Tcp, vec![backend("10.88.0.2:8080", 50), backend("10.88.0.3:8080", 50)])];
    lab.nets.set_service(service("default/web", Some(ip), ports)).await.unwrap();
    let headless = service("default/db", None, vec![port(5432, Protocol::Tcp, vec![backend("10.88.0.2:5432", 100)])]);
    lab.nets.set_service(headless).await.unwrap();
    let vip = format!("{ip}:80");
    lab.fakes.conntrack.set_output(&conntrack(&[
        ("ESTABLISHED", &vip, "10.88.0.2:8080"),
        ("CLOSE_WAIT", &vip, "10.88.0.2:8080"),
        ("TIME_WAIT", &vip, "10.88.0.2:8080"),
        ("ESTABLISHED", &vip, "10.88.0.3:8080"),
        ("ESTABLISHED", "10.96.9.9:80", "10.88.0.2:8080"),
    ]));
    let count = |ip: &str| lab.nets.active_connections(ip.parse().unwrap());
    assert_eq!(
        count("10.88.0.2").await.unwrap(),
        1,
        "closing connections (CLOSE_WAIT, TIME_WAIT) never hold a drain; another address's entry is not ours"
    );
    assert_eq!(count("10.88.0.3").await.unwrap(), 1);
    assert_eq!(count("10.88.0.4").await.unwrap(), 0);
    let asked: std::collections::BTreeSet<_> = lab.fakes.conntrack.calls().into_iter().collect();
    assert_eq!(asked, [(Protocol::Tcp, vip.parse().unwrap())].into_iter().collect(), "only VIPs are asked about");
}

#[tokio::test]
async fn a_vip_is_created_weighted_reweighted_and_deleted() {
    let lab = lab().await;
    let range = lab.nets.settings().service_cidr;
    let v = lab.nets.create_vip(vip("web", 80)).await.unwrap();
    let ip: Ipv4Addr = v.ip.parse().unwrap();
    assert!(range.contains(ip), "{ip} in {range}");
    assert_eq!((v.port, v.protocol.as_str(), v.backends.len()), (80, "tcp", 0));
    assert_eq!(lab.nets.list_vips().unwrap(), vec![v.clone()]);
    // Known to the rules (its address refuses connections) but no backend.
    assert!(lab.rules().contains(&format!("\"{ip}\"")), "{}", lab.rules());
    let label = format!("VIP web {ip}:80/tcp");
    assert!(lab.comments_about(&label).is_empty());

    let before = lab.applies();
    let v = lab.nets.set_vip_backends("web", backends(&["10.88.0.2:8080=80", "10.88.0.3:8080=20"])).await.unwrap();
    let weights: Vec<(String, u16, u8)> = v.backends.iter().map(|b| (b.ip.clone(), b.port, b.weight)).collect();
    assert_eq!(weights, vec![("10.88.0.2".into(), 8080, 80), ("10.88.0.3".into(), 8080, 20)]);
    assert_eq!(lab.applies(), before + 1);
    let rules = lab.comments_about(&label);
    assert!(rules.contains(&format!("{label}: backend 10.88.0.2:8080 weight 80")), "{rules:#?}");
    assert!(rules.contains(&format!("{label}: backend 10.88.0.3:8080 weight 20")), "{rules:#?}");

    // Reweighted: the new weights replace the old ones in one change.
    lab.nets.set_vip_backends("web", backends(&["10.88.0.2:8080=10", "10.88.0.3:8080=90"])).await.unwrap();
    assert_eq!(lab.applies(), before + 2);
    let rules = lab.comments_about(&label);
    assert!(rules.contains(&format!("{label}: backend 10.88.0.3:8080 weight 90")), "{rules:#?}");
    assert!(!rules.iter().any(|r| r.ends_with("weight 80") || r.ends_with("weight 20")), "{rules:#?}");

    // Emptied: no backend, connections refused.
    lab.nets.set_vip_backends("web", backends(&[])).await.unwrap();
    assert!(lab.comments_about(&label).is_empty(), "{:#?}", lab.comments());
    assert!(lab.nets.show_vip("web").await.unwrap().backends.is_empty());

    lab.nets.remove_vip("web").await.unwrap();
    assert!(lab.nets.list_vips().unwrap().is_empty());
    assert!(!lab.rules().contains(&format!("\"{ip}\"")), "{}", lab.rules());
    let e = lab.nets.remove_vip("web").await.unwrap_err();
    assert!(matches!(e, NetworkError::VipNotFound(_)), "{e:?}");
    assert!(e.to_string().contains("VIP \"web\" not found"), "{e}");
}

#[tokio::test]
async fn bad_backends_are_refused_and_the_old_ones_kept() {
    let lab = lab().await;
    lab.nets.create_vip(vip("web", 80)).await.unwrap();
    let good = lab.nets.set_vip_backends("web", backends(&["10.88.0.2:8080=60", "10.88.0.3:8080=40"])).await.unwrap();
    let applies = lab.applies();
    for (items, want) in [
        (vec!["10.88.0.2:8080=60", "10.88.0.3:8080=60"], "sum to 120"),
        (vec!["10.88.0.2:8080=100", "10.88.0.2:8080=0"], "listed twice"),
        (vec!["10.88.0.2:8080"], "no '=WEIGHT'"),
        (vec!["10.88.0.2:8080=101"], "not a number from 0 to 100"),
        (vec!["10.88.0.2:0=100"], "port 0"),
        (vec!["web:8080=100"], "not an IPv4 ADDRESS:PORT"),
    ] {
        let e = lab.nets.set_vip_backends("web", backends(&items)).await.unwrap_err();
        assert!(matches!(e, NetworkError::Invalid(_)), "{items:?}: {e:?}");
        let e = e.to_string();
        assert!(e.starts_with("VIP web: ") && e.contains(want) && !e.contains('\n'), "{items:?}: {e}");
    }
    assert_eq!(lab.applies(), applies, "nothing reached the kernel");
    assert_eq!(lab.nets.show_vip("web").await.unwrap(), good, "the old backends are kept");

    // New backends are a change of the VIP's chains only; when the kernel
    // refuses that change, the whole table is applied instead.
    lab.fakes.nft.fail_next("Error: Could not process rule");
    let v = lab.nets.set_vip_backends("web", backends(&["10.88.0.4:8080=100"])).await.unwrap();
    assert_eq!(v.backends.len(), 1);
    assert_eq!(lab.applies(), applies + 2, "the refused change, then the whole table");
    assert_eq!(lab.comments_about("backend 10.88.0.4:8080 weight 100").len(), 1, "{:#?}", lab.comments());
    lab.nets.set_vip_backends("web", backends(&["10.88.0.2:8080=60", "10.88.0.3:8080=40"])).await.unwrap();
    assert_eq!(lab.nets.show_vip("web").await.unwrap(), good);

    // So does a VIP that is not there.
    let e = lab.nets.set_vip_backends("nope", backends(&["10.88.0.4:8080=100"])).await.unwrap_err();
    assert!(matches!(e, NetworkError::VipNotFound(_)) && e.to_string().contains("VIP \"nope\" not found"), "{e}");
}

#[tokio::test]
async fn vip_creation_refuses_taken_names_and_bad_input_and_changes_nothing() {
    let lab = lab().await;
    let first = lab.nets.create_vip(vip("web", 80)).await.unwrap();
    let applies = lab.applies();
    let e = lab.nets.create_vip(vip("web", 81)).await.unwrap_err();
    assert!(matches!(e, NetworkError::Conflict(_)), "{e:?}");
    assert!(e.to_string().contains("VIP \"web\" already exists"), "{e}");
    for (req, want) in [
        (vip("", 80), "is invalid"),
        (vip("has space", 80), "is invalid"),
        (vip("zero", 0), "--port 0"),
        (VipCreateRequest { protocol: Some("sctp".into()), ..vip("p", 80) }, "not tcp or udp"),
        (VipCreateRequest { ip: Some("10.96.0".into()), ..vip("i", 80) }, "not an IPv4 address"),
        (VipCreateRequest { ip: Some(first.ip.clone()), ..vip("dup", 80) }, "already served by VIP \"web\""),
        (VipCreateRequest { ip: Some("127.0.0.1".into()), ..vip("lo", 80) }, "not a unicast address"),
    ] {
        let e = lab.nets.create_vip(req.clone()).await.unwrap_err().to_string();
        assert!(e.contains(want), "{req:?}: {e}");
    }
    assert_eq!(lab.nets.list_vips().unwrap(), vec![first.clone()]);
    assert_eq!(lab.applies(), applies);

    // A kernel that refuses: the VIP is not stored.
    lab.fakes.nft.fail_next("Error: Could not process rule");
    assert!(lab.nets.create_vip(vip("api", 80)).await.is_err());
    assert_eq!(lab.nets.list_vips().unwrap(), vec![first]);

    // The same address on another port or protocol is a different VIP.
    let udp = VipCreateRequest { protocol: Some("udp".into()), ..vip("dns", 80) };
    let ip = lab.nets.list_vips().unwrap()[0].ip.clone();
    let v = lab.nets.create_vip(VipCreateRequest { ip: Some(ip.clone()), ..udp }).await.unwrap();
    assert_eq!((v.ip, v.protocol.as_str()), (ip, "udp"));
}

#[tokio::test]
async fn a_vips_connections_are_counted_and_a_removed_backend_still_draining_is_shown() {
    let lab = lab().await;
    let v = lab.nets.create_vip(vip("web", 80)).await.unwrap();
    lab.nets.set_vip_backends("web", backends(&["10.88.0.2:8080=100", "10.88.0.3:8080=0"])).await.unwrap();
    let to = format!("{}:80", v.ip);
    lab.fakes.conntrack.set_output(&conntrack(&[
        ("ESTABLISHED", &to, "10.88.0.2:8080"),
        ("ESTABLISHED", &to, "10.88.0.2:8080"),
        ("SYN_RECV", &to, "10.88.0.2:8080"),
        ("ESTABLISHED", &to, "10.88.0.9:8080"),
        ("CLOSE_WAIT", &to, "10.88.0.7:8080"),
        ("TIME_WAIT", &to, "10.88.0.8:8080"),
    ]));
    let shown = lab.nets.show_vip("web").await.unwrap();
    let counts: Vec<(String, u16, u8, u32, u32)> =
        shown.backends.iter().map(|b| (b.ip.clone(), b.port, b.weight, b.established, b.active)).collect();
    assert_eq!(
        counts,
        vec![
            ("10.88.0.2".into(), 8080, 100, 2, 3),
            ("10.88.0.3".into(), 8080, 0, 0, 0),
            ("10.88.0.9".into(), 8080, 0, 1, 1),
        ],
        "a removed backend with open connections shows with weight 0; one with only closing ones does not"
    );
    assert_eq!(lab.fakes.conntrack.calls(), vec![(Protocol::Tcp, to.parse().unwrap())]);
    // Listing does not ask conntrack.
    assert!(lab.nets.list_vips().unwrap()[0].backends.iter().all(|b| b.active == 0));
    assert_eq!(lab.fakes.conntrack.calls().len(), 1);
}
