//! Interface names and MAC addresses: checks, and deterministic names for
//! the host side of a container's veth pair.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// How many bytes of the daemon's prefix a derived name keeps; the rest
/// of the name (at least 10 characters) is a hash of the full prefix and
/// the key, so names of two daemons differ even where prefixes share
/// their first bytes.
const PREFIX_KEEP: usize = 5;

/// Whether `name` is usable as a Linux interface name: 1 to 15 bytes,
/// no `/`, `:`, whitespace or control characters, not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    (1..=IFNAME_MAX).contains(&name.len())
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

/// A deterministic interface name from the daemon's name prefix and a
/// key: the prefix's first (up to) 5 characters of `[a-zA-Z0-9_-]`, then
/// a base32 hash of the full prefix and the key up to 15 bytes. The same
/// input always gives the same name, which is at most 15 bytes.
pub fn derive_ifname(prefix: &str, key: &[&str]) -> String {
    let kept: String =
        prefix.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(PREFIX_KEEP).collect();
    let mut hasher = Sha256::new();
    hasher.update(prefix.as_bytes());
    for part in key {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut name = kept;
    let want = IFNAME_MAX - name.len();
    name.extend(base32(&digest).take(want));
    name
}

/// The host-side name of the veth pair joining container `container_id`
/// to its `network_index`-th network (0 for the first), for a daemon whose
/// names carry `prefix`. Deterministic: the daemon can recompute it to
/// detach after a restart.
pub fn host_ifname(prefix: &str, container_id: &str, network_index: u32) -> String {
    derive_ifname(prefix, &["veth", container_id, &network_index.to_string()])
}

/// Lowercase RFC 4648 base32 characters of `bytes` (5 bits each), valid
/// in interface names.
fn base32(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..bytes.len() * 8 / 5).map(move |i| {
        let bit = i * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let pair = u16::from(bytes[byte]) << 8 | u16::from(bytes.get(byte + 1).copied().unwrap_or(0));
        let index = (pair >> (11 - shift)) & 0x1f;
        char::from(ALPHABET[usize::from(index)])
    })
}

/// An Ethernet address of an interface: unicast, not all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr([u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("invalid MAC address {0:?}: expected six hex pairs like 02:42:0a:59:00:02")]
    Syntax(String),
    #[error("invalid MAC address {0}: a multicast or all-zero address cannot name an interface; clear the lowest bit of the first byte")]
    NotUnicast(String),
}

impl MacAddr {
    pub fn try_new(bytes: [u8; 6]) -> Result<Self, MacError> {
        if bytes[0] & 1 == 1 || bytes == [0; 6] {
            return Err(MacError::NotUnicast(Self(bytes).to_string()));
        }
        Ok(Self(bytes))
    }

    /// A locally administered unicast address derived from `key`; the
    /// same key always gives the same address.
    pub fn derived(key: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in key {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let d = hasher.finalize();
        Self([(d[0] & 0xfe) | 0x02, d[1], d[2], d[3], d[4], d[5]])
    }

    /// `02:42:` and the IPv4 address, as Docker does: an address handed
    /// to a new container keeps its MAC, so neighbour caches that still
    /// hold the address (the host's, other containers') stay right.
    pub fn for_ipv4(ip: std::net::Ipv4Addr) -> Self {
        let [a, b, c, d] = ip.octets();
        Self([0x02, 0x42, a, b, c, d])
    }

    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, MacError> {
        let syntax = || MacError::Syntax(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(syntax());
        }
        let mut bytes = [0u8; 6];
        for (b, p) in bytes.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(syntax());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| syntax())?;
        }
        Self::try_new(bytes)
    }
}

impl TryFrom<&[u8]> for MacAddr {
    type Error = MacError;

    fn try_from(bytes: &[u8]) -> Result<Self, MacError> {
        let arr: [u8; 6] = bytes.try_into().map_err(|_| MacError::Syntax(hex::encode(bytes)))?;
        Self::try_new(arr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_and_are_stable() {
        let a = host_ifname("berth", "3f2a9c0d1e", 0);
        assert_eq!(a, host_ifname("berth", "3f2a9c0d1e", 0));
        assert_eq!(a.len(), IFNAME_MAX);
        assert!(a.starts_with("berth"));
        assert!(valid_ifname(&a), "{a}");
        assert_ne!(a, host_ifname("berth", "3f2a9c0d1e", 1));
        assert_ne!(a, host_ifname("berth", "3f2a9c0d1f", 0));
    }

    #[test]
    fn prefixes_that_share_their_start_still_differ() {
        let a = host_ifname("berth-test-1", "c1", 0);
        let b = host_ifname("berth-test-2", "c1", 0);
        assert_eq!(&a[..5], &b[..5]);
        assert_ne!(a, b);
    }

    #[test]
    fn odd_prefixes_are_cleaned_and_names_stay_short() {
        for prefix in ["", "a", "b/p:x y", "ÄÖÜßé", "very-long-prefix-for-tests"] {
            let n = host_ifname(prefix, "id", 3);
            assert!(n.len() <= IFNAME_MAX && valid_ifname(&n), "{prefix:?} -> {n:?}");
        }
        assert!(host_ifname("b/p", "id", 0).starts_with("bp"));
    }

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vector "fooba" -> MZXW6YTB; only whole 5-bit
        // groups are used, so "foobar" stops before the padded "I".
        assert_eq!(base32(b"fooba").collect::<String>(), "mzxw6ytb");
        assert_eq!(base32(b"foobar").collect::<String>(), "mzxw6ytbo");
    }

    #[test]
    fn ifname_rules() {
        for good in ["eth0", "br-1.100", "a", "123456789012345"] {
            assert!(valid_ifname(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "1234567890123456", "ä"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
    }

    #[test]
    fn mac_parse_print_and_checks() {
        let m: MacAddr = "02:42:0a:59:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:0a:59:00:02");
        assert!(matches!("01:00:5e:00:00:01".parse::<MacAddr>(), Err(MacError::NotUnicast(_))));
        assert!(matches!("00:00:00:00:00:00".parse::<MacAddr>(), Err(MacError::NotUnicast(_))));
        for bad in ["02:42:0a:59:00", "02-42-0a-59-00-02", "2:42:0a:59:00:02", "zz:42:0a:59:00:02"] {
            assert!(matches!(bad.parse::<MacAddr>(), Err(MacError::Syntax(_))), "{bad}");
        }
        let d = MacAddr::derived(&["bridge", "bt-br0"]);
        assert_eq!(d, MacAddr::derived(&["bridge", "bt-br0"]));
        assert_eq!(d.bytes()[0] & 0x03, 0x02, "locally administered unicast");
    }
}
