//! Berth's network data plane in nftables: published ports, masquerade,
//! internal networks and weighted service VIPs.
//!
//! # Design
//!
//! The daemon describes what it wants as a [`Desired`] value (networks,
//! published ports, VIPs with [`Weights`](berth_core::net::Weights)), checked
//! as a whole by [`Desired::try_new`]. [`compile`] turns it into a
//! [`Ruleset`] by a pure function; golden files pin its output. The
//! ruleset is one nftables JSON batch that creates Berth's table if needed,
//! deletes it and rebuilds it, so [`Nftables::apply`] changes everything in
//! one kernel transaction: no half-applied state, idempotent, and nothing
//! outside the table is touched. Keep the last applied ruleset and call
//! [`ensure_applied`] on start and periodically: it notices a flushed or
//! deleted table and applies again.
//!
//! Service VIPs follow kube-proxy's nftables mode: one verdict-map lookup on
//! `ip daddr . meta l4proto . th dport`, a chain per VIP that picks a
//! backend with `numgen random mod 100` over the weight slices (1 %
//! granularity), and a chain per backend that DNATs. NAT rules only see the
//! first packet of a connection, so a new batch changes where *new*
//! connections go while established ones keep their conntrack binding: that
//! is how a removed backend drains. [`vip_connections`] counts the
//! connections each backend still has. A VIP without a ready backend (and
//! any port a VIP does not serve) is rejected in the filter hooks at once:
//! TCP gets a reset, other protocols ICMP port-unreachable. The table
//! layout is documented in [`ruleset`].
//!
//! Effects sit behind two narrow traits with real and fake implementations:
//! [`Nftables`] ([`NftCli`] runs `nft -j -f -`) and [`Conntrack`]
//! ([`ConntrackCli`] runs `conntrack -L`). Both can run inside a network
//! namespace (`nsenter --net=PATH`), which is how the privileged tests work
//! without touching the host's rules.
//!
//! # Plumbing: namespaces and links
//!
//! [`netns`] keeps named network namespaces as bind mounts on files in a
//! directory (`/run/netns/NAME` for the daemon, as `ip netns` does, so
//! admins can `ip netns exec` into a container and runc joins it by path);
//! [`netns::list`] finds what a crashed daemon left. The [`NetLinks`] trait
//! does bridges, veth pairs, addresses, routes and sysctls; the real
//! [`NetlinkLinks`] speaks rtnetlink directly (no `ip` processes) and is
//! synchronous: an [`attach`](NetLinks::attach) is one short-lived thread
//! (to open a socket inside the container's namespace) and seven
//! netlink round trips, around 1 ms when the host is idle; the tokio daemon calls it through
//! `spawn_blocking`. Host-side veth names come from [`host_ifname`]
//! (prefix + hash, at most 15 bytes). [`FakeNetLinks`] and
//! [`FakeNamespaces`] record calls for the daemon's tests.
//!
//! The daemon's order: at start `set_sysctl("net.ipv4.ip_forward", "1")`
//! and [`ensure_vip_route`](NetLinks::ensure_vip_route); per network
//! [`ensure_bridge`](NetLinks::ensure_bridge); per container
//! [`netns::create`], then one [`attach`](NetLinks::attach) per network
//! (the first with the gateway), and on removal
//! [`detach`](NetLinks::detach) and [`netns::delete`]. Together they do
//! what the rule set relies on:
//!
//! - **A route for the VIP range on the host.** For connections the host
//!   itself opens, the kernel looks up a route *before* the output hook
//!   DNATs; without one, `connect` fails with "network unreachable". Put the
//!   VIP range (e.g. 10.96.0.0/16) on an interface with no address that is
//!   always up: an empty bridge works on every kernel Berth runs on
//!   (`ip link add <prefix>-vip type bridge; ip link set <prefix>-vip up;
//!   ip route add 10.96.0.0/16 dev <prefix>-vip`, which is
//!   [`ensure_vip_route`](NetLinks::ensure_vip_route)); a dummy interface works
//!   too where the kernel has CONFIG_DUMMY (not all do). A default route
//!   would also do, but a host may have none. Do **not** assign VIPs as
//!   addresses: a local VIP becomes the connection's source and matches
//!   `fib daddr type local`, so published-port rules would capture it.
//!   Connections from containers need nothing extra: they are DNATed in
//!   prerouting, before routing.
//! - **`net.ipv4.conf.<bridge>.route_localnet=1`** on each bridge whose
//!   published ports must answer on 127.0.0.1 from the host; the kernel
//!   otherwise drops a packet with a 127/8 source leaving a non-loopback
//!   interface. The batch masquerades such packets to the bridge address.
//!   [`ensure_bridge`](NetLinks::ensure_bridge) sets it.
//! - **Hairpin mode on every container's bridge port**
//!   (`ip link set <veth> type bridge_slave hairpin on`; done by
//!   [`attach`](NetLinks::attach)). When
//!   `br_netfilter` is active (`net.bridge.bridge-nf-call-iptables=1`, the
//!   default once the module is loaded, e.g. by Docker), a container's
//!   connection to its own VIP or published port is DNATed inside the
//!   bridge and sent back out the port it came in on, which a bridge only
//!   does in hairpin mode. The batch masquerades that case (packet mark), so
//!   the container does not see its own address as the source. Without
//!   `br_netfilter` the packet is routed by the host and hairpin mode is
//!   harmless. Either way works; the difference is that, with
//!   `br_netfilter`, a neighbour on the same bridge reaching a VIP keeps its
//!   own source address (the bridge's conntrack undoes the DNAT), while
//!   without it the host masquerades it to the gateway address.
//! - **`net.ipv4.ip_forward=1`**, and a host firewall whose forward policy
//!   lets bridge traffic through (Berth only adds accept-policy chains; a
//!   `drop` elsewhere still drops).
//!
//! # Isolation
//!
//! Docker's and Kubernetes' expectations, enforced in Berth's own table
//! only (the rules are listed in [`ruleset`]): replies of allowed
//! connections pass; containers on one network reach each other; DNATed
//! traffic (published ports, VIPs) may enter any network but an internal
//! one; anything else routed into a bridge, from another network or from
//! the LAN, is dropped; containers reach the outside, masqueraded; the
//! host reaches every network. Packets addressed to 127.0.0.0/8 are
//! dropped on every interface but `lo`, and packets from 127.0.0.0/8 on
//! Berth's bridges, before any DNAT: with `route_localnet=1` a container
//! could otherwise reach the host's loopback services, and a LAN neighbour
//! 127.0.0.1-only published ports (CVE-2020-8558). Traffic that neither
//! enters nor leaves a Berth bridge is never judged. Containers reaching
//! the host itself (the input hook, e.g. the network's DNS on the gateway)
//! are not filtered.
//!
//! # Never
//!
//! This crate never creates, flushes or deletes a table it was not given
//! the name of, never runs `nft flush ruleset`, never changes or deletes a
//! link it was not given the name of (nor one of another kind than it
//! manages), never moves a caller's thread into another namespace, and
//! opens no socket but netlink to the kernel. It is IPv4-only for now
//! (family `ip`).

mod cmd;
mod conntrack;
mod desired;
pub mod link;
pub mod netns;
mod nft;
pub mod ruleset;

pub use conntrack::{
    count_for_vip, parse as parse_conntrack, vip_connections, BackendConnections, Conntrack, ConntrackCli,
    ConntrackError, Entry as ConntrackEntry, FakeConntrack,
};
pub use desired::{Desired, DesiredError, Network, PublishedPort, Vip};
pub use link::{
    host_ifname, Attached, Attachment, BridgeSpec, FakeNetLinks, LinkCall, LinkError, MacAddr, NetLinks, NetlinkLinks,
};
pub use netns::{FakeNamespaces, Namespaces, NetnsDir, NetnsError};
pub use nft::{ensure_applied, is_intact, FakeNftables, NftCall, NftCli, NftError, Nftables};
pub use ruleset::{compile, Ruleset, Shape, MASQUERADE_MARK};
