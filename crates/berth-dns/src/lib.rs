//! Berth's per-network DNS server: containers on a network resolve each
//! other's names, aliases and service names through it, and everything else
//! through the host's resolvers.
//!
//! # Design
//!
//! The daemon runs one [`DnsServer`] per network on the bridge's gateway
//! address, port 53, UDP and TCP, and writes [`ContainerResolvConf`] into
//! each container's bundle so its `/etc/resolv.conf` points there. What the
//! server answers comes from a [`Records`] handle the daemon keeps: per
//! owner (a container, a service) a list of names and IPv4 addresses. The
//! daemon decides the names (`NAME`, `NAME.NAMESPACE`, `NAME.NAMESPACE.svc`,
//! aliases...); the table only folds case and a trailing dot. A change is
//! one call under one lock and the next query sees it: renames, restarts
//! and removals show up at once.
//!
//! Each query is decided by a pure function (`answer` module):
//!
//! - **A name we know**: authoritative answer; A and ANY get every address
//!   of every owner of the name, sorted; AAAA and other types get an empty
//!   NOERROR (so a client moves on to A at once instead of giving up).
//! - **PTR for an address we know** (`d.c.b.a.in-addr.arpa`): the first
//!   name of its owner. Other reverse names are forwarded.
//! - **TTL 0** on local answers and **no SOA** on negative ones: the answer
//!   comes from memory on the same host, so caching buys nothing, and any
//!   cache in a container would make a renamed or removed container resolve
//!   to its old address for the TTL. (Docker's 600 s TTL shows the cost.)
//! - **Names under a local zone** ([`DnsConfig::local_zones`], e.g.
//!   `cluster.local`) that we do not know: NXDOMAIN here. They can exist
//!   nowhere else, and search-list expansion would otherwise send every
//!   such miss upstream.
//! - **Unknown single-label names**: NXDOMAIN here for A/AAAA/ANY, unlike
//!   Docker, which forwards them. The only single-label hosts a container
//!   can mean are ours; upstream, such a query leaks typos and the names
//!   of removed containers to the site's resolvers and comes back NXDOMAIN
//!   anyway (systemd-resolved refuses them the same way by default). Other
//!   types (e.g. `NS com`) are still forwarded, and
//!   [`DnsConfig::forward_single_label`] restores Docker's behaviour.
//! - **Everything else** is forwarded to the upstreams in order, a short
//!   timeout each, the query and the answer relayed byte for byte (the
//!   client's ID swapped for a random one on the way out). SERVFAIL or
//!   REFUSED moves on to the next upstream; when all fail, the client gets
//!   SERVFAIL. UDP queries go out over UDP (a truncated answer is relayed,
//!   so the client retries over TCP), TCP queries over TCP.
//!
//! - **Internal networks** ([`DnsConfig::forward`] off): nothing is
//!   forwarded; whatever would have been gets REFUSED, so a container on a
//!   network cut off from the outside cannot reach it through DNS either
//!   (e.g. data sent out in query names). REFUSED rather than Docker's
//!   SERVFAIL: it says the server will not, not that it failed, so
//!   resolvers do not retry; and rather than NXDOMAIN, which would claim
//!   the name does not exist anywhere.
//!
//! The upstreams are the host's `nameserver` lines
//! ([`upstreams_from_resolv_conf`]); a loopback stub such as
//! systemd-resolved's 127.0.0.53 works because the daemon, in the host's
//! network namespace, does the forwarding.
//!
//! hickory-proto parses and writes the messages; the server loops are our
//! own (a few hundred lines) rather than hickory-server's. Its handlers
//! decode a query into its own request type and expect zone-shaped
//! authorities and a resolver-backed forwarder that rebuilds answers; a
//! byte-for-byte relay keeps EDNS options, DNSSEC records and the TC bit
//! exactly as the upstream sent them, and the pure decision function keeps
//! the rules testable without sockets.
//!
//! # What this crate must never do
//!
//! - Touch the host's network configuration: it binds sockets on addresses
//!   the daemon created, nothing more.
//! - Send traffic anywhere but the configured upstreams, and never to
//!   itself (an upstream equal to the listening address is dropped).
//! - Block a query on another: forwards run concurrently (bounded), and
//!   a lookup holds the records lock only for the lookup.

mod answer;
mod forward;
mod name;
mod records;
mod resolv_conf;
mod server;

pub use name::NameError;
pub use records::{Entry, Records, RecordsError};
pub use resolv_conf::{read_host_upstreams, upstreams_from_resolv_conf, ContainerResolvConf, ResolvConfError};
pub use server::{DnsConfig, DnsServer, ServerError};
