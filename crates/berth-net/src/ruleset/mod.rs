//! The nftables batch as a value, in the JSON schema `nft -j -f -` reads
//! (libnftables-json(5)).
//!
//! Objects (tables, chains, sets, maps, rules) are typed; the expressions
//! inside a rule are kept as JSON values built by the small helpers in
//! `expr`, because the schema's expression language is large and Berth uses
//! a dozen shapes of it. [`compile`] builds a [`Ruleset`] from a
//! [`Desired`](crate::Desired) state; [`Shape`] summarises a ruleset or an
//! `nft -j list table` answer so that a flushed or altered table can be
//! noticed and re-applied.
//!
//! # Layout
//!
//! Everything lives in one table, `ip <name>`:
//!
//! ```text
//! filter-prerouting hook prerouting prio raw (before conntrack and DNAT)
//!                 iifname != "lo" ip daddr 127.0.0.0/8 drop
//!                 iifname @bridges ip saddr 127.0.0.0/8 drop
//! nat-prerouting  hook prerouting  prio dstnat   jump services; jump published
//! nat-output      hook output      prio dstnat   jump services; jump published
//! services        ip daddr . meta l4proto . th dport vmap @service-ips
//! vip-<name>-<h>  numgen random mod 100 vmap { 0-49 : goto ep-…, 50-99 : goto ep-… }
//! ep-<name>-<h>-<addr>-<port>
//!                 ip saddr <addr> jump mark-for-masquerade      (hairpin)
//!                 meta l4proto <p> dnat to <addr>:<port>
//! published       [ip daddr <ip> | fib daddr type local] <p> dport <hp>
//!                     ip saddr <cip> jump mark-for-masquerade   (hairpin)
//!                     dnat to <cip>:<cp>
//!                 fib daddr type local <p> dport <np> goto vip-<name>-<h>   (node port)
//! mark-for-masquerade  meta mark set meta mark | 0x4000
//! nat-postrouting hook postrouting prio srcnat
//!                 meta mark & 0x4000 != 0  meta mark set meta mark ^ 0x4000  masquerade
//!                 per network:  iifname <br> oifname <br> ct status dnat masquerade
//!                 per non-internal network:
//!                     oifname <br> ip saddr 127.0.0.0/8 masquerade   (published port via loopback)
//!                     ip saddr <subnet> oifname != <br> masquerade   (egress)
//! filter-forward  hook forward     prio filter   ip daddr @vip-addresses jump reject-vip
//!                 ct state established,related accept
//!                 oifname @bridges goto into-networks
//!                 iifname @bridges goto out-of-networks
//!                 (anything else: no verdict, the host's own routing)
//! into-networks   iifname . oifname @same-bridge accept
//!                 iifname @internal-bridges drop
//!                 oifname @internal-bridges drop
//!                 ct status dnat accept          (published ports, VIPs)
//!                 drop                           (other networks, the LAN)
//! out-of-networks iifname @internal-bridges drop
//!                 accept                         (egress, masqueraded)
//! filter-output   hook output      prio filter   ip daddr @vip-addresses jump reject-vip
//! reject-vip      tcp: reject with tcp reset; else icmp port-unreachable
//! ```
//!
//! Sets `bridges`, `internal-bridges` (type `ifname`) and `same-bridge`
//! (`ifname . ifname`, one `<br> . <br>` pair per network; nft cannot
//! compare two interface names with each other) name the networks' bridges.
//!
//! # Isolation
//!
//! Every base chain keeps policy accept and Berth never touches another
//! table, so the only packets Berth's filter rules can drop are ones routed
//! into or out of its own bridges, and ones addressed to 127.0.0.0/8 on an
//! interface other than `lo`. For those: replies of allowed connections
//! pass first; a network's own members reach each other (a packet between
//! them crosses `filter-forward` only with `br_netfilter`, or when it is
//! DNATed back into its bridge); an internal network sends and receives
//! nothing across its bridge; DNATed traffic (published ports, VIPs) may
//! enter any other network; everything else routed into a bridge, from
//! another bridge or from the LAN, is dropped. Containers reach the outside
//! (masqueraded), and the host reaches every network (the output hook).
//! Per-endpoint network policy belongs at the head of `into-networks` and
//! `out-of-networks`, after the established-connection accept.
//!
//! The 127.0.0.0/8 rules exist because bridges have `route_localnet=1`
//! (published ports on 127.0.0.1) and DNAT runs before the kernel's martian
//! check: without them a container, or a LAN neighbour routing 127.0.0.1
//! through this host, reaches 127.0.0.1-only published ports and (from a
//! container) any service listening on the host's loopback
//! (CVE-2020-8558). They run at raw priority, before DNAT, where no
//! legitimate packet has such an address: the host's own connections to a
//! published port on 127.0.0.1 are masqueraded to the bridge address on the
//! way out, so their replies arrive addressed to it.
//!
//! A VIP with at least one backend of non-zero weight is an element of
//! `@service-ips`; connections to it are DNATed in the nat hooks, so by the
//! filter hooks their destination is a backend. Anything still addressed to
//! a VIP there (no ready backend, or a port the VIP does not serve) is
//! rejected at once instead of being routed nowhere. NAT rules see only the
//! first packet of a connection; later packets follow conntrack, which is
//! why replacing the batch never breaks established connections.

mod compile;
mod diff;
pub(crate) mod expr;
mod names;
mod shape;

pub use compile::{compile, MASQUERADE_MARK};
pub use diff::changes;
pub use names::{endpoint_chain, vip_chain};
pub use shape::Shape;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Address family of Berth's tables: IPv4 only for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ip,
}

/// One nftables batch: applied by `nft -j -f -` as a single transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    nftables: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Add(Object),
    Delete(Object),
    /// Empties a chain (its rules go, the chain stays).
    Flush(Object),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Table(Table),
    Chain(Chain),
    Set(Set),
    Map(Map),
    Rule(Rule),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub family: Family,
    pub name: String,
}

/// A chain; `base` is set for chains attached to a netfilter hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseChain>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseChain {
    #[serde(rename = "type")]
    pub kind: String,
    pub hook: String,
    pub prio: i32,
    pub policy: String,
}

/// A named set. `kind` is the element type, a string (`"ipv4_addr"`) or a
/// list for concatenations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Set {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elem: Vec<Value>,
}

/// A named map; `map` is the data type (`"verdict"` for a verdict map) and
/// each element is a `[key, value]` pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Value,
    pub map: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elem: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub family: Family,
    pub table: String,
    pub chain: String,
    pub expr: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Ruleset {
    pub(crate) fn new(nftables: Vec<Command>) -> Self {
        Self { nftables }
    }

    pub fn commands(&self) -> &[Command] {
        &self.nftables
    }

    /// The table this batch (re)creates: the first table it adds.
    pub fn table(&self) -> Option<&str> {
        self.nftables.iter().find_map(|c| match c {
            Command::Add(Object::Table(t)) => Some(t.name.as_str()),
            _ => None,
        })
    }

    /// Compact JSON for `nft -j -f -`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ruleset always serialises")
    }

    /// Indented JSON, one object per line group (golden files, `inspect`).
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a ruleset always serialises");
        s.push('\n');
        s
    }

    /// What `nft -j list table` should show after this batch is applied.
    pub fn shape(&self) -> Shape {
        Shape::of_ruleset(self)
    }
}
