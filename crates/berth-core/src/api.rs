//! The JSON values of berth's REST API (`/v1/...`).
//!
//! Requests reject unknown fields, so a client that misspells an option hears
//! about it instead of being silently ignored; responses tolerate them, so
//! a newer daemon can add fields without breaking older clients. Digests and references travel
//! as strings and are validated by the daemon.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The API version prefix every route carries.
pub const API_VERSION: &str = "v1";

/// Every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// One line saying what failed and what to do.
    pub error: String,
    /// A stable machine-readable kind, e.g. `not_found`, `invalid`, `conflict`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    pub root: String,
    pub run_root: String,
}

/// One row of `berth images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageSummary {
    /// The image ID: the digest of its config.
    pub id: String,
    /// The digest of the platform manifest stored for this image.
    pub digest: String,
    /// Tags pointing at this image, fully qualified.
    pub repo_tags: Vec<String>,
    /// `name@digest` forms this image is known by (index digest first when pulled through one).
    pub repo_digests: Vec<String>,
    /// Creation time from the image config, RFC 3339, when the image says.
    pub created: Option<String>,
    /// Bytes of the layers once unpacked.
    pub size: u64,
    /// Bytes of the manifest, config and compressed layers as stored.
    pub compressed_size: u64,
    /// Number of layers.
    pub layer_count: usize,
    /// `os/arch[/variant]`.
    pub platform: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LayerInfo {
    /// Digest of the blob as stored (compressed).
    pub digest: String,
    /// Digest of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
    /// Bytes once unpacked, when the layer has been unpacked.
    pub unpacked_size: Option<u64>,
}

/// The runtime part of an image config that a user cares about.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ImageRunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// Responses may grow fields, so unknown ones are tolerated here (and
/// `flatten` cannot be combined with `deny_unknown_fields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageInspect {
    #[serde(flatten)]
    pub summary: ImageSummary,
    pub media_type: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub config: ImageRunConfig,
    pub layers: Vec<LayerInfo>,
    /// Where the image came from: `pull`, `import` or `load`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    pub reference: String,
    /// `os/arch[/variant]`; defaults to the host's platform.
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The local image to push, e.g. `127.0.0.1:5000/app:1`.
    pub reference: String,
}

/// One line of the newline-delimited JSON stream that `pull` and `push`
/// answer with. The stream ends with exactly one `done` or `error` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The registry (origin or mirror) being used.
    Source { registry: String, mirror: bool },
    /// The manifest resolved: the digest that will be stored and its blobs.
    Resolved { reference: String, digest: String, blobs: Vec<BlobProgress> },
    /// Progress of one blob transfer.
    Blob(BlobProgress),
    /// A non-fatal note (e.g. a mirror that failed and was skipped).
    Warning { message: String },
    /// Success; carries the image as stored.
    Done { image: ImageSummary },
    /// Failure; nothing was changed.
    Error { error: String, kind: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlobProgress {
    pub digest: String,
    pub current: u64,
    pub total: u64,
    /// `waiting`, `downloading`, `uploading`, `exists`, `verified`, `unpacking` or `done`.
    pub state: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Absolute path (on the daemon's host) of an OCI layout directory, an
    /// OCI archive, a `docker save` tar, or a root filesystem directory or tar.
    pub path: String,
    /// Tag to give the image; required for rootfs imports, optional otherwise.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub config_cmd: Option<Vec<String>>,
    #[serde(default)]
    pub config_entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub config_env: Vec<String>,
    #[serde(default)]
    pub config_workdir: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    /// `oci-layout`, `oci-archive`, `docker-archive`, `rootfs-dir` or `rootfs-tar`.
    pub format: String,
    pub images: Vec<ImageSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub reference: String,
    /// Absolute path of the OCI archive to write; it must not exist yet.
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportResponse {
    pub path: String,
    pub digest: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RemoveImageResponse {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PruneResponse {
    pub deleted_images: Vec<String>,
    pub deleted_blobs: usize,
    pub deleted_layers: usize,
    pub reclaimed_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub registry: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    pub registry: String,
}

/// `berth system df`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DiskUsage {
    pub images: Vec<ImageDiskUsage>,
    /// Images counted.
    pub image_count: usize,
    /// Sum over images of their compressed size, as if nothing were shared.
    pub total_compressed: u64,
    /// Sum over images of their unpacked size, as if nothing were shared.
    pub total_unpacked: u64,
    /// Bytes of blobs actually on disk (each stored once).
    pub blobs_on_disk: u64,
    /// Bytes of unpacked layers actually on disk (each unpacked once).
    pub layers_on_disk: u64,
    /// Bytes that sharing saves: totals minus what is on disk.
    pub shared_savings: u64,
    /// Bytes that `berth image prune` would free.
    pub reclaimable: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageDiskUsage {
    pub id: String,
    pub repo_tags: Vec<String>,
    /// Compressed bytes of manifest, config and layer blobs.
    pub compressed: u64,
    /// Bytes of the unpacked layers.
    pub unpacked: u64,
    /// Unpacked bytes in layers that other images also use.
    pub shared: u64,
    /// Unpacked bytes in layers only this image uses.
    pub unique: u64,
    pub layers: usize,
    /// Containers using the image (always 0 until containers exist).
    pub containers: usize,
}

/// `POST /v1/containers`: what `berth create`/`run` ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerCreateRequest {
    pub image: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Networks to join (names), or one of `none`, `host`,
    /// `container:NAME`. Empty: the default network.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Published ports, docker's `-p [HOSTIP:][HOSTPORT:]CTRPORT[/PROTO]`.
    #[serde(default)]
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes on a random host port.
    #[serde(default)]
    pub publish_all: bool,
    /// More names the container answers to in the networks' DNS.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// Replaces the image's Cmd.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Replaces the image's Entrypoint (and then clears its Cmd, as docker does).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`, added to (and overriding) the image's environment.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    /// `HOST:CONTAINER[:ro|rw]` bind mounts.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `CONTAINER[:size=N,mode=M,...]` tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub limits: ResourceLimits,
    #[serde(default)]
    pub security: SecurityOptions,
    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub restart: Option<crate::container::RestartPolicy>,
    /// Remove the container when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Signal for `stop` (default: the image's StopSignal, else SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// Variables of `env` whose values come from Secrets (a pod's
    /// `secretKeyRef` or `secretRef`). `env` keeps such a variable with the
    /// placeholder `<secret NAMESPACE/NAME KEY>` where the value goes, and
    /// the daemon puts the value in only when it starts the container (so
    /// a restart reads the Secret again); the value is never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnvRef>,
    /// `auto`: the container gets a user namespace whose root is an
    /// unprivileged id of a host range the daemon allocates (podman's
    /// `--userns=auto`, Kubernetes' `hostUsers: false`); `host` or absent:
    /// it shares the host's ids (docker's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<String>,
    /// The host range of `userns: auto`, chosen by the daemon at create and
    /// kept with the container; a client may not set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mapping: Option<IdMapping>,
}

/// Container ids `0..size` are host uids `host_uid..host_uid+size` and host
/// gids `host_gid..host_gid+size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    pub host_uid: u32,
    pub host_gid: u32,
    pub size: u32,
}

/// Where the value behind one `<secret NAMESPACE/NAME KEY>` placeholder of
/// an environment variable comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretEnvRef {
    /// The variable.
    pub env: String,
    pub namespace: String,
    pub secret: String,
    pub key: String,
    /// A missing Secret or key leaves the variable out instead of keeping
    /// the container from starting.
    #[serde(default)]
    pub optional: bool,
}

impl SecretEnvRef {
    /// The text standing for the value in `env`.
    pub fn placeholder(&self) -> String {
        format!("<secret {}/{} {}>", self.namespace, self.secret, self.key)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Bytes of memory.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Bytes of memory plus swap; -1 for unlimited swap.
    #[serde(default)]
    pub memory_swap: Option<i64>,
    /// CPUs, e.g. 1.5 (a CFS quota over a 100 ms period).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Relative CPU weight (cgroup v1 shares, 2..262144; default 1024).
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// Most processes at once; -1 for no limit.
    #[serde(default)]
    pub pids_limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityOptions {
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub read_only: bool,
    /// Capabilities to add, e.g. `NET_ADMIN` or `CAP_NET_ADMIN`; `ALL` for all.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Capabilities to drop; `ALL` drops every default one.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `seccomp=unconfined`, `seccomp=PATH`, `no-new-privileges[=true|false]`.
    #[serde(default)]
    pub security_opt: Vec<String>,
}

/// One row of `berth ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: String,
    pub created: String,
    /// `created`, `running`, `exited`, `restarting`.
    pub state: String,
    /// For people: `Up 5 seconds`, `Exited (0) 3 minutes ago`.
    pub status: String,
    pub exit_code: Option<i32>,
    pub restart_count: u32,
    /// The current restart backoff, when one is pending.
    pub backoff_ms: Option<u64>,
}

/// `berth inspect` of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerInspect {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    pub image_digest: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub pid: Option<i32>,
    /// The PID of the container's shim while it runs.
    #[serde(default)]
    pub shim_pid: Option<i32>,
    pub exit_signal: Option<i32>,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub restart_policy: String,
    pub stopped_by_user: bool,
    pub rootfs: String,
    pub log_path: String,
    pub request: ContainerCreateRequest,
    /// The security settings in force, as the OCI spec has them.
    pub security: EffectiveSecurity,
    /// Addresses and published ports.
    #[serde(default)]
    pub network: ContainerNetwork,
}

/// A container's place on the networks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ContainerNetwork {
    /// `bridge` (its own namespace on Berth networks), `none`, `host` or
    /// `container:ID`.
    pub mode: String,
    pub networks: Vec<NetworkAttachment>,
    pub ports: Vec<PublishedPortView>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct NetworkAttachment {
    pub network: String,
    pub ip: String,
    pub gateway: String,
    /// The interface inside the container (`eth0`, `eth1`, …).
    pub interface: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct PublishedPortView {
    /// Empty: every host address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

/// `POST /v1/containers/{id}/rename`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRenameRequest {
    pub name: String,
}

/// `POST /v1/networks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreateRequest {
    pub name: String,
    /// CIDR; picked from the configured pool when absent.
    #[serde(default)]
    pub subnet: Option<String>,
    /// The bridge's address; the subnet's first host when absent.
    #[serde(default)]
    pub gateway: Option<String>,
    /// No traffic in or out of the bridge except from the host.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// A network as `network ls` and `network inspect` show it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct NetworkInspect {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub bridge: String,
    pub internal: bool,
    pub mtu: u32,
    pub created: String,
    /// The DNS server's address (the gateway), port 53.
    pub dns: String,
    pub containers: Vec<NetworkMember>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct NetworkMember {
    pub id: String,
    pub name: String,
    pub ip: String,
}

/// `POST /v1/networks/{name}/connect` and `/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConnectRequest {
    pub container: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// `POST /v1/vips`: a virtual IP and port load-balanced over backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VipCreateRequest {
    pub name: String,
    pub port: u16,
    /// Taken from the service range when absent.
    #[serde(default)]
    pub ip: Option<String>,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// `PUT /v1/vips/{name}/backends`: the whole weighted set, replacing the
/// old one in one atomic change. Weights sum to 100; empty means no backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VipBackendsRequest {
    /// `IP:PORT=WEIGHT`.
    pub backends: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct VipInspect {
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub protocol: String,
    pub backends: Vec<VipBackendView>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct VipBackendView {
    pub ip: String,
    pub port: u16,
    /// 0 for a backend that was removed but still has connections draining.
    pub weight: u8,
    /// From conntrack: established connections, and all not yet closed.
    pub established: u32,
    pub active: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct EffectiveSecurity {
    pub privileged: bool,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// `default`, `unconfined`, or the profile path.
    pub seccomp: String,
    pub read_only_rootfs: bool,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub namespaces: Vec<String>,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitResponse {
    pub exit_code: i32,
    pub error: Option<String>,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub log: String,
}

/// A lifecycle event (`berth events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Order of recording; increases.
    pub seq: i64,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// `container` or `image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// e.g. `create`, `start`, `die`, `oom`, `kill`, `restart`, `destroy`, `pull`, `delete`.
    pub action: String,
    pub id: String,
    pub name: String,
    /// Details such as `exit_code` or `signal`.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One mutating API call (the audit log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub time: String,
    /// The caller's uid and pid, from the socket's peer credentials.
    pub uid: Option<u32>,
    pub pid: Option<i32>,
    pub method: String,
    pub path: String,
    /// The HTTP status answered. A stream (logs, events, exec, pull, push)
    /// answers 200 before it ends: `ok` and `error` tell how it ended.
    pub status: u16,
    /// What was asked, redacted: e.g. `create container image=busybox
    /// privileged=true volumes=[/:/host]`, `exec container=web
    /// cmd=[sh,-c,id]`, `apply objects=[created deployment/default/web]`,
    /// `get secret default/db show_secrets=true`. Never a secret value, a
    /// password or an environment value (names only).
    #[serde(default)]
    pub summary: String,
    /// Whether the call did what was asked (a stream: to its end).
    #[serde(default = "default_true")]
    pub ok: bool,
    /// Why it failed, when it did and the reason can be shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Resource use of a container, from its cgroup. Counters are cumulative;
/// rates come from two samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerStats {
    pub time: String,
    pub cpu_usage_ns: Option<u64>,
    pub online_cpus: u32,
    pub memory_usage: Option<u64>,
    /// `None`: no limit.
    pub memory_limit: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
    pub block_read: Option<u64>,
    pub block_write: Option<u64>,
}

/// `berth top`: the container's processes as `ps` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerTop {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `POST /v1/containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// Standard input for the process, base64-encoded; closed after it.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// `POST /v1/containers/{id}/exec/tty`: a command on a pseudo-terminal.
/// The connection is then upgraded (`Upgrade: berth-exec`) and carries
/// [`crate::frames::Frame`]s both ways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecTtyRequest {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// The terminal's initial size.
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
}

/// One line of an exec's answer stream; it ends with `exit` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecEvent {
    /// Output; `data` is base64 so binary output arrives intact.
    Output {
        stream: String,
        data: String,
    },
    Exit {
        exit_code: i32,
    },
    Error {
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reject_unknown_fields() {
        let err = serde_json::from_str::<PullRequest>(r#"{"reference":"a","plaform":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("plaform"));
        assert!(serde_json::from_str::<ImportRequest>(r#"{"path":"/x","tags":"y"}"#).is_err());
    }

    #[test]
    fn progress_events_are_tagged() {
        let e = ProgressEvent::Error { error: "boom".into(), kind: "registry".into() };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"event":"error","error":"boom","kind":"registry"}"#);
        let b =
            ProgressEvent::Blob(BlobProgress { digest: "d".into(), current: 1, total: 2, state: "downloading".into() });
        let s = serde_json::to_string(&b).unwrap();
        assert!(s.starts_with(r#"{"event":"blob","digest":"d""#), "{s}");
        assert_eq!(serde_json::from_str::<ProgressEvent>(&s).unwrap(), b);
    }
}

// ---- Declared state (`berth apply`, `get`, `describe`, `delete`, `scale`) ----
//
// Declared objects travel in their Kubernetes API form (`apiVersion`,
// `kind`, `metadata`, `spec`, `status`) as plain JSON, so what `get -o json`
// prints is what the daemon sent, and scripts written against kubectl read
// it unchanged. Lists are a `v1 List` with `items`.

/// The most manifest text one apply or delete carries, all files together.
/// The CLI refuses more before sending; the daemon refuses a larger
/// request before decoding it (its body may be up to twice this, for JSON
/// escaping). Kubernetes' API server takes 3 MiB per object; this leaves
/// room for many objects per apply while bounding what one request costs.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// One manifest file as the user gave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Where it came from (a path, or `-` for stdin); errors name it.
    pub name: String,
    /// Multi-document YAML or JSON.
    pub text: String,
}

/// `POST /v1/apply`: every file is checked before anything changes; then
/// each object is created or updated. Idempotent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub files: Vec<ManifestFile>,
    /// Check and report what would change without changing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /v1/delete`: removes the objects the files name, and everything
/// they own (a Deployment's pods, a Service's VIP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    pub files: Vec<ManifestFile>,
    /// Objects that do not exist are reported as `not found` instead of
    /// failing the request.
    #[serde(default)]
    pub ignore_not_found: bool,
}

/// What apply or delete did to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObjectChange {
    /// `Deployment`, `Service`, `ConfigMap`, `Secret` or `Pod`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub action: ChangeAction,
}

/// What apply or delete did to an object, spelled as kubectl prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Created,
    Configured,
    Unchanged,
    Deleted,
    /// `delete --ignore-not-found` of an object that was not there.
    #[serde(rename = "not found")]
    NotFound,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Created => "created",
            ChangeAction::Configured => "configured",
            ChangeAction::Unchanged => "unchanged",
            ChangeAction::Deleted => "deleted",
            ChangeAction::NotFound => "not found",
        }
    }
}

impl std::fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResponse {
    pub changes: Vec<ObjectChange>,
    /// Fields accepted and kept that change nothing on one host
    /// (`app.yaml:12: deployment/web: spec.template.spec.nodeSelector has
    /// no effect on one host (...); kept as written`), as kubectl prints
    /// an API server's warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `POST /v1/objects/deployments/{namespace}/{name}/scale`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: u32,
}

// ---- Rollouts (`berth rollout ...`) ----

/// One revision of a Deployment's pod template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevisionView {
    /// Numbered from 1; a template rolled back to gets the next number, as
    /// in Kubernetes.
    pub revision: u64,
    /// The template hash (the pods' `pod-template-hash` label).
    pub hash: String,
    /// The `kubernetes.io/change-cause` annotation at the time, if any.
    #[serde(default)]
    pub change_cause: Option<String>,
    /// RFC 3339.
    pub created: String,
    /// The containers' images, in order.
    pub images: Vec<String>,
    /// The revision the Deployment runs now.
    pub current: bool,
    /// The pod template as written (`spec.template`).
    pub template: serde_json::Value,
}

/// `GET /v1/objects/deployments/{namespace}/{name}/revisions`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevisionList {
    pub revisions: Vec<RevisionView>,
}

/// `POST /v1/objects/{deployments|rollouts}/{namespace}/{name}/rollout`:
/// `{"action": "undo", "to_revision": 2}`. Each action carries only the
/// fields it takes, so a combination such as `pause` with `to_revision`
/// is refused when decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum RolloutRequest {
    Pause {},
    Resume {},
    /// Replaces every pod (kubectl's `restartedAt` annotation).
    Restart {},
    Undo {
        /// The revision to go back to (default: the previous one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_revision: Option<u64>,
    },
    /// Argo Rollouts only.
    Promote {
        /// Skip every remaining step (and analysis).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        full: bool,
    },
    /// Argo Rollouts only.
    Abort {},
}

impl RolloutRequest {
    /// The action's name, as the request spells it.
    pub fn action(&self) -> &'static str {
        match self {
            RolloutRequest::Pause {} => "pause",
            RolloutRequest::Resume {} => "resume",
            RolloutRequest::Restart {} => "restart",
            RolloutRequest::Undo { .. } => "undo",
            RolloutRequest::Promote { .. } => "promote",
            RolloutRequest::Abort {} => "abort",
        }
    }
}
