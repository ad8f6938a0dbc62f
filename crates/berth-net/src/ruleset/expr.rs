//! Builders for the handful of nftables JSON expressions and statements
//! Berth emits. Each mirrors one piece of nft syntax, named in its doc.

use std::net::Ipv4Addr;

use berth_core::net::{Ipv4Cidr, Protocol};
use serde_json::{json, Value};

/// `ip saddr` / `ip daddr`, `tcp dport`, `th dport`.
pub fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

/// `meta KEY` (l4proto, mark, iifname, oifname).
pub fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

/// `ct KEY` (status, state).
pub fn ct(key: &str) -> Value {
    json!({ "ct": { "key": key } })
}

/// `fib daddr type`.
pub fn fib_daddr_type() -> Value {
    json!({ "fib": { "result": "type", "flags": ["daddr"] } })
}

/// `LEFT == RIGHT`.
pub fn eq(left: Value, right: impl Into<Value>) -> Value {
    json!({ "match": { "op": "==", "left": left, "right": right.into() } })
}

/// `LEFT != RIGHT`.
pub fn ne(left: Value, right: impl Into<Value>) -> Value {
    json!({ "match": { "op": "!=", "left": left, "right": right.into() } })
}

/// A flag test, e.g. `ct status dnat`.
pub fn has_flag(left: Value, flag: &str) -> Value {
    json!({ "match": { "op": "in", "left": left, "right": flag } })
}

/// `ADDR/LEN` as a match operand.
pub fn prefix(cidr: Ipv4Cidr) -> Value {
    json!({ "prefix": { "addr": cidr.network().to_string(), "len": cidr.prefix() } })
}

/// `@NAME`, a reference to a named set or map.
pub fn set_ref(name: &str) -> String {
    format!("@{name}")
}

/// `ct state { A, B }`: the connection is in one of `states`.
pub fn ct_state_in(states: &[&str]) -> Value {
    json!({ "match": { "op": "in", "left": ct("state"), "right": states } })
}

/// `A . B . C`.
pub fn concat(parts: Vec<Value>) -> Value {
    json!({ "concat": parts })
}

/// `numgen random mod N`.
pub fn numgen_random(modulus: u32) -> Value {
    json!({ "numgen": { "mode": "random", "mod": modulus, "offset": 0 } })
}

/// `A-B` as a set element, or a plain `A` when the range has one value.
pub fn range_elem(first: u8, last: u8) -> Value {
    if first == last {
        json!(first)
    } else {
        json!({ "range": [first, last] })
    }
}

/// `KEY vmap DATA`, DATA being `@name` or an anonymous `{ k : v, ... }`.
pub fn vmap(key: Value, data: Value) -> Value {
    json!({ "vmap": { "key": key, "data": data } })
}

/// An anonymous set literal `{ ... }` (for an anonymous vmap: `[k, v]` pairs).
pub fn anon_set(elems: Vec<Value>) -> Value {
    json!({ "set": elems })
}

pub fn jump(target: &str) -> Value {
    json!({ "jump": { "target": target } })
}

pub fn goto(target: &str) -> Value {
    json!({ "goto": { "target": target } })
}

pub fn accept() -> Value {
    json!({ "accept": null })
}

pub fn drop() -> Value {
    json!({ "drop": null })
}

/// `dnat to ADDR:PORT` (the rule must match a transport protocol first).
pub fn dnat(addr: Ipv4Addr, port: u16) -> Value {
    json!({ "dnat": { "addr": addr.to_string(), "port": port } })
}

pub fn masquerade() -> Value {
    json!({ "masquerade": null })
}

/// `reject with tcp reset` (needs a tcp match before it).
pub fn reject_tcp_reset() -> Value {
    json!({ "reject": { "type": "tcp reset" } })
}

/// `reject with icmp port-unreachable`.
pub fn reject_port_unreachable() -> Value {
    json!({ "reject": { "type": "icmp", "expr": "port-unreachable" } })
}

/// `meta mark set meta mark | BITS`.
pub fn mark_set_bits(bits: u32) -> Value {
    json!({ "mangle": { "key": meta("mark"), "value": { "|": [meta("mark"), bits] } } })
}

/// `meta mark set meta mark ^ BITS` (clears bits known to be set).
pub fn mark_flip_bits(bits: u32) -> Value {
    json!({ "mangle": { "key": meta("mark"), "value": { "^": [meta("mark"), bits] } } })
}

/// `meta mark & BITS != 0`.
pub fn mark_has_bits(bits: u32) -> Value {
    ne(json!({ "&": [meta("mark"), bits] }), 0)
}

/// `meta l4proto tcp|udp`.
pub fn l4proto(protocol: Protocol) -> Value {
    eq(meta("l4proto"), protocol.as_str())
}

/// `tcp dport N` / `udp dport N` (implies the protocol).
pub fn dport(protocol: Protocol, port: u16) -> Value {
    eq(payload(protocol.as_str(), "dport"), port)
}
