//! What to do with one query, decided by a pure function of the request
//! bytes, the records and the [`Policy`]: answer it here, forward it, or
//! drop it. No I/O, so every rule is tested on hand-built messages.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode, DEFAULT_MAX_PAYLOAD_LEN};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::name::{in_zone, key_of};
use crate::records::Records;

/// Smallest UDP payload every client accepts (RFC 1035).
const MIN_UDP_PAYLOAD: usize = 512;

/// The answering rules the daemon chooses per network.
#[derive(Debug, Clone)]
pub struct Policy {
    /// TTL of local answers.
    pub ttl: u32,
    /// Canonical zones (e.g. `cluster.local`) whose unknown names get
    /// NXDOMAIN here instead of being forwarded.
    pub local_zones: Vec<String>,
    /// Forward A/AAAA/ANY queries for single-label names that are not ours.
    pub forward_single_label: bool,
    /// Forward anything at all. Off (an internal network): every query
    /// that is not ours gets REFUSED here, so the server cannot be used to
    /// reach the outside, e.g. to exfiltrate data in query names.
    pub forward: bool,
}

/// How the query arrived, which bounds the size of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The decision for one query.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: relay the query to the upstreams. The parsed request is
    /// kept to check upstream answers against it and to build a SERVFAIL.
    Forward(Message),
    /// Not a query (or too short to answer): say nothing.
    Drop,
}

/// Decides what to do with the raw query `bytes`.
pub fn handle(bytes: &[u8], records: &Records, policy: &Policy, via: Transport) -> Outcome {
    let request = match Message::from_vec(bytes) {
        Ok(request) => request,
        Err(_) => return format_error(bytes).map_or(Outcome::Drop, Outcome::Reply),
    };
    if request.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    match decide(&request, records, policy) {
        Some(response) => Outcome::Reply(encode(&response, &request, via)),
        None if !policy.forward => {
            Outcome::Reply(encode(&response(&request, ResponseCode::Refused, false), &request, via))
        }
        None => Outcome::Forward(request),
    }
}

/// The local response, or `None` to forward.
fn decide(request: &Message, records: &Records, policy: &Policy) -> Option<Message> {
    if request.metadata.op_code != OpCode::Query {
        return Some(response(request, ResponseCode::NotImp, false));
    }
    let [query] = request.queries.as_slice() else {
        return Some(response(request, ResponseCode::FormErr, false));
    };
    if query.query_class() != DNSClass::IN {
        return None;
    }
    let qtype = query.query_type();
    if qtype == RecordType::PTR {
        if let Some(target) = reverse_v4(query.name()).and_then(|a| records.reverse(a)) {
            let mut reply = response(request, ResponseCode::NoError, true);
            let target = Name::from_ascii(format!("{target}.")).ok()?;
            reply.add_answer(Record::from_rdata(query.name().clone(), policy.ttl, RData::PTR(PTR(target))));
            return Some(reply);
        }
        return None;
    }
    let key = key_of(query.name())?;
    if let Some(addrs) = records.lookup_key(&key) {
        // The name is ours: answer for every type, with A records where
        // they apply and an empty NOERROR otherwise (AAAA included, so a
        // client moves on to A at once instead of treating it as absent).
        let mut reply = response(request, ResponseCode::NoError, true);
        if matches!(qtype, RecordType::A | RecordType::ANY) {
            for addr in addrs {
                reply.add_answer(Record::from_rdata(query.name().clone(), policy.ttl, RData::A(A(addr))));
            }
        }
        return Some(reply);
    }
    if policy.local_zones.iter().any(|zone| in_zone(&key, zone)) {
        return Some(response(request, ResponseCode::NXDomain, true));
    }
    let single_label = query.name().num_labels() == 1;
    let address_query = matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY);
    if single_label && address_query && !policy.forward_single_label {
        return Some(response(request, ResponseCode::NXDomain, false));
    }
    None
}

/// The address a `d.c.b.a.in-addr.arpa.` name asks about.
fn reverse_v4(name: &Name) -> Option<Ipv4Addr> {
    match name.parse_arpa_name().ok()? {
        net if net.prefix_len() == 32 => match net.addr() {
            IpAddr::V4(addr) => Some(addr),
            IpAddr::V6(_) => None,
        },
        _ => None,
    }
}

/// An empty response to `request` with `code`. Local answers carry no SOA,
/// so negative answers are not cached (RFC 2308) and a name that appears
/// later resolves at once.
fn response(request: &Message, code: ResponseCode, authoritative: bool) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.authoritative = authoritative;
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = code;
    reply.queries = request.queries.clone();
    if request.edns.is_some() {
        // RFC 6891: a request with OPT gets a response with OPT.
        let mut edns = Edns::new();
        edns.set_max_payload(DEFAULT_MAX_PAYLOAD_LEN);
        reply.set_edns(edns);
    }
    reply
}

/// SERVFAIL for a request whose forwarding failed.
pub fn server_failure(request: &Message, via: Transport) -> Vec<u8> {
    encode(&response(request, ResponseCode::ServFail, false), request, via)
}

/// Serialises `reply`; over UDP a reply larger than the client accepts is
/// sent truncated (TC, no records) so the client retries over TCP.
fn encode(reply: &Message, request: &Message, via: Transport) -> Vec<u8> {
    let limit = match via {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => {
            request.edns.as_ref().map_or(MIN_UDP_PAYLOAD, |e| usize::from(e.max_payload()).max(MIN_UDP_PAYLOAD))
        }
    };
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit => bytes,
        // Too large, or (never seen for our own records) unencodable.
        _ => reply.truncate().to_vec().unwrap_or_else(|_| header_only(reply.metadata.id, ResponseCode::ServFail.low())),
    }
}

/// FORMERR for bytes that do not parse, if they at least carry a query
/// header; `None` for anything shorter or for responses.
fn format_error(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return None;
    }
    let mut reply = header_only(u16::from_be_bytes([bytes[0], bytes[1]]), 1);
    // Keep the opcode and RD bits of the request, as RFC 1035 asks.
    reply[2] |= bytes[2] & 0x79;
    Some(reply)
}

/// A bare response header with `rcode` and no sections.
fn header_only(id: u16, rcode: u8) -> Vec<u8> {
    let mut header = vec![0u8; 12];
    header[..2].copy_from_slice(&id.to_be_bytes());
    header[2] = 0x80;
    header[3] = 0x80 | (rcode & 0x0f);
    header
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
