//! Platforms (`os/arch[/variant]`) and how an index entry is chosen for one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform this binary runs on, in OCI (Go) names.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Self { os: "linux".into(), architecture: architecture.into(), variant: variant.map(str::to_string) }
    }

    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Self { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
                Ok(Self { os: os.to_string(), architecture: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(PlatformError(s.to_string())),
        }
    }

    /// Whether an index entry for `other` can run here. The variant is
    /// compared only when both sides state one, except that arm64's only
    /// variant, v8, is also what an entry without a variant means.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (self.variant.as_deref(), variant) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Picks the best entry: an exact variant match wins over a loose one.
    pub fn choose<'a, T>(&self, entries: &'a [(T, String, String, Option<String>)]) -> Option<&'a T> {
        let exact = entries.iter().find(|(_, os, arch, v)| {
            self.os == *os && self.architecture == *arch && self.variant.as_deref() == v.as_deref()
        });
        exact.or_else(|| entries.iter().find(|(_, os, arch, v)| self.matches(os, arch, v.as_deref()))).map(|(t, ..)| t)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux/amd64").unwrap().variant, None);
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choose_prefers_exact_variant() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        let entries = vec![
            (1, "linux".to_string(), "amd64".to_string(), None),
            (2, "linux".to_string(), "arm".to_string(), Some("v6".to_string())),
            (3, "linux".to_string(), "arm".to_string(), Some("v7".to_string())),
        ];
        assert_eq!(p.choose(&entries), Some(&3));
        let p = Platform::parse("linux/arm64/v8").unwrap();
        let entries = vec![(1, "linux".to_string(), "arm64".to_string(), None)];
        assert_eq!(p.choose(&entries), Some(&1));
        let p = Platform::parse("linux/s390x").unwrap();
        assert_eq!(p.choose(&entries), None);
        assert!(!Platform::parse("linux/arm/v7").unwrap().matches("linux", "arm", Some("v6")));
    }
}
