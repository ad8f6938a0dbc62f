//! Deterministic, safe chain names for VIPs and their endpoints.
//!
//! A name is `vip-<readable>-<hash>` where `<readable>` is the VIP name with
//! every character outside `[A-Za-z0-9_.-]` replaced by `_` and cut to 32
//! characters, and `<hash>` is 8 hex digits of SHA-256 over the exact input,
//! so two names that sanitise alike still get different chains. Names stay
//! under 80 bytes (the kernel allows 255 since Linux 4.14) and are valid nft
//! identifiers, so `nft list chain ip berth vip-web-1a2b3c4d` works as typed.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

const READABLE_MAX: usize = 32;

fn readable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
        .take(READABLE_MAX)
        .collect()
}

fn hash8(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..4])
}

/// The chain that picks a backend for the VIP called `vip`.
pub fn vip_chain(vip: &str) -> String {
    format!("vip-{}-{}", readable(vip), hash8(&[vip]))
}

/// The chain that DNATs to one backend of the VIP called `vip`.
pub fn endpoint_chain(vip: &str, addr: Ipv4Addr, port: u16) -> String {
    let id = hash8(&[vip, &addr.to_string(), &port.to_string()]);
    format!("ep-{}-{id}-{addr}-{port}", readable(vip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_stable_and_distinct() {
        let a = vip_chain("web");
        assert!(a.starts_with("vip-web-") && a.len() == "vip-web-".len() + 8, "{a}");
        assert_eq!(a, vip_chain("web"));
        assert_ne!(vip_chain("a/b"), vip_chain("a_b"));
        assert!(vip_chain("a/b").starts_with("vip-a_b-"));
        let e = endpoint_chain("web", Ipv4Addr::new(10, 0, 0, 5), 8080);
        assert!(e.starts_with("ep-web-") && e.ends_with("-10.0.0.5-8080"), "{e}");
        assert_ne!(e, endpoint_chain("web", Ipv4Addr::new(10, 0, 0, 5), 8081));
    }

    #[test]
    fn long_and_odd_names_are_bounded_and_safe() {
        let long = "x".repeat(300) + "\"; flush ruleset";
        for n in [vip_chain(&long), endpoint_chain(&long, Ipv4Addr::new(255, 255, 255, 255), 65535)] {
            assert!(n.len() < 80, "{n}");
            assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{n}");
        }
    }
}
