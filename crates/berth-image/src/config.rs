//! Image-store settings, read from the daemon's TOML config.

use std::collections::BTreeMap;

use serde::Deserialize;

use berth_core::reference::is_loopback_host;

/// `[images]` and `[registries.*]` of `config.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Largest unpacked layer accepted, in bytes (bomb protection).
    pub max_layer_bytes: u64,
    /// Most entries in one layer.
    pub max_layer_entries: u64,
    /// Whether layers may create device nodes (never needed by normal images).
    pub allow_device_nodes: bool,
    /// Blobs downloaded at once per pull.
    pub concurrent_downloads: usize,
    /// Seconds one registry request for a document (manifest, index,
    /// config, token) may take in all, however the bytes trickle in; also
    /// the wait for a blob's first answer.
    pub registry_timeout_secs: u64,
    /// Seconds a whole pull may take, across mirrors.
    pub pull_timeout_secs: u64,
    /// Registries reached over plain HTTP (`host[:port]`); loopback ones always are.
    pub insecure_registries: Vec<String>,
    /// Per-registry settings, keyed by `host[:port]` (`docker.io` for Docker Hub).
    pub registries: BTreeMap<String, RegistrySettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Mirrors tried first, in order, as URLs (`http://127.0.0.1:5000`,
    /// `https://mirror.example.org`); the origin is tried last.
    #[serde(default)]
    pub mirrors: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            max_layer_bytes: 8 << 30,
            max_layer_entries: 1_000_000,
            allow_device_nodes: false,
            concurrent_downloads: 4,
            registry_timeout_secs: 30,
            pull_timeout_secs: 3600,
            insecure_registries: Vec::new(),
            registries: BTreeMap::new(),
        }
    }
}

/// One place a pull may fetch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]` as the registry client addresses it.
    pub registry: String,
    pub plain_http: bool,
    pub mirror: bool,
}

impl ImageConfig {
    /// Checks what serde cannot: mirror URLs and limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrent_downloads == 0 {
            return Err("images.concurrent_downloads must be at least 1".into());
        }
        if self.registry_timeout_secs == 0 || self.pull_timeout_secs == 0 {
            return Err("images.registry_timeout_secs and images.pull_timeout_secs must be at least 1".into());
        }
        for (registry, settings) in &self.registries {
            for m in &settings.mirrors {
                let src = parse_mirror(m).map_err(|why| format!("registries.\"{registry}\".mirrors: {why}"))?;
                if src.plain_http && !self.is_insecure(&src.registry) {
                    return Err(format!(
                        "registries.\"{registry}\".mirrors: {m} is plain HTTP; use https:// or list {} under insecure_registries",
                        src.registry
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn is_insecure(&self, registry: &str) -> bool {
        is_loopback_host(registry) || self.insecure_registries.iter().any(|r| r == registry)
    }

    /// Where to pull `registry`'s images from: its mirrors in order, then itself.
    pub fn sources(&self, registry: &str) -> Vec<Source> {
        let mut out: Vec<Source> = self
            .registries
            .get(registry)
            .map(|s| s.mirrors.iter().filter_map(|m| parse_mirror(m).ok()).collect())
            .unwrap_or_default();
        out.push(Source { registry: registry.to_string(), plain_http: self.is_insecure(registry), mirror: false });
        out
    }
}

/// `http://host:port` or `https://host[:port]` (a bare host means https).
fn parse_mirror(url: &str) -> Result<Source, String> {
    let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else if url.contains("://") {
        return Err(format!("mirror {url:?} must use http:// or https://"));
    } else {
        (false, url)
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(format!("mirror {url:?} must be a registry address like http://127.0.0.1:5000 (no path)"));
    }
    berth_core::ImageRef::parse(&format!("{host}/probe")).map_err(|_| format!("mirror {url:?} has an invalid host"))?;
    Ok(Source { registry: host.to_string(), plain_http, mirror: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_first_then_the_origin() {
        let cfg: ImageConfig = toml::from_str(
            r#"
            insecure_registries = ["reg.internal:5000"]
            [registries."example.org"]
            mirrors = ["http://127.0.0.1:5000", "https://mirror.example.net/"]
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        let s = cfg.sources("example.org");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], Source { registry: "127.0.0.1:5000".into(), plain_http: true, mirror: true });
        assert_eq!(s[1], Source { registry: "mirror.example.net".into(), plain_http: false, mirror: true });
        assert_eq!(s[2], Source { registry: "example.org".into(), plain_http: false, mirror: false });
        assert!(cfg.sources("reg.internal:5000")[0].plain_http);
        assert!(cfg.sources("localhost:1")[0].plain_http);
        assert!(!cfg.sources("docker.io")[0].plain_http);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = toml::from_str::<ImageConfig>("mirrorz = []").unwrap_err();
        assert!(err.to_string().contains("mirrorz"));
        let cfg: ImageConfig = toml::from_str("[registries.\"a.org\"]\nmirrors = [\"ftp://x\"]").unwrap();
        assert!(cfg.validate().unwrap_err().contains("registries.\"a.org\".mirrors"));
        let cfg: ImageConfig = toml::from_str("[registries.\"a.org\"]\nmirrors = [\"http://x/path\"]").unwrap();
        assert!(cfg.validate().is_err());
    }
}
