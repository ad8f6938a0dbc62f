//! Content digests (`algorithm:hex`), as used by OCI descriptors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A verified-shape sha256 content digest, e.g. `sha256:e3b0…b855`.
///
/// Only sha256 is accepted: it is what every registry and image tool writes,
/// and a store keyed by one algorithm cannot hold two names for one blob.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {input:?}: expected 'sha256:' followed by 64 lowercase hex digits")]
    Malformed { input: String },
    #[error("unsupported digest algorithm {algorithm:?} in {input:?}: berth stores sha256 content only")]
    UnsupportedAlgorithm { algorithm: String, input: String },
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::Malformed { input: input.to_string() });
        };
        if algorithm != "sha256" {
            let known = ["sha512", "sha384", "blake3"].contains(&algorithm);
            if known {
                return Err(DigestError::UnsupportedAlgorithm {
                    algorithm: algorithm.to_string(),
                    input: input.to_string(),
                });
            }
            return Err(DigestError::Malformed { input: input.to_string() });
        }
        Self::from_hex(hex).map_err(|_| DigestError::Malformed { input: input.to_string() })
    }

    /// Builds a digest from its 64 hex digits (no algorithm prefix).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(DigestError::Malformed { input: hex.to_string() });
        }
        Ok(Self { hex: hex.to_string() })
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    /// Finishes a running sha256 hasher into a digest.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self { hex: hex::encode(hasher.finalize()) }
    }

    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as image tools print IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

/// Re-exported so effect crates hash with the same implementation.
pub use sha2::Sha256 as Hasher;

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn parse_round_trips() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_malformed_and_unsupported() {
        for bad in ["", "sha256", "sha256:", "sha256:abc", &EMPTY.to_uppercase(), "md5:00", &EMPTY.replace('e', "g")] {
            assert!(Digest::parse(bad).is_err(), "{bad} must be rejected");
        }
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert!(matches!(Digest::parse(&sha512), Err(DigestError::UnsupportedAlgorithm { .. })));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = Digest::parse(EMPTY).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }
}
