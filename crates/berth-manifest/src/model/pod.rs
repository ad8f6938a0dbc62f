//! A pod template as berth runs it: containers sharing one network
//! namespace, init containers run in order to completion first, volumes,
//! and every Kubernetes default already applied.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_core::ImageRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::selector::Labels;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodTemplate {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    pub volumes: Vec<Volume>,
    /// Time between SIGTERM and SIGKILL.
    pub termination_grace_period: Duration,
    pub hostname: Option<String>,
    /// Kubernetes' `hostUsers`: `false` runs the pod's containers in a user
    /// namespace (one host id range for the pod). Left out of the
    /// normalised form when true, so templates that do not say keep their
    /// hashes.
    #[serde(default = "host_users_default", skip_serializing_if = "is_true")]
    pub host_users: bool,
}

fn host_users_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: ImageRef,
    pub pull_policy: PullPolicy,
    /// Replaces the image's entrypoint when not empty.
    pub command: Vec<String>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFrom>,
    pub ports: Vec<ContainerPort>,
    pub resources: Resources,
    pub volume_mounts: Vec<VolumeMount>,
    pub startup_probe: Option<ProbeSpec>,
    pub liveness_probe: Option<ProbeSpec>,
    pub readiness_probe: Option<ProbeSpec>,
    pub pre_stop: Option<Handler>,
    pub security: SecurityContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub source: EnvSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvSource {
    Value(String),
    ConfigMapKey(KeyRef),
    SecretKey(KeyRef),
    Field(PodField),
}

/// One key of a ConfigMap or Secret in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub name: String,
    pub key: String,
    /// When true a missing object or key leaves the variable unset instead
    /// of keeping the container from starting.
    pub optional: bool,
}

/// The downward-API fields berth can give a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodField {
    /// `metadata.name`
    Name,
    /// `metadata.namespace`
    Namespace,
    /// `status.podIP`
    PodIp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFrom {
    pub source: ObjectRef,
    /// Prepended to every key.
    pub prefix: String,
}

/// A whole ConfigMap or Secret in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectRef {
    ConfigMap { name: String, optional: bool },
    Secret { name: String, optional: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Requests and limits, CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_request_millis: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

/// A probe with Kubernetes' defaults applied (period 10 s, timeout 1 s,
/// success 1, failure 3) and its port resolved to a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub handler: ProbeHandler,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeHandler {
    Exec { command: Vec<String> },
    HttpGet(HttpGet),
    TcpSocket { port: u16 },
    Grpc { port: u16, service: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpGet {
    pub path: String,
    pub port: u16,
    pub scheme: Scheme,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    Http,
    Https,
}

/// What `lifecycle.preStop` does before the container gets SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handler {
    Exec { command: Vec<String> },
    HttpGet(HttpGet),
    Sleep(Duration),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContext {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: bool,
    pub read_only_root_filesystem: bool,
    pub privileged: bool,
    /// Unset means the runtime's default.
    pub allow_privilege_escalation: Option<bool>,
    /// Capability names with the `CAP_` prefix, or `ALL`.
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
}

/// Why kubelet would not start a container under `runAsNonRoot`, in its
/// own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonRootError {
    #[error("container's runAsUser breaks non-root policy")]
    RunAsUserRoot,
    #[error("container has runAsNonRoot and image will run as root")]
    ImageRunsAsRoot,
    #[error("container has runAsNonRoot and image has non-numeric user ({0}), cannot verify user is non-root")]
    NonNumericUser(String),
}

impl SecurityContext {
    /// kubelet's `verifyRunAsNonRoot` on the image's `User` (`name`,
    /// `uid`, `uid:gid` or empty): without `runAsNonRoot` anything goes; a
    /// `runAsUser` decides alone (0 refused); otherwise the image's user
    /// must be a numeric uid other than 0. An empty user runs as root, and a
    /// user name is refused because it cannot be verified without trusting
    /// the image's `/etc/passwd` (where `daemon` may well be uid 0). Stricter
    /// than kubelet in one corner: `:gid` (no user) counts as root, as it
    /// runs, where kubelet lets it through.
    pub fn verify_run_as_non_root(&self, image_user: &str) -> Result<(), NonRootError> {
        if !self.run_as_non_root {
            return Ok(());
        }
        if let Some(uid) = self.run_as_user {
            return if uid == 0 { Err(NonRootError::RunAsUserRoot) } else { Ok(()) };
        }
        let user = image_user.split(':').next().unwrap_or_default();
        if user.is_empty() {
            return Err(NonRootError::ImageRunsAsRoot);
        }
        // As containerd's getUserFromImage: numeric means a uid (Go's
        // ParseInt, sign allowed), anything else a name.
        match user.parse::<i64>() {
            Ok(0) => Err(NonRootError::ImageRunsAsRoot),
            Ok(_) => Ok(()),
            Err(_) => Err(NonRootError::NonNumericUser(user.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSource {
    ConfigMap(ProjectedKeys),
    Secret(ProjectedKeys),
    EmptyDir { medium: Medium, size_limit_bytes: Option<u64> },
}

/// The keys of a ConfigMap or Secret written as files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectedKeys {
    pub name: String,
    /// Empty means every key, each as a file named after it.
    pub items: Vec<KeyToPath>,
    pub default_mode: u32,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Medium {
    Disk,
    Memory,
}

/// A short, stable digest of a pod template, like Kubernetes'
/// `pod-template-hash` label: ten characters from a vowel-free alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TemplateHash(String);

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl TemplateHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TemplateHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PodTemplate {
    /// Hashes the canonical JSON of the normalised template: field order,
    /// whitespace, quoting and spelled-out defaults in the manifest do not
    /// change it; any change that changes what runs does. A change of the
    /// normalised form itself (a new berth field) changes every hash, as a
    /// Kubernetes upgrade can.
    pub fn hash(&self) -> TemplateHash {
        // Serialising plain structs, BTreeMaps and Vecs cannot fail.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        let mut n = u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]));
        let base = SAFE_ALPHABET.len() as u128;
        let text = (0..10)
            .map(|_| {
                let c = SAFE_ALPHABET[(n % base) as usize] as char;
                n /= base;
                c
            })
            .collect();
        TemplateHash(text)
    }

    /// Init containers then containers.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(&self.containers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn non_root(run_as_user: Option<u32>) -> SecurityContext {
        SecurityContext { run_as_non_root: true, run_as_user, ..SecurityContext::default() }
    }

    #[test]
    fn run_as_non_root_follows_kubelet() {
        let check = |s: &SecurityContext, user: &str| s.verify_run_as_non_root(user);
        // Off: anything goes.
        assert_eq!(check(&SecurityContext::default(), ""), Ok(()));
        assert_eq!(check(&SecurityContext::default(), "root"), Ok(()));
        // runAsUser decides alone.
        assert_eq!(check(&non_root(Some(0)), "1000"), Err(NonRootError::RunAsUserRoot));
        assert_eq!(check(&non_root(Some(1000)), "root"), Ok(()));
        assert_eq!(check(&non_root(Some(1000)), ""), Ok(()));
        // The image's user otherwise.
        let s = non_root(None);
        for root in ["", "0", "0:0", "00", "+0", "-0", ":1000"] {
            assert_eq!(check(&s, root), Err(NonRootError::ImageRunsAsRoot), "{root:?}");
        }
        for ok in ["1000", "1000:0", "65534:65534", "0123", "+5"] {
            assert_eq!(check(&s, ok), Ok(()), "{ok:?}");
        }
        for name in ["root", "daemon", "app:app", "nobody", "1000a", "99999999999999999999"] {
            let e = check(&s, name).unwrap_err();
            assert!(matches!(e, NonRootError::NonNumericUser(_)), "{name:?}: {e:?}");
        }
        assert_eq!(
            check(&s, "daemon:0").unwrap_err().to_string(),
            "container has runAsNonRoot and image has non-numeric user (daemon), cannot verify user is non-root"
        );
    }
}
