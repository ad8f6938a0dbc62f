//! IPv4 CIDR blocks (`10.88.0.0/16`).
//!
//! Parsing is strict: the address must be the block's network address, so
//! `10.88.0.1/16` is refused with a message naming `10.88.0.0/16`. A subnet
//! written with host bits set is almost always a typo, and silently masking
//! it would hide which network the user meant. Code that starts from an
//! address inside a block uses [`Ipv4Cidr::containing`], which masks.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 block: a network address and a prefix length (0..=32), with no
/// host bits set in the address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid subnet {input:?}: expected ADDRESS/PREFIX, e.g. 10.88.0.0/16")]
    Syntax { input: String },
    #[error("invalid subnet {input:?}: {address:?} is not an IPv4 address")]
    BadAddress { input: String, address: String },
    #[error("invalid subnet {input:?}: prefix length {prefix:?} is not a number from 0 to 32")]
    BadPrefix { input: String, prefix: String },
    #[error("invalid subnet {input}: host bits are set; the network is {canonical}")]
    HostBitsSet { input: String, canonical: Ipv4Cidr },
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Ipv4Cidr {
    /// A block from its network address; host bits must be clear.
    pub fn try_new(network: Ipv4Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 32 {
            return Err(CidrError::BadPrefix { input: format!("{network}/{prefix}"), prefix: prefix.to_string() });
        }
        let canonical = Self::containing(network, prefix);
        if canonical.network != network {
            return Err(CidrError::HostBitsSet { input: format!("{network}/{prefix}"), canonical });
        }
        Ok(canonical)
    }

    /// The block of length `prefix` (clamped to 32) that contains `addr`.
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        Self { network: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix }
    }

    /// Parses `A.B.C.D/N` strictly (see the module docs).
    pub fn parse(input: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = input.split_once('/').ok_or_else(|| CidrError::Syntax { input: input.to_string() })?;
        let network: Ipv4Addr =
            addr.parse().map_err(|_| CidrError::BadAddress { input: input.to_string(), address: addr.to_string() })?;
        // u8::from_str accepts a leading '+'; a prefix is plain digits.
        let bad_prefix = || CidrError::BadPrefix { input: input.to_string(), prefix: prefix.to_string() };
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_prefix());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad_prefix())?;
        if prefix > 32 {
            return Err(bad_prefix());
        }
        Self::try_new(network, prefix).map_err(|e| match e {
            CidrError::HostBitsSet { canonical, .. } => CidrError::HostBitsSet { input: input.to_string(), canonical },
            other => other,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask, e.g. 255.255.0.0 for a /16.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// The all-ones address of the block (for /31 and /32 this is simply the
    /// last address; such blocks have no broadcast in practice).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Number of addresses in the block (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two blocks share at least one address (one contains the
    /// other, since CIDR blocks nest).
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_cidr(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// First usable host: network+1, except for /31 (both addresses usable,
    /// RFC 3021) and /32 (the single address).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.network
        } else {
            Ipv4Addr::from(u32::from(self.network) + 1)
        }
    }

    /// Last usable host: broadcast-1, except for /31 and /32 (see
    /// [`first_host`](Self::first_host)).
    pub fn last_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.broadcast()
        } else {
            Ipv4Addr::from(u32::from(self.broadcast()) - 1)
        }
    }

    /// Number of usable host addresses.
    pub fn host_count(&self) -> u64 {
        u64::from(u32::from(self.last_host()) - u32::from(self.first_host())) + 1
    }

    /// Whether `addr` is a usable host address of this block.
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        (u32::from(self.first_host())..=u32::from(self.last_host())).contains(&u32::from(addr))
    }

    /// The usable host addresses, in ascending order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first_host())..=u32::from(self.last_host())).map(Ipv4Addr::from)
    }

    /// The sub-blocks of length `prefix` inside this block, in order; empty
    /// when `prefix` is shorter than this block's or longer than 32.
    pub fn subnets(&self, prefix: u8) -> impl Iterator<Item = Ipv4Cidr> {
        let valid = prefix >= self.prefix && prefix <= 32;
        let count: u64 = if valid { 1u64 << (prefix - self.prefix) } else { 0 };
        let step: u64 = if valid { 1u64 << (32 - u32::from(prefix)) } else { 0 };
        let base = u64::from(u32::from(self.network));
        (0..count).map(move |i| {
            // Stays within u32: the last sub-block starts inside this block.
            let network = Ipv4Addr::from((base + i * step) as u32);
            Ipv4Cidr { network, prefix }
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv4Cidr({self})")
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Ipv4Cidr {
    type Error = CidrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Ipv4Cidr {
        Ipv4Cidr::parse(s).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_describes_a_block() {
        let n = c("10.88.0.0/16");
        assert_eq!(n.network(), ip("10.88.0.0"));
        assert_eq!(n.prefix(), 16);
        assert_eq!(n.netmask(), ip("255.255.0.0"));
        assert_eq!(n.broadcast(), ip("10.88.255.255"));
        assert_eq!(n.first_host(), ip("10.88.0.1"));
        assert_eq!(n.last_host(), ip("10.88.255.254"));
        assert_eq!(n.host_count(), 65534);
        assert_eq!(n.size(), 65536);
        assert_eq!(n.to_string(), "10.88.0.0/16");
    }

    #[test]
    fn host_bits_are_refused_naming_the_network() {
        let e = Ipv4Cidr::parse("10.88.0.1/16").unwrap_err();
        assert_eq!(e.to_string(), "invalid subnet 10.88.0.1/16: host bits are set; the network is 10.88.0.0/16");
    }

    #[test]
    fn bad_inputs_say_which_part_is_wrong() {
        for (input, needle) in [
            ("10.88.0.0", "expected ADDRESS/PREFIX"),
            ("10.88.0/16", "\"10.88.0\" is not an IPv4 address"),
            ("10.88.0.0/33", "prefix length \"33\""),
            ("10.88.0.0/", "prefix length \"\""),
            ("10.88.0.0/+8", "prefix length \"+8\""),
            ("10.88.0.0/008", "prefix length \"008\""),
            ("fd00::/8", "is not an IPv4 address"),
        ] {
            let e = Ipv4Cidr::parse(input).unwrap_err().to_string();
            assert!(e.contains(needle), "{input}: {e}");
        }
    }

    #[test]
    fn edge_prefixes() {
        let all = c("0.0.0.0/0");
        assert!(all.contains(ip("255.255.255.255")));
        assert_eq!(all.size(), 1 << 32);
        assert_eq!(all.broadcast(), ip("255.255.255.255"));
        let one = c("10.0.0.7/32");
        assert_eq!(one.hosts().collect::<Vec<_>>(), vec![ip("10.0.0.7")]);
        let p2p = c("10.0.0.6/31");
        assert_eq!(p2p.hosts().collect::<Vec<_>>(), vec![ip("10.0.0.6"), ip("10.0.0.7")]);
        let small = c("10.89.0.0/30");
        assert_eq!(small.hosts().collect::<Vec<_>>(), vec![ip("10.89.0.1"), ip("10.89.0.2")]);
    }

    #[test]
    fn containment_and_overlap() {
        let big = c("10.88.0.0/16");
        let inner = c("10.88.1.0/24");
        let other = c("10.89.0.0/24");
        assert!(big.overlaps(&inner) && inner.overlaps(&big));
        assert!(!big.overlaps(&other));
        assert!(big.contains_cidr(&inner) && !inner.contains_cidr(&big));
        assert!(big.contains(ip("10.88.200.3")) && !big.contains(ip("10.89.0.1")));
        assert_eq!(Ipv4Cidr::containing(ip("10.88.7.9"), 24), c("10.88.7.0/24"));
    }

    #[test]
    fn subnets_split_a_pool() {
        let pool = c("10.89.0.0/16");
        let subs: Vec<_> = pool.subnets(24).collect();
        assert_eq!(subs.len(), 256);
        assert_eq!(subs[0], c("10.89.0.0/24"));
        assert_eq!(subs[255], c("10.89.255.0/24"));
        assert_eq!(c("255.255.255.0/24").subnets(32).last(), Some(c("255.255.255.255/32")));
        assert_eq!(pool.subnets(8).count(), 0);
    }

    #[test]
    fn serde_is_a_string() {
        let n = c("10.88.0.0/16");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"10.88.0.0/16\"");
        assert_eq!(serde_json::from_str::<Ipv4Cidr>("\"10.88.0.0/16\"").unwrap(), n);
        assert!(serde_json::from_str::<Ipv4Cidr>("\"10.88.0.1/16\"").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(addr in any::<u32>(), prefix in 0u8..=32) {
            let n = Ipv4Cidr::containing(Ipv4Addr::from(addr), prefix);
            prop_assert_eq!(Ipv4Cidr::parse(&n.to_string()).unwrap(), n);
            prop_assert!(n.contains(Ipv4Addr::from(addr)));
            prop_assert_eq!(n.host_count() + if prefix <= 30 { 2 } else { 0 }, n.size());
        }

        #[test]
        fn overlap_is_symmetric_and_matches_membership(a in any::<u32>(), pa in 8u8..=32, b in any::<u32>(), pb in 8u8..=32) {
            let x = Ipv4Cidr::containing(Ipv4Addr::from(a), pa);
            let y = Ipv4Cidr::containing(Ipv4Addr::from(b), pb);
            prop_assert_eq!(x.overlaps(&y), y.overlaps(&x));
            let shared = x.contains(y.network()) || x.contains(y.broadcast()) || y.contains(x.network());
            prop_assert_eq!(x.overlaps(&y), shared);
        }
    }
}
