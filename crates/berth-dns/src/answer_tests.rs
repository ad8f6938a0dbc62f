use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::*;
use crate::records::{Entry, Records};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, last)
}

fn records() -> Records {
    let records = Records::new();
    records.upsert("c1", Entry::new(["web-1.prod", "web-1", "web"], [ip(2)])).unwrap();
    records.upsert("c2", Entry::new(["web-2", "web"], [ip(3)])).unwrap();
    records
}

fn policy() -> Policy {
    Policy { ttl: 0, local_zones: vec!["cluster.local".into()], forward_single_label: false, forward: true }
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(0x1234, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg
}

fn ask(msg: &Message, via: Transport) -> Outcome {
    handle(&msg.to_vec().unwrap(), &records(), &policy(), via)
}

fn reply(msg: &Message) -> Message {
    match ask(msg, Transport::Udp) {
        Outcome::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn forwards(msg: &Message) -> bool {
    matches!(ask(msg, Transport::Udp), Outcome::Forward(_))
}

fn a_records(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn a_for_a_known_name_is_authoritative_with_every_address() {
    let r = reply(&query("WEB.", RecordType::A));
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert!(r.metadata.recursion_desired && r.metadata.recursion_available);
    assert_eq!(a_records(&r), vec![ip(2), ip(3)]);
    // The owner name echoes the question's spelling (0x20-safe), TTL 0.
    assert_eq!(r.answers[0].name.to_ascii(), "WEB.");
    assert_eq!(r.answers[0].ttl, 0);
    assert_eq!(r.queries, query("WEB.", RecordType::A).queries);
}

#[test]
fn any_answers_with_a_records() {
    assert_eq!(a_records(&reply(&query("web-1.prod.", RecordType::ANY))), vec![ip(2)]);
}

#[test]
fn aaaa_and_other_types_for_a_known_name_are_empty_noerror() {
    for qtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let r = reply(&query("web-1.", qtype));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{qtype}");
        assert!(r.metadata.authoritative);
        assert!(r.answers.is_empty() && r.authorities.is_empty());
    }
}

#[test]
fn ptr_for_a_known_address_names_its_first_name() {
    let r = reply(&query("2.0.88.10.in-addr.arpa.", RecordType::PTR));
    assert!(r.metadata.authoritative);
    match &r.answers[0].data {
        RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), "web-1.prod."),
        other => panic!("expected PTR, got {other:?}"),
    }
    // Unknown addresses and partial reverse names are someone else's.
    assert!(forwards(&query("9.0.88.10.in-addr.arpa.", RecordType::PTR)));
    assert!(forwards(&query("0.88.10.in-addr.arpa.", RecordType::PTR)));
}

#[test]
fn unknown_multi_label_names_are_forwarded() {
    assert!(forwards(&query("example.com.", RecordType::A)));
    assert!(forwards(&query("web.example.com.", RecordType::AAAA)));
    assert!(forwards(&query(".", RecordType::NS)));
}

#[test]
fn unknown_names_in_a_local_zone_are_nxdomain() {
    let r = reply(&query("nope.prod.svc.cluster.local.", RecordType::A));
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.metadata.authoritative);
    assert!(r.authorities.is_empty(), "no SOA: negative answers are not cached");
}

#[test]
fn unknown_single_label_address_queries_stay_here() {
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
        let r = reply(&query("typo.", qtype));
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{qtype}");
        assert!(!r.metadata.authoritative);
    }
    // Other types for single labels (e.g. a TLD's NS) still go out.
    assert!(forwards(&query("com.", RecordType::NS)));
    let mut open = policy();
    open.forward_single_label = true;
    let bytes = query("typo.", RecordType::A).to_vec().unwrap();
    assert!(matches!(handle(&bytes, &records(), &open, Transport::Udp), Outcome::Forward(_)));
}

#[test]
fn non_in_classes_are_forwarded() {
    let mut q = query("version.bind.", RecordType::TXT);
    q.queries[0].set_query_class(DNSClass::CH);
    assert!(forwards(&q));
}

#[test]
fn other_opcodes_and_question_counts_are_refused_locally() {
    let mut notify = query("web.", RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(reply(&notify).metadata.response_code, ResponseCode::NotImp);

    let mut two = query("web.", RecordType::A);
    two.add_query(Query::query(Name::from_ascii("web-1.").unwrap(), RecordType::A));
    assert_eq!(reply(&two).metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn garbage_with_a_header_gets_formerr_and_responses_are_ignored() {
    let mut bytes = query("web.", RecordType::A).to_vec().unwrap();
    bytes.truncate(bytes.len() - 3);
    match handle(&bytes, &records(), &policy(), Transport::Udp) {
        Outcome::Reply(r) => {
            assert_eq!(&r[..2], &[0x12, 0x34]);
            assert_eq!(r[3] & 0x0f, 1, "FORMERR");
            assert_ne!(r[2] & 0x01, 0, "RD copied");
        }
        other => panic!("expected FORMERR, got {other:?}"),
    }
    assert!(matches!(handle(&bytes[..5], &records(), &policy(), Transport::Udp), Outcome::Drop));
    let response = query("web.", RecordType::A).into_response();
    assert!(matches!(ask(&response, Transport::Udp), Outcome::Drop));
}

#[test]
fn edns_requests_get_opt_back() {
    let mut q = query("web.", RecordType::A);
    q.set_edns(Edns::new());
    assert!(reply(&q).edns.is_some());
    assert!(reply(&query("web.", RecordType::A)).edns.is_none());
}

#[test]
fn big_answers_are_truncated_over_udp_but_not_tcp() {
    let records = Records::new();
    let many: Vec<Ipv4Addr> = (1..=60).map(|i| Ipv4Addr::new(10, 88, 1, i)).collect();
    records.upsert("svc", Entry::new(["big"], many.clone())).unwrap();
    let bytes = query("big.", RecordType::A).to_vec().unwrap();

    let Outcome::Reply(udp) = handle(&bytes, &records, &policy(), Transport::Udp) else { panic!("expected a reply") };
    assert!(udp.len() <= 512);
    let udp = Message::from_vec(&udp).unwrap();
    assert!(udp.metadata.truncation && udp.answers.is_empty());

    let Outcome::Reply(tcp) = handle(&bytes, &records, &policy(), Transport::Tcp) else { panic!("expected a reply") };
    let tcp = Message::from_vec(&tcp).unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(a_records(&tcp), many);
}

#[test]
fn servfail_echoes_the_question() {
    let q = query("example.com.", RecordType::A);
    let r = Message::from_vec(&server_failure(&q, Transport::Udp)).unwrap();
    assert_eq!(r.metadata.id, q.metadata.id);
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(r.queries, q.queries);
}

#[test]
fn without_forwarding_only_our_names_are_answered_and_the_rest_refused() {
    let closed = Policy { forward: false, ..policy() };
    let ask_closed = |msg: &Message| match handle(&msg.to_vec().unwrap(), &records(), &closed, Transport::Udp) {
        Outcome::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("nothing may be forwarded, got {other:?}"),
    };
    // Ours, as with forwarding.
    let r = ask_closed(&query("web.", RecordType::A));
    assert_eq!((r.metadata.response_code, a_records(&r)), (ResponseCode::NoError, vec![ip(2), ip(3)]));
    let r = ask_closed(&query("2.0.88.10.in-addr.arpa.", RecordType::PTR));
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ask_closed(&query("gone.cluster.local.", RecordType::A)).metadata.response_code, ResponseCode::NXDomain);
    // Everything that would have gone upstream is refused: other names,
    // unknown reverse names, other classes, and the types of single labels
    // that are forwarded otherwise.
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    for msg in [
        query("example.com.", RecordType::A),
        query("secret-data.attacker.example.", RecordType::TXT),
        query("9.9.9.9.in-addr.arpa.", RecordType::PTR),
        query("com.", RecordType::NS),
        chaos,
    ] {
        assert!(forwards(&msg), "forwarded with forwarding on: {msg:?}");
        let r = ask_closed(&msg);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{:?}", msg.queries);
        assert!(!r.metadata.authoritative && r.answers.is_empty());
        assert_eq!(r.queries, msg.queries);
    }
}
