//! The daemon's configuration file (`/etc/berth/config.toml` by default,
//! optional). Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::Path;

use berth_image::config::RegistrySettings;
use berth_image::ImageConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// `[registries."host"]` tables: mirrors per registry.
    pub registries: BTreeMap<String, RegistrySettings>,
    pub images: ImageLimits,
    pub containers: ContainerConfig,
    pub network: NetworkConfig,
    pub services: ServicesConfig,
    pub log: LogConfig,
    /// Also serve `/metrics` (only that) on this TCP address, e.g.
    /// `127.0.0.1:9323`. It has no authentication, so it must be a
    /// loopback address unless `metrics_allow_remote` says otherwise.
    pub metrics_address: Option<String>,
    /// Allows a `metrics_address` that is not loopback: anyone who reaches
    /// it reads the metrics (container names, images, counts), without
    /// authentication.
    pub metrics_allow_remote: bool,
    pub audit: AuditConfig,
}

/// `[audit]`: how much of the audit log is kept. The oldest entries go
/// first, at start and every hour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries kept at most (0: no limit by count).
    pub max_entries: u64,
    /// Entries older than this are removed (0: no limit by age).
    pub max_age_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { max_entries: 100_000, max_age_days: 90 }
    }
}

/// Checks `metrics_address`: an address, and loopback unless remote
/// access was asked for explicitly.
fn check_metrics_address(address: &str, allow_remote: bool) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr =
        address.parse().map_err(|_| format!("metrics_address {address:?} is not an address like 127.0.0.1:9323"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "metrics_address {address:?} is not a loopback address, and /metrics has no authentication: \
             use 127.0.0.1:PORT or [::1]:PORT (and a proxy with authentication in front), \
             or set metrics_allow_remote = true to expose the metrics to anyone who can reach that address"
        ));
    }
    Ok(addr)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Names Berth gives its bridges, veths, network namespaces and its
    /// nftables table start with this (1-6 lowercase letters or digits),
    /// so two daemons on one host never touch each other's.
    pub prefix: String,
    /// The network containers join when `--network` is not given; created
    /// on first use.
    pub default_network: String,
    pub default_subnet: String,
    /// Subnets for new networks without `--subnet` are cut from this pool.
    pub subnet_pool: String,
    /// The prefix length of those subnets.
    pub subnet_prefix: u8,
    /// Service VIPs are taken from this range.
    pub service_cidr: String,
    /// Where network namespace files live (`ip netns` looks in /run/netns).
    pub netns_dir: String,
    pub mtu: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            prefix: "berth".into(),
            default_network: "berth".into(),
            default_subnet: "10.88.0.0/16".into(),
            subnet_pool: "10.89.0.0/16".into(),
            subnet_prefix: 24,
            service_cidr: "10.96.0.0/16".into(),
            netns_dir: "/run/netns".into(),
            mtu: 1500,
        }
    }
}

impl NetworkConfig {
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.prefix;
        if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(format!("network.prefix {p:?} must be 1-6 lowercase letters or digits"));
        }
        for (key, value) in [
            ("default_subnet", &self.default_subnet),
            ("subnet_pool", &self.subnet_pool),
            ("service_cidr", &self.service_cidr),
        ] {
            berth_core::net::Ipv4Cidr::parse(value).map_err(|e| format!("network.{key}: {e}"))?;
        }
        if !(8..=30).contains(&self.subnet_prefix) {
            return Err(format!("network.subnet_prefix {} must be between 8 and 30", self.subnet_prefix));
        }
        if !(576..=65535).contains(&self.mtu) {
            return Err(format!("network.mtu {} must be between 576 and 65535", self.mtu));
        }
        Ok(())
    }
}

/// `[services]`: declared services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// First restart back-off of a crashing pod container, in seconds;
    /// it doubles on every crash up to the cap.
    pub backoff_initial_seconds: u64,
    pub backoff_max_seconds: u64,
    /// A container that ran this long cleanly starts over at the first
    /// back-off.
    pub backoff_reset_seconds: u64,
    /// How long a leaving pod's open connections may take to close before
    /// it is stopped anyway.
    pub drain_timeout_seconds: u64,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            backoff_initial_seconds: 10,
            backoff_max_seconds: 300,
            backoff_reset_seconds: 600,
            drain_timeout_seconds: 30,
        }
    }
}

impl NetworkConfig {
    /// The checked settings the network service runs with.
    pub fn settings(&self) -> Result<crate::networks::NetworkSettings, String> {
        use berth_core::net::{Ipv4Cidr, SubnetPool};
        let cidr = |field: &str, v: &str| Ipv4Cidr::parse(v).map_err(|e| format!("network.{field}: {e}"));
        Ok(crate::networks::NetworkSettings {
            prefix: self.prefix.clone(),
            default_network: self.default_network.clone(),
            default_subnet: cidr("default_subnet", &self.default_subnet)?,
            subnet_pool: SubnetPool::try_new(cidr("subnet_pool", &self.subnet_pool)?, self.subnet_prefix)
                .map_err(|e| format!("network.subnet_pool: {e}"))?,
            service_cidr: cidr("service_cidr", &self.service_cidr)?,
            netns_dir: std::path::PathBuf::from(&self.netns_dir),
            mtu: self.mtu,
        })
    }
}

impl ServicesConfig {
    /// The checked settings declared services run with.
    pub fn settings(&self) -> Result<crate::declared::ServiceSettings, String> {
        let secs = std::time::Duration::from_secs;
        let backoff = berth_control::CrashBackoff::try_new(
            secs(self.backoff_initial_seconds),
            secs(self.backoff_max_seconds),
            secs(self.backoff_reset_seconds),
        )
        .map_err(|e| format!("[services]: {e}"))?;
        Ok(crate::declared::ServiceSettings { backoff, drain_timeout: secs(self.drain_timeout_seconds) })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// The OCI runtime binary (runc; crun or youki where the host allows).
    pub runtime: String,
    /// cgroup parent for containers (`/sys/fs/cgroup/[CONTROLLER/]PARENT/ID`).
    pub cgroup_parent: String,
    /// Rotate a container's log past this many bytes.
    pub log_max_size: u64,
    /// Log files kept per container, the current one included.
    pub log_max_files: u32,
    /// Longest restart backoff for standalone containers, in seconds.
    pub restart_backoff_max_seconds: u64,
    /// Most processes at once in a container (and a pod's container) that
    /// does not say (`--pids-limit`), so a fork bomb stays inside it; -1
    /// for no default limit.
    pub default_pids_limit: i64,
    /// Host ids for `--userns=auto` containers, `START:COUNT` (uids and
    /// gids alike; COUNT a multiple of 65536, each container takes 65536).
    /// Unset: the `berth` user's entries in /etc/subuid and /etc/subgid,
    /// else 1073741824:1073741824.
    pub userns_range: Option<String>,
}

impl ContainerConfig {
    /// The checked settings the container service runs with.
    pub fn settings(&self) -> Result<crate::containers::ContainerSettings, String> {
        Ok(crate::containers::ContainerSettings {
            runtime: which(&self.runtime),
            cgroup_parent: self.cgroup_parent.clone(),
            log_max_size: self.log_max_size,
            log_max_files: self.log_max_files,
            backoff_max: std::time::Duration::from_secs(self.restart_backoff_max_seconds),
            default_pids_limit: self.default_pids_limit()?,
            userns_pool: self.userns_pool()?,
        })
    }

    /// The pids limit for a container that sets none; `None`: unlimited.
    pub fn default_pids_limit(&self) -> Result<Option<i64>, String> {
        match self.default_pids_limit {
            -1 => Ok(None),
            n if n > 0 => Ok(Some(n)),
            n => Err(format!(
                "containers.default_pids_limit is {n}; give a positive number of processes (e.g. 4096), or -1 for no limit"
            )),
        }
    }
}

impl ContainerConfig {
    /// The id pool for user-namespaced containers (see `userns_range`).
    pub fn userns_pool(&self) -> Result<crate::containers::userns::UsernsPool, String> {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        crate::containers::userns::resolve_pool(
            self.userns_range.as_deref(),
            read("/etc/subuid").as_deref(),
            read("/etc/subgid").as_deref(),
        )
    }
}

/// `name` found on `PATH` (as is when absolute or not found).
fn which(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|c| c.is_file()))
        .unwrap_or_else(|| p.to_path_buf())
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            runtime: "runc".into(),
            cgroup_parent: "berth".into(),
            log_max_size: 10 << 20,
            log_max_files: 3,
            restart_backoff_max_seconds: 60,
            default_pids_limit: 4096,
            userns_range: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageLimits {
    pub max_layer_bytes: u64,
    pub max_layer_entries: u64,
    pub allow_device_nodes: bool,
    pub concurrent_downloads: usize,
    pub registry_timeout_secs: u64,
    pub pull_timeout_secs: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        let d = ImageConfig::default();
        Self {
            max_layer_bytes: d.max_layer_bytes,
            max_layer_entries: d.max_layer_entries,
            allow_device_nodes: d.allow_device_nodes,
            concurrent_downloads: d.concurrent_downloads,
            registry_timeout_secs: d.registry_timeout_secs,
            pull_timeout_secs: d.pull_timeout_secs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json` (JSON lines).
    pub format: String,
    /// A tracing filter, e.g. `info` or `berth_image=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config {path}: {detail}")]
    Invalid { path: String, detail: String },
}

impl DaemonConfig {
    /// Loads `path`; a missing file means the embedded defaults unless
    /// `required` (the user named the file explicitly).
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        Self::parse(&text).map_err(|detail| ConfigError::Invalid { path: path.display().to_string(), detail })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Self =
            toml::from_str(text).map_err(|e| e.to_string().lines().collect::<Vec<_>>().join(" ").trim().to_string())?;
        if !matches!(cfg.log.format.as_str(), "text" | "json") {
            return Err(format!("log.format is {:?}; use \"text\" or \"json\"", cfg.log.format));
        }
        cfg.image_config().validate()?;
        cfg.network.validate()?;
        cfg.services.settings()?;
        cfg.containers.default_pids_limit()?;
        if let Some(range) = &cfg.containers.userns_range {
            crate::containers::userns::parse_range(range)?;
        }
        cfg.metrics_socket_address()?;
        Ok(cfg)
    }

    /// The TCP address for `/metrics`, checked (see [`DaemonConfig::metrics_allow_remote`]).
    pub fn metrics_socket_address(&self) -> Result<Option<std::net::SocketAddr>, String> {
        self.metrics_address.as_deref().map(|a| check_metrics_address(a, self.metrics_allow_remote)).transpose()
    }

    pub fn image_config(&self) -> ImageConfig {
        ImageConfig {
            max_layer_bytes: self.images.max_layer_bytes,
            max_layer_entries: self.images.max_layer_entries,
            allow_device_nodes: self.images.allow_device_nodes,
            concurrent_downloads: self.images.concurrent_downloads,
            registry_timeout_secs: self.images.registry_timeout_secs,
            pull_timeout_secs: self.images.pull_timeout_secs,
            insecure_registries: self.insecure_registries.clone(),
            registries: self.registries.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let cfg = DaemonConfig::parse(
            r#"
            insecure_registries = ["registry.lan:5000"]
            [registries."example.org"]
            mirrors = ["http://127.0.0.1:5000"]
            [images]
            max_layer_bytes = 1048576
            [log]
            format = "json"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.image_config().sources("example.org").len(), 2);
        assert_eq!(cfg.images.max_layer_bytes, 1 << 20);
    }

    #[test]
    fn errors_name_the_key() {
        let e = DaemonConfig::parse("[images]\nmax_layer_byte = 1").unwrap_err();
        assert!(e.contains("max_layer_byte"), "{e}");
        let e = DaemonConfig::parse("[log]\nformat = \"xml\"").unwrap_err();
        assert!(e.contains("log.format"), "{e}");
        assert!(DaemonConfig::parse("").is_ok());
    }

    #[test]
    fn metrics_address_must_be_loopback_unless_allowed() {
        for ok in ["127.0.0.1:9323", "[::1]:9323", "127.0.0.2:1"] {
            let cfg = DaemonConfig::parse(&format!("metrics_address = \"{ok}\"")).unwrap();
            assert_eq!(cfg.metrics_socket_address().unwrap(), Some(ok.parse().unwrap()));
        }
        for remote in ["0.0.0.0:9323", "[::]:9323", "192.168.1.4:9323"] {
            let e = DaemonConfig::parse(&format!("metrics_address = \"{remote}\"")).unwrap_err();
            assert!(e.contains("metrics_address") && e.contains("metrics_allow_remote = true"), "{e}");
            let cfg =
                DaemonConfig::parse(&format!("metrics_address = \"{remote}\"\nmetrics_allow_remote = true")).unwrap();
            assert!(cfg.metrics_socket_address().unwrap().is_some());
        }
        let e = DaemonConfig::parse("metrics_address = \"localhost:9323\"").unwrap_err();
        assert!(e.contains("not an address like 127.0.0.1:9323"), "{e}");
        assert_eq!(DaemonConfig::parse("").unwrap().metrics_socket_address().unwrap(), None);
    }

    #[test]
    fn audit_retention_defaults_and_overrides() {
        let d = DaemonConfig::parse("").unwrap().audit;
        assert_eq!((d.max_entries, d.max_age_days), (100_000, 90));
        let a = DaemonConfig::parse("[audit]\nmax_entries = 10\nmax_age_days = 0").unwrap().audit;
        assert_eq!((a.max_entries, a.max_age_days), (10, 0));
        assert!(DaemonConfig::parse("[audit]\nmax_rows = 1").unwrap_err().contains("max_rows"));
    }

    #[test]
    fn containers_get_a_pids_limit_by_default() {
        assert_eq!(DaemonConfig::parse("").unwrap().containers.default_pids_limit(), Ok(Some(4096)));
        let c = DaemonConfig::parse("[containers]\ndefault_pids_limit = 100").unwrap();
        assert_eq!(c.containers.default_pids_limit(), Ok(Some(100)));
        let none = DaemonConfig::parse("[containers]\ndefault_pids_limit = -1").unwrap();
        assert_eq!(none.containers.default_pids_limit(), Ok(None));
        for bad in ["0", "-2"] {
            let e = DaemonConfig::parse(&format!("[containers]\ndefault_pids_limit = {bad}")).unwrap_err();
            assert!(e.contains("containers.default_pids_limit") && e.contains("-1 for no limit"), "{e}");
        }
    }

    #[test]
    fn userns_range_is_checked_at_load() {
        let c = DaemonConfig::parse("[containers]\nuserns_range = \"200000:131072\"").unwrap();
        assert_eq!(c.containers.userns_pool().unwrap().blocks, 2);
        let e = DaemonConfig::parse("[containers]\nuserns_range = \"200000:1000\"").unwrap_err();
        assert!(e.contains("containers.userns_range") && e.contains("65536"), "{e}");
    }

    #[test]
    fn missing_file_is_defaults_unless_required() {
        let p = Path::new("/nonexistent/berth/config.toml");
        assert!(DaemonConfig::load(p, false).is_ok());
        assert!(DaemonConfig::load(p, true).is_err());
    }
}

#[cfg(test)]
mod readme_tests {
    /// The README's configuration example must stay valid.
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("its end");
        let cfg = super::DaemonConfig::parse(&readme[start..end]).unwrap();
        assert_eq!(cfg.metrics_address.as_deref(), Some("127.0.0.1:9323"));
        assert_eq!(cfg.containers.runtime, "runc");
    }
}
