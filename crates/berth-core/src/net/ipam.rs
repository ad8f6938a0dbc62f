//! Address management, pure: which address a container gets on a network,
//! which subnet a new network gets, and whether a user's subnet collides.
//!
//! The caller passes in what is in use (from its store); nothing here
//! remembers anything, so the same inputs always give the same answer.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::cidr::Ipv4Cidr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error(
        "network {network:?}: subnet {subnet} has no free address; remove unused containers or use a larger subnet"
    )]
    Exhausted { network: String, subnet: Ipv4Cidr },
    #[error("network {network:?}: address {address} is outside its subnet {subnet}")]
    OutsideSubnet { network: String, address: Ipv4Addr, subnet: Ipv4Cidr },
    #[error("network {network:?}: address {address} is already in use")]
    InUse { network: String, address: Ipv4Addr },
    #[error("network {network:?}: address {address} is reserved ({why}) in subnet {subnet}")]
    Reserved { network: String, address: Ipv4Addr, subnet: Ipv4Cidr, why: &'static str },
    #[error("network {network:?}: subnet {subnet} is too small; use a prefix of /30 or shorter")]
    TooSmall { network: String, subnet: Ipv4Cidr },
    #[error("subnet {subnet} overlaps network {other:?} ({other_subnet}); choose a subnet outside it")]
    Overlap { subnet: Ipv4Cidr, other: String, other_subnet: Ipv4Cidr },
    #[error("no free /{prefix} subnet left in pool {pool}; remove unused networks or give a subnet explicitly")]
    PoolExhausted { pool: Ipv4Cidr, prefix: u8 },
    #[error("invalid subnet pool {pool} split into /{prefix}: the size must be from /{} to /30", pool.prefix())]
    BadPool { pool: Ipv4Cidr, prefix: u8 },
}

/// The addresses of one bridge network: its subnet and gateway (the bridge's
/// own address). Invariant: the subnet is /30 or larger and the gateway is a
/// usable host of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    network: String,
    subnet: Ipv4Cidr,
    gateway: Ipv4Addr,
}

impl AddressPool {
    /// `gateway: None` takes the subnet's first host, as docker does.
    pub fn try_new(network: &str, subnet: Ipv4Cidr, gateway: Option<Ipv4Addr>) -> Result<Self, IpamError> {
        if subnet.prefix() > 30 {
            return Err(IpamError::TooSmall { network: network.to_string(), subnet });
        }
        let gateway = gateway.unwrap_or(subnet.first_host());
        let pool = Self { network: network.to_string(), subnet, gateway };
        pool.check_host(gateway)?;
        Ok(pool)
    }

    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn check_host(&self, address: Ipv4Addr) -> Result<(), IpamError> {
        let (network, subnet) = (self.network.clone(), self.subnet);
        if !subnet.contains(address) {
            return Err(IpamError::OutsideSubnet { network, address, subnet });
        }
        let why = if address == subnet.network() {
            "network address"
        } else if address == subnet.broadcast() {
            "broadcast address"
        } else {
            return Ok(());
        };
        Err(IpamError::Reserved { network, address, subnet, why })
    }

    /// Checks an explicitly requested address (`--ip`).
    pub fn reserve(&self, address: Ipv4Addr, in_use: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        self.check_host(address)?;
        if address == self.gateway {
            let (network, subnet) = (self.network.clone(), self.subnet);
            return Err(IpamError::Reserved { network, address, subnet, why: "gateway" });
        }
        if in_use.contains(&address) {
            return Err(IpamError::InUse { network: self.network.clone(), address });
        }
        Ok(address)
    }

    /// Picks the next free host address after `last` (the previously
    /// allocated one, if the caller keeps it), wrapping around, so that a
    /// just-released address is not handed out again at once (stale ARP and
    /// conntrack entries). Skips network, broadcast and gateway. Takes time
    /// proportional to the number of addresses in use, not the subnet size.
    pub fn allocate(&self, in_use: &BTreeSet<Ipv4Addr>, last: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        let taken = |a: &Ipv4Addr| *a == self.gateway || in_use.contains(a);
        let used = in_use.iter().filter(|a| self.subnet.is_host(**a) && **a != self.gateway).count() as u64 + 1;
        if used >= self.subnet.host_count() {
            return Err(IpamError::Exhausted { network: self.network.clone(), subnet: self.subnet });
        }
        let (first, end) = (u32::from(self.subnet.first_host()), u32::from(self.subnet.last_host()));
        let start = match last {
            Some(l) if self.subnet.is_host(l) && u32::from(l) < end => u32::from(l) + 1,
            _ => first,
        };
        // Each step past a taken address skips one entry of `in_use` (or the
        // gateway), and a free address exists, so this ends within
        // in_use.len() + 2 steps.
        let mut candidate = start;
        loop {
            let addr = Ipv4Addr::from(candidate);
            if !taken(&addr) {
                return Ok(addr);
            }
            candidate = if candidate >= end { first } else { candidate + 1 };
        }
    }
}

/// A pool new networks take their subnets from, e.g. 10.89.0.0/16 in /24s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    base: Ipv4Cidr,
    prefix: u8,
}

/// Berth's default: 10.89.0.0/16, one /24 per network (docker uses
/// 172.17.0.0/16 and up, podman 10.88.0.0/16, so this avoids both).
pub fn default_subnet_pool() -> SubnetPool {
    let base = Ipv4Cidr::try_new(Ipv4Addr::new(10, 89, 0, 0), 16).expect("10.89.0.0/16 is canonical");
    SubnetPool { base, prefix: 24 }
}

impl SubnetPool {
    pub fn try_new(base: Ipv4Cidr, prefix: u8) -> Result<Self, IpamError> {
        if prefix < base.prefix() || prefix > 30 {
            return Err(IpamError::BadPool { pool: base, prefix });
        }
        Ok(Self { base, prefix })
    }

    pub fn base(&self) -> Ipv4Cidr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first sub-block of the pool that overlaps no existing network.
    pub fn pick<'a>(&self, existing: impl IntoIterator<Item = (&'a str, Ipv4Cidr)>) -> Result<Ipv4Cidr, IpamError> {
        let existing: Vec<Ipv4Cidr> = existing.into_iter().map(|(_, s)| s).filter(|s| s.overlaps(&self.base)).collect();
        self.base
            .subnets(self.prefix)
            .find(|candidate| !existing.iter().any(|e| e.overlaps(candidate)))
            .ok_or(IpamError::PoolExhausted { pool: self.base, prefix: self.prefix })
    }
}

/// Checks a user-given subnet against the existing networks'.
pub fn check_subnet<'a>(
    subnet: Ipv4Cidr,
    existing: impl IntoIterator<Item = (&'a str, Ipv4Cidr)>,
) -> Result<(), IpamError> {
    match existing.into_iter().find(|(_, other)| other.overlaps(&subnet)) {
        Some((name, other)) => Err(IpamError::Overlap { subnet, other: name.to_string(), other_subnet: other }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn set(addrs: &[&str]) -> BTreeSet<Ipv4Addr> {
        addrs.iter().map(|a| ip(a)).collect()
    }

    #[test]
    fn allocates_the_next_free_host_skipping_reserved() {
        let pool = AddressPool::try_new("n1", c("10.88.0.0/24"), None).unwrap();
        assert_eq!(pool.gateway(), ip("10.88.0.1"));
        assert_eq!(pool.allocate(&set(&[]), None).unwrap(), ip("10.88.0.2"));
        assert_eq!(pool.allocate(&set(&["10.88.0.2", "10.88.0.3"]), None).unwrap(), ip("10.88.0.4"));
        // After the last allocation, not the lowest hole.
        assert_eq!(pool.allocate(&set(&["10.88.0.3"]), Some(ip("10.88.0.3"))).unwrap(), ip("10.88.0.4"));
        // Wraps from the end, skipping network and gateway.
        assert_eq!(pool.allocate(&set(&["10.88.0.254"]), Some(ip("10.88.0.254"))).unwrap(), ip("10.88.0.2"));
    }

    #[test]
    fn a_gateway_elsewhere_in_the_subnet_is_skipped() {
        let pool = AddressPool::try_new("n1", c("10.88.0.0/29"), Some(ip("10.88.0.6"))).unwrap();
        let all = set(&["10.88.0.1", "10.88.0.2", "10.88.0.3", "10.88.0.4"]);
        assert_eq!(pool.allocate(&all, None).unwrap(), ip("10.88.0.5"));
        let full = set(&["10.88.0.1", "10.88.0.2", "10.88.0.3", "10.88.0.4", "10.88.0.5"]);
        assert!(matches!(pool.allocate(&full, None), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn exhaustion_is_a_clear_error() {
        let pool = AddressPool::try_new("n1", c("10.89.0.0/30"), None).unwrap();
        assert_eq!(pool.allocate(&set(&[]), None).unwrap(), ip("10.89.0.2"));
        let e = pool.allocate(&set(&["10.89.0.2"]), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network \"n1\": subnet 10.89.0.0/30 has no free address; remove unused containers or use a larger subnet"
        );
        // Addresses outside the subnet in the in-use set do not count.
        assert!(pool.allocate(&set(&["10.1.1.1", "10.1.1.2"]), None).is_ok());
    }

    #[test]
    fn explicit_requests_are_checked() {
        let pool = AddressPool::try_new("n1", c("10.88.0.0/24"), None).unwrap();
        let used = set(&["10.88.0.5"]);
        assert_eq!(pool.reserve(ip("10.88.0.6"), &used).unwrap(), ip("10.88.0.6"));
        assert_eq!(
            pool.reserve(ip("10.88.0.5"), &used).unwrap_err().to_string(),
            "network \"n1\": address 10.88.0.5 is already in use"
        );
        assert_eq!(
            pool.reserve(ip("10.99.0.5"), &used).unwrap_err().to_string(),
            "network \"n1\": address 10.99.0.5 is outside its subnet 10.88.0.0/24"
        );
        for (a, why) in
            [("10.88.0.0", "network address"), ("10.88.0.255", "broadcast address"), ("10.88.0.1", "gateway")]
        {
            let e = pool.reserve(ip(a), &used).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn pools_need_room_and_a_valid_gateway() {
        assert!(matches!(AddressPool::try_new("n", c("10.0.0.0/31"), None), Err(IpamError::TooSmall { .. })));
        assert!(matches!(
            AddressPool::try_new("n", c("10.0.0.0/24"), Some(ip("10.0.1.1"))),
            Err(IpamError::OutsideSubnet { .. })
        ));
        assert!(matches!(
            AddressPool::try_new("n", c("10.0.0.0/24"), Some(ip("10.0.0.255"))),
            Err(IpamError::Reserved { .. })
        ));
    }

    #[test]
    fn default_subnets_avoid_existing_networks() {
        let pool = default_subnet_pool();
        assert_eq!(pool.pick([]).unwrap(), c("10.89.0.0/24"));
        let existing = [("a", c("10.89.0.0/24")), ("b", c("10.89.1.128/25")), ("far", c("192.168.0.0/16"))];
        assert_eq!(pool.pick(existing).unwrap(), c("10.89.2.0/24"));
        let whole = [("big", c("10.0.0.0/8"))];
        assert_eq!(
            pool.pick(whole).unwrap_err().to_string(),
            "no free /24 subnet left in pool 10.89.0.0/16; remove unused networks or give a subnet explicitly"
        );
        let small = SubnetPool::try_new(c("10.90.0.0/23"), 24).unwrap();
        assert_eq!(small.pick([("x", c("10.90.0.0/24"))]).unwrap(), c("10.90.1.0/24"));
        assert!(SubnetPool::try_new(c("10.90.0.0/23"), 16).is_err());
        assert!(SubnetPool::try_new(c("10.90.0.0/23"), 31).is_err());
    }

    #[test]
    fn user_subnets_must_not_overlap() {
        let existing = [("a", c("10.89.0.0/24")), ("b", c("10.88.1.0/24"))];
        let e = check_subnet(c("10.88.0.0/16"), existing).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.88.0.0/16 overlaps network \"b\" (10.88.1.0/24); choose a subnet outside it"
        );
        assert!(check_subnet(c("10.87.0.0/16"), existing).is_ok());
    }
}
