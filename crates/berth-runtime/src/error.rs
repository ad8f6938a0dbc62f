//! The one error type of spec generation: each variant names the field and
//! the value that were wrong and says what to give instead.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container id {id:?} is not 64 lowercase hex digits; generate ids with the daemon's id generator")]
    InvalidId { id: String },

    #[error("rootfs {path:?} is not an absolute path; give the mounted overlay root as an absolute path")]
    InvalidRootfs { path: PathBuf },

    #[error("userns {value:?}: {reason}")]
    InvalidUserns { value: String, reason: &'static str },

    #[error("the container's {what} {id} is outside its user namespace, which maps ids 0 to {last}; give a user and groups below {size}, or --userns=host")]
    UnmappedId { what: &'static str, id: u32, last: u32, size: u32 },

    #[error("no command: the image has no Cmd/Entrypoint; give one")]
    NoCommand,

    #[error("{field} contains a NUL byte; remove it")]
    NulByte { field: String },

    #[error("env entry {entry:?} is not KEY=VALUE with a non-empty KEY; give KEY=VALUE")]
    InvalidEnv { entry: String },

    #[error("workdir {workdir:?} is not an absolute path; give a path starting with /")]
    RelativeWorkdir { workdir: String },

    #[error("hostname {hostname:?} is invalid: {reason}; give 1-63 letters, digits, '-' or '.'")]
    InvalidHostname { hostname: String, reason: &'static str },

    #[error("user {user:?} is invalid: {reason}; give user, uid, user:group or uid:gid")]
    InvalidUser { user: String, reason: String },

    #[error("user {name:?} is not in the image's /etc/passwd; give a numeric uid or a user the image defines")]
    UnknownUser { name: String },

    #[error("group {name:?} is not in the image's /etc/group; give a numeric gid or a group the image defines")]
    UnknownGroup { name: String },

    #[error("{field}: unknown capability {name:?}; give a name like NET_ADMIN or CAP_NET_ADMIN, or ALL")]
    UnknownCapability { field: &'static str, name: String },

    #[error(
        "cap_add: {name} cannot be granted on this host (it is not in the daemon's capability bounding set); \
         drop it from cap_add or run the daemon with it"
    )]
    CapabilityUnavailable { name: String },

    #[error(
        "security_opt {opt:?} is not supported; give seccomp=unconfined, seccomp=/ABSOLUTE/PATH or \
         no-new-privileges[=true|false]"
    )]
    InvalidSecurityOpt { opt: String },

    #[error("volume {spec:?} is invalid: {reason}; give HOST:CONTAINER[:ro|rw] with absolute paths")]
    InvalidVolume { spec: String, reason: String },

    #[error("tmpfs {spec:?} is invalid: {reason}; give /PATH[:size=64m,mode=1777,...]")]
    InvalidTmpfs { spec: String, reason: String },

    #[error("two mounts target {destination:?}; give each container path once")]
    DuplicateMount { destination: String },

    #[error("resolv.conf path {path:?} is not absolute; give an absolute host path")]
    InvalidResolvConf { path: PathBuf },

    #[error("{field} = {value} is invalid: {reason}")]
    InvalidLimit { field: &'static str, value: String, reason: &'static str },

    #[error("label {key:?} is invalid: {reason}")]
    InvalidLabel { key: String, reason: &'static str },

    #[error("cannot read seccomp profile {path:?}: {source}; check the path given in seccomp=PATH")]
    SeccompRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("seccomp profile {source_name} is invalid: {reason}; give a docker/containers seccomp.json")]
    SeccompProfile { source_name: String, reason: String },

    #[error("architecture {arch:?} is not supported for seccomp; give one of x86_64, aarch64, arm, x86, s390x, ppc64le, riscv64, loongarch64")]
    UnsupportedArch { arch: String },

    #[error("building the OCI spec failed: {reason}; this is a bug in berth-runtime")]
    Internal { reason: String },
}

impl From<oci_spec::OciSpecError> for SpecError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        SpecError::Internal { reason: e.to_string() }
    }
}
