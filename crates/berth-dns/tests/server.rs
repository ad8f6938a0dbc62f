//! The server over real sockets on 127.0.0.1 (random ports): local
//! answers, live edits, forwarding to other servers on loopback, failures.
//! Every query is bounded in time; no traffic leaves loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use berth_dns::{DnsConfig, DnsServer, Entry, Records};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// Upper bound for any single exchange in these tests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream timeout the forwarding tests run with.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(300);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, last)
}

fn config(upstreams: Vec<SocketAddr>) -> DnsConfig {
    let mut config = DnsConfig::new(upstreams);
    config.upstream_timeout = UPSTREAM_TIMEOUT;
    config
}

async fn start(records: &Records, upstreams: Vec<SocketAddr>) -> DnsServer {
    DnsServer::start(LOOPBACK, records.clone(), config(upstreams)).await.expect("start a DNS server on loopback")
}

/// A network with one container `web-1` (alias `web`) at 10.88.0.2.
fn network() -> Records {
    let records = Records::new();
    records.upsert("c1", Entry::new(["web-1.prod", "web-1", "web"], [ip(2)])).unwrap();
    records
}

/// Another server standing in for the host's resolver, knowing
/// `example.test` as 192.0.2.7.
async fn upstream() -> DnsServer {
    let records = Records::new();
    records.upsert("ext", Entry::new(["example.test"], [Ipv4Addr::new(192, 0, 2, 7)])).unwrap();
    start(&records, vec![]).await
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg
}

fn rand_id() -> u16 {
    // Distinct per call so a reply cannot be mistaken for another's.
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x4000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn udp(server: SocketAddr, msg: &Message) -> Message {
    let socket = UdpSocket::bind(LOOPBACK).await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&msg.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = timeout(CLIENT_TIMEOUT, socket.recv(&mut buf)).await.expect("UDP answer in time").unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id, "reply carries our ID");
    assert_eq!(reply.queries, msg.queries, "reply echoes our question");
    reply
}

async fn tcp(server: SocketAddr, msg: &Message) -> Message {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await.unwrap();
        let bytes = msg.to_vec().unwrap();
        stream.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = timeout(CLIENT_TIMEOUT, exchange).await.expect("TCP answer in time");
    let reply = Message::from_vec(&buf).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

fn addrs(reply: &Message) -> Vec<Ipv4Addr> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn known_name_gets_authoritative_a_records_over_udp_and_tcp() {
    let records = network();
    let server = start(&records, vec![]).await;
    for reply in [
        udp(server.local_addr(), &query("web.", RecordType::A)).await,
        tcp(server.local_addr(), &query("web.", RecordType::A)).await,
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert_eq!(addrs(&reply), [ip(2)]);
        assert_eq!(reply.answers[0].ttl, 0);
    }
    server.stop().await;
}

#[tokio::test]
async fn names_are_case_insensitive() {
    let records = network();
    let server = start(&records, vec![]).await;
    let reply = udp(server.local_addr(), &query("WeB-1.PROD.", RecordType::A)).await;
    assert_eq!(addrs(&reply), [ip(2)]);
    assert_eq!(reply.answers[0].name.to_ascii(), "WeB-1.PROD.");
    server.stop().await;
}

#[tokio::test]
async fn renames_restarts_and_removals_show_up_in_the_next_answer() {
    let records = network();
    let server = start(&records, vec![]).await;
    let at = server.local_addr();
    assert_eq!(addrs(&udp(at, &query("web.", RecordType::A)).await), [ip(2)]);

    // Renamed to api and restarted with a new address.
    records.upsert("c1", Entry::new(["api"], [ip(7)])).unwrap();
    assert_eq!(addrs(&udp(at, &query("api.", RecordType::A)).await), [ip(7)]);
    let old = udp(at, &query("web.", RecordType::A)).await;
    assert_eq!(old.metadata.response_code, ResponseCode::NXDomain);

    records.remove("c1");
    let gone = tcp(at, &query("api.", RecordType::A)).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    server.stop().await;
}

#[tokio::test]
async fn aaaa_for_a_known_name_is_empty_noerror() {
    let records = network();
    let server = start(&records, vec![]).await;
    let reply = udp(server.local_addr(), &query("web.", RecordType::AAAA)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn ptr_for_a_known_address_is_answered_locally() {
    let records = network();
    // No upstreams: an answer can only be local.
    let server = start(&records, vec![]).await;
    let reply = udp(server.local_addr(), &query("2.0.88.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    match &reply.answers[0].data {
        RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), "web-1.prod."),
        other => panic!("expected PTR, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_names_are_forwarded_and_the_answer_relayed() {
    let upstream = upstream().await;
    let records = network();
    let server = start(&records, vec![upstream.local_addr()]).await;
    for reply in [
        udp(server.local_addr(), &query("Example.Test.", RecordType::A)).await,
        tcp(server.local_addr(), &query("example.test.", RecordType::A)).await,
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&reply), [Ipv4Addr::new(192, 0, 2, 7)]);
    }
    // Ours still come from here, not from upstream.
    assert_eq!(addrs(&udp(server.local_addr(), &query("web.", RecordType::A)).await), [ip(2)]);
    server.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn dead_and_failing_upstreams_are_skipped_in_order() {
    let good = upstream().await;
    // Answers SERVFAIL for everything it does not know (it has no upstreams).
    let failing = start(&Records::new(), vec![]).await;
    let closed = closed_port().await;
    let server = start(&network(), vec![closed, failing.local_addr(), good.local_addr()]).await;
    let started = Instant::now();
    let reply = udp(server.local_addr(), &query("example.test.", RecordType::A)).await;
    assert_eq!(addrs(&reply), [Ipv4Addr::new(192, 0, 2, 7)]);
    // A closed port is refused at once, not waited out.
    assert!(started.elapsed() < UPSTREAM_TIMEOUT, "{:?}", started.elapsed());
    for s in [server, failing, good] {
        s.stop().await;
    }
}

#[tokio::test]
async fn silent_upstream_gives_servfail_within_the_timeout() {
    // Bound but never read: queries to it vanish.
    let black_hole = UdpSocket::bind(LOOPBACK).await.unwrap();
    let server = start(&network(), vec![black_hole.local_addr().unwrap()]).await;
    let started = Instant::now();
    let reply = udp(server.local_addr(), &query("example.test.", RecordType::A)).await;
    let took = started.elapsed();
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(took >= UPSTREAM_TIMEOUT, "{took:?}");
    assert!(took < UPSTREAM_TIMEOUT * 4, "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn no_upstreams_means_servfail_at_once() {
    let server = start(&network(), vec![]).await;
    let reply = tcp(server.local_addr(), &query("example.test.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_forward_does_not_hold_up_local_answers() {
    let black_hole = UdpSocket::bind(LOOPBACK).await.unwrap();
    let server = start(&network(), vec![black_hole.local_addr().unwrap()]).await;
    let at = server.local_addr();
    let slow = tokio::spawn(async move { udp(at, &query("example.test.", RecordType::A)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    assert_eq!(addrs(&udp(at, &query("web.", RecordType::A)).await), [ip(2)]);
    assert!(started.elapsed() < UPSTREAM_TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(slow.await.unwrap().metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

#[tokio::test]
async fn stray_datagrams_from_upstream_are_ignored() {
    // A fake upstream that first answers with the wrong ID, then properly.
    let fake = UdpSocket::bind(LOOPBACK).await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        let (n, peer) = fake.recv_from(&mut buf).await.unwrap();
        let request = Message::from_vec(&buf[..n]).unwrap();
        let mut answer = request.clone().into_response();
        answer.answers.push(hickory_proto::rr::Record::from_rdata(
            request.queries[0].name().clone(),
            60,
            RData::A(hickory_proto::rr::rdata::A(Ipv4Addr::new(192, 0, 2, 9))),
        ));
        let mut stray = answer.clone();
        stray.metadata.id = request.metadata.id.wrapping_add(1);
        stray.answers[0].data = RData::A(hickory_proto::rr::rdata::A(Ipv4Addr::new(6, 6, 6, 6)));
        fake.send_to(&stray.to_vec().unwrap(), peer).await.unwrap();
        fake.send_to(&answer.to_vec().unwrap(), peer).await.unwrap();
    });
    let server = start(&network(), vec![fake_addr]).await;
    let reply = udp(server.local_addr(), &query("example.test.", RecordType::A)).await;
    assert_eq!(addrs(&reply), [Ipv4Addr::new(192, 0, 2, 9)]);
    responder.await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn stop_closes_both_sockets_so_the_address_can_be_bound_again() {
    let first = start(&network(), vec![]).await;
    let at = first.local_addr();
    first.stop().await;
    let again =
        DnsServer::start(at, network(), config(vec![])).await.expect("rebind the same address right after stop");
    assert_eq!(again.local_addr(), at);
    assert_eq!(addrs(&tcp(at, &query("web.", RecordType::A)).await), [ip(2)]);
    again.stop().await;
}

#[tokio::test]
async fn binding_an_address_that_is_not_local_explains_what_to_do() {
    // TEST-NET-1 is never assigned to a local interface; bind fails without
    // sending anything.
    let err = DnsServer::start("192.0.2.1:53".parse().unwrap(), Records::new(), config(vec![])).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("192.0.2.1:53"), "{text}");
    assert!(text.contains("gateway address"), "{text}");
}

/// A loopback UDP port with nothing listening (bound, then released).
async fn closed_port() -> SocketAddr {
    let socket = UdpSocket::bind(LOOPBACK).await.unwrap();
    socket.local_addr().unwrap()
}

/// An internal network's server: its own names answered, everything else
/// REFUSED at once, and not one packet sent to the upstream it was given.
#[tokio::test]
async fn without_forwarding_nothing_reaches_the_upstreams() {
    let spy = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(vec![spy.local_addr().unwrap()]);
    config.forward = false;
    let records = network();
    let server = DnsServer::start(LOOPBACK, records.clone(), config).await.unwrap();
    for reply in [
        udp(server.local_addr(), &query("example.test.", RecordType::A)).await,
        tcp(server.local_addr(), &query("example.test.", RecordType::A)).await,
        udp(server.local_addr(), &query("c2VjcmV0.exfil.example.", RecordType::TXT)).await,
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        assert!(reply.answers.is_empty());
    }
    assert_eq!(addrs(&udp(server.local_addr(), &query("web.", RecordType::A)).await), [ip(2)]);
    let mut buf = [0u8; 512];
    let heard = tokio::time::timeout(std::time::Duration::from_millis(300), spy.recv_from(&mut buf)).await;
    assert!(heard.is_err(), "the upstream was asked: {heard:?}");
    server.stop().await;
}
