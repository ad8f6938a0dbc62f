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
//! # What the plumbing must do (not done here)
//!
//! - **A route for the VIP range on the host.** For connections the host
//!   itself opens, the kernel looks up a route *before* the output hook
//!   DNATs; without one, `connect` fails with "network unreachable". Put the
//!   VIP range (e.g. 10.96.0.0/16) on an interface with no address that is
//!   always up: an empty bridge works on every kernel Berth runs on
//!   (`ip link add <prefix>-vip type bridge; ip link set <prefix>-vip up;
//!   ip route add 10.96.0.0/16 dev <prefix>-vip`); a dummy interface works
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
//! - **Hairpin mode on every container's bridge port**
//!   (`ip link set <veth> type bridge_slave hairpin on`). When
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
//! # Never
//!
//! This crate never creates, flushes or deletes a table it was not given
//! the name of, never runs `nft flush ruleset`, and never opens a socket to
//! anything. It is IPv4-only for now (family `ip`).

mod cmd;
mod conntrack;
mod desired;
mod nft;
pub mod ruleset;

pub use conntrack::{
    count_for_vip, parse as parse_conntrack, vip_connections, BackendConnections, Conntrack, ConntrackCli,
    ConntrackError, Entry as ConntrackEntry, FakeConntrack,
};
pub use desired::{Desired, DesiredError, Network, PublishedPort, Vip};
pub use nft::{ensure_applied, is_intact, FakeNftables, NftCall, NftCli, NftError, Nftables};
pub use ruleset::{compile, Ruleset, Shape, MASQUERADE_MARK};
