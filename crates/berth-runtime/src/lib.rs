//! OCI runtime-spec generation with hardened defaults.
//!
//! Turns an image's run config plus a user's `ContainerCreateRequest` into
//! the `config.json` an OCI runtime (runc, crun, youki) executes: command,
//! environment, user, mounts, namespaces, capabilities, seccomp, masked
//! paths, device rules and cgroup limits.
//!
//! Design: pure functions from values to values. [`build_spec`] validates
//! every user-supplied field and fails with a [`SpecError`] that names the
//! field and says what to give; the pieces (capabilities, user resolution,
//! mounts, limits, seccomp) are separate modules with their own tests. Files
//! the spec depends on (`/etc/passwd`, seccomp profiles) are passed in as
//! contents or through a `read_file` function, so everything here runs
//! without root. [`to_canonical_json`] writes the spec byte-for-byte
//! reproducibly (golden tests, `inspect`).
//!
//! Defaults are equal to or stricter than Docker's: eleven capabilities,
//! a default-deny seccomp filter, `noNewPrivileges`, masked and read-only
//! kernel paths, private namespaces for everything, a device allowlist.
//! Only `privileged` relaxes them, and only explicitly.
//!
//! It must never perform I/O of its own, spawn processes or talk to the
//! runtime; never share a host namespace; never let image metadata (labels,
//! env) change how the runtime confines the container.

mod caps;
mod error;
mod mounts;
mod process;
mod resources;
mod seccomp;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use berth_core::api::{ContainerCreateRequest, IdMapping, ImageRunConfig};
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

pub use caps::{caps_from_mask, effective_caps, ALL_CAPS, DEFAULT_CAPS};
pub use error::SpecError;
pub use mounts::{default_mounts, keep_locked_flags, parse_tmpfs, parse_volume, LockedFlags};
pub use process::DEFAULT_PATH;
pub use resources::{build_resources, CPU_PERIOD, MIN_MEMORY};
pub use seccomp::{
    convert_docker_profile, default_seccomp, seccomp_choice, seccomp_choice_with_host_profile, DockerProfile,
    SeccompChoice, HOST_SECCOMP_PROFILE, NEVER_ALLOWED,
};
pub use user::{resolve_user, ResolvedUser};

/// The OCI runtime-spec version written into every `config.json`.
pub const OCI_VERSION: &str = "1.0.2";

/// `RLIMIT_NOFILE` soft and hard, as Docker sets it (capped by
/// [`HostInfo::max_nofile`]).
pub const NOFILE_LIMIT: u64 = 1_048_576;

/// Kernel paths hidden from non-privileged containers.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel paths non-privileged containers see read-only.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Annotation prefixes that runtimes read as instructions (crun's
/// `run.oci.*`), refused as labels so metadata cannot steer confinement.
const RESERVED_LABEL_PREFIXES: [&str; 1] = ["run.oci."];

/// Facts about the host the spec depends on. The caller reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The architecture (`x86_64`, `aarch64`, ...), for seccomp.
    pub arch: String,
    /// The kernel release (`uname -r`), for `minKernel` rules in
    /// docker-format seccomp profiles; `None` when unknown.
    pub kernel_release: Option<String>,
    /// The hard `RLIMIT_NOFILE` the runtime will run with. The container's
    /// limit is [`NOFILE_LIMIT`] capped at this, because raising a hard
    /// limit needs `CAP_SYS_RESOURCE` in the host, which a daemon in a
    /// restricted environment lacks (runc then fails with "error setting
    /// rlimit type 7"). `None`: not capped.
    pub max_nofile: Option<u64>,
    /// The capabilities the runtime can grant: the daemon's bounding set
    /// (`CapBnd` in `/proc/self/status`, see [`caps_from_mask`]). Privileged
    /// containers and `cap_add: ALL` get every known capability within it;
    /// naming one outside it in `cap_add` is an error. `None`: all of them.
    pub capabilities: Option<Vec<String>>,
}

impl Default for HostInfo {
    /// The architecture this binary was built for; kernel and limits unknown.
    fn default() -> Self {
        HostInfo {
            arch: std::env::consts::ARCH.to_string(),
            kernel_release: None,
            max_nofile: None,
            capabilities: None,
        }
    }
}

/// Everything [`build_spec`] needs.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The container id: 64 lowercase hex digits.
    pub id: &'a str,
    /// The mounted overlay root (absolute).
    pub rootfs: &'a Path,
    /// Entrypoint, Cmd, Env, WorkingDir and User from the image.
    pub image: &'a ImageRunConfig,
    pub request: &'a ContainerCreateRequest,
    /// e.g. `/berth/<id>`: cgroupfs style, which runc maps on v1 and v2.
    pub cgroups_path: String,
    /// Contents of the rootfs' `/etc/passwd`, for user names.
    pub passwd: Option<&'a str>,
    /// Contents of the rootfs' `/etc/group`.
    pub group: Option<&'a str>,
    /// Decided by the caller with [`seccomp_choice`].
    pub seccomp: SeccompChoice,
    /// A host file bound read-only at `/etc/resolv.conf`.
    pub resolv_conf: Option<&'a Path>,
    /// A host file bound read-only at `/etc/hosts` (unless the user mounts one).
    pub hosts: Option<&'a Path>,
    pub network: NetworkMode<'a>,
    pub host: HostInfo,
}

/// The container's network namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode<'a> {
    /// A new, empty one (only loopback): `--network none`.
    #[default]
    Isolated,
    /// One prepared by the caller (a bind-mounted namespace file), joined.
    Join(&'a Path),
    /// One prepared by the caller and owned by the user namespace at
    /// `user`, which a container with a user namespace joins too (user
    /// first, as runc does), so that later `exec`s may enter the network
    /// namespace. Without a user namespace the same as `Join(net)`.
    JoinOwned { net: &'a Path, user: &'a Path },
    /// The host's own: `--network host`, an explicit opt-in.
    Host,
}

fn all_mounts(
    input: &SpecInput<'_>,
    privileged: bool,
    userns: Option<IdMapping>,
) -> Result<Vec<oci_spec::runtime::Mount>, SpecError> {
    let req = input.request;
    let mut mounts = mounts::build_mounts(&req.volumes, &req.tmpfs, input.resolv_conf, privileged)?;
    let owned = matches!(input.network, NetworkMode::Isolated | NetworkMode::JoinOwned { .. });
    if userns.is_some() && !owned {
        // Only the owner of a network namespace's user namespace may mount
        // sysfs for it, and a joined or the host's network namespace is
        // owned by the host's: bind the host's /sys read-only instead
        // (runc 1.1 has no fallback of its own; podman does the same).
        for m in mounts.iter_mut().filter(|m| m.destination() == Path::new("/sys")) {
            *m = oci_spec::runtime::MountBuilder::default()
                .destination("/sys")
                .typ("bind")
                .source("/sys")
                .options(["rbind", "nosuid", "noexec", "nodev", "ro", "rprivate"].map(String::from).to_vec())
                .build()?;
        }
    }
    if let Some(hosts) = input.hosts {
        if !mounts.iter().any(|m| m.destination() == Path::new("/etc/hosts")) {
            mounts.push(mounts::etc_bind("/etc/hosts", hosts)?);
        }
    }
    Ok(mounts)
}

/// What `security_opt` says besides seccomp (parsed by [`seccomp_choice`]).
fn no_new_privileges(security_opt: &[String]) -> Result<bool, SpecError> {
    let mut nnp = true;
    for opt in security_opt {
        if opt.starts_with("seccomp=") || opt.starts_with("seccomp:") {
            continue;
        }
        let value = match opt.as_str() {
            "no-new-privileges" => "true",
            _ => match opt.strip_prefix("no-new-privileges=").or_else(|| opt.strip_prefix("no-new-privileges:")) {
                Some(v) => v,
                None => return Err(SpecError::InvalidSecurityOpt { opt: opt.clone() }),
            },
        };
        nnp = match value {
            "true" => true,
            "false" => false,
            _ => return Err(SpecError::InvalidSecurityOpt { opt: opt.clone() }),
        };
    }
    Ok(nnp)
}

fn validate_id(id: &str) -> Result<(), SpecError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(SpecError::InvalidId { id: id.to_string() })
    }
}

/// RFC 1123 labels separated by dots, at most 63 characters in all (the
/// kernel's UTS limit is 64 with the NUL).
fn validate_hostname(hostname: &str) -> Result<(), SpecError> {
    let bad = |reason| Err(SpecError::InvalidHostname { hostname: hostname.to_string(), reason });
    if hostname.is_empty() || hostname.len() > 63 {
        return bad("it must have 1 to 63 characters");
    }
    if !hostname.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return bad("it has a character other than a letter, digit, '-' or '.'");
    }
    if hostname.split('.').any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
        return bad("a dot-separated part is empty or starts or ends with '-'");
    }
    Ok(())
}

fn annotations(labels: &BTreeMap<String, String>) -> Result<HashMap<String, String>, SpecError> {
    for key in labels.keys() {
        if key.is_empty() {
            return Err(SpecError::InvalidLabel { key: key.clone(), reason: "the key is empty; give a non-empty key" });
        }
        if RESERVED_LABEL_PREFIXES.iter().any(|p| key.starts_with(p)) {
            return Err(SpecError::InvalidLabel {
                key: key.clone(),
                reason: "keys starting with run.oci. configure the OCI runtime; choose another key",
            });
        }
    }
    Ok(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The request's user namespace: `None` for `host` (or absent), the
/// daemon's allocation for `auto`.
fn userns(req: &ContainerCreateRequest) -> Result<Option<IdMapping>, SpecError> {
    let bad = |reason| SpecError::InvalidUserns { value: req.userns.clone().unwrap_or_default(), reason };
    match (req.userns.as_deref(), req.userns_mapping) {
        (None | Some("host"), None) => Ok(None),
        (None | Some("host"), Some(_)) => Err(bad("a host range is given without --userns=auto")),
        (Some("auto"), None) => Err(bad("no host range was allocated; the daemon allocates one at create")),
        (Some("auto"), Some(_)) if req.security.privileged => {
            Err(bad("--privileged cannot be combined with a user namespace; give --userns=host"))
        }
        (Some("auto"), Some(m)) if m.size == 0 || m.host_uid == 0 || m.host_gid == 0 => {
            Err(bad("the host range must be non-empty and must not start at root"))
        }
        (Some("auto"), Some(m)) => Ok(Some(m)),
        (Some(_), _) => Err(bad("give auto or host")),
    }
}

/// Builds the container's OCI runtime spec.
///
/// Rules beyond the individual modules': the hostname is the request's or
/// the first 12 characters of the id; `privileged` grants every capability,
/// all devices, read-write `/sys` and `/sys/fs/cgroup`, and drops seccomp,
/// masked and read-only paths, but keeps `noNewPrivileges` and the private
/// namespaces; request labels become annotations (image labels do not).
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    let req = input.request;
    let sec = &req.security;
    validate_id(input.id)?;
    if !input.rootfs.is_absolute() {
        return Err(SpecError::InvalidRootfs { path: input.rootfs.to_path_buf() });
    }
    let hostname = req.hostname.clone().unwrap_or_else(|| input.id[..12].to_string());
    validate_hostname(&hostname)?;

    let nnp = no_new_privileges(&sec.security_opt)?;
    let requested = effective_caps(sec)?;
    let grantable = |c: &str| input.host.capabilities.as_ref().is_none_or(|h| h.iter().any(|x| x == c));
    if !sec.privileged {
        if let Some(c) = caps::explicit_adds(sec)?.into_iter().find(|c| !grantable(c)) {
            return Err(SpecError::CapabilityUnavailable { name: c.to_string() });
        }
    }
    // Fewer capabilities than asked is only ever stricter: defaults, ALL
    // and privileged are cut to what the host can grant.
    let caps: Vec<String> = match sec.privileged {
        true => ALL_CAPS.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        false => requested,
    }
    .into_iter()
    .filter(|c| grantable(c))
    .collect();

    let args = process::resolve_args(input.image, req)?;
    let user_spec = req.user.as_deref().or(input.image.user.as_deref());
    let user = resolve_user(user_spec, input.passwd, input.group)?;
    let userns = userns(req)?;
    if let Some(m) = userns {
        let ids = [("uid", user.uid), ("gid", user.gid)].into_iter();
        let extra = user.additional_gids.iter().map(|&g| ("supplementary gid", g));
        if let Some((what, id)) = ids.chain(extra).find(|&(_, id)| id >= m.size) {
            return Err(SpecError::UnmappedId { what, id, last: m.size - 1, size: m.size });
        }
    }
    let env = process::merge_env(input.image, req, &hostname, user.home.as_deref())?;
    let cwd = process::resolve_cwd(input.image, req)?;

    let oci_caps = caps::to_oci(&caps)?;
    let nofile = input.host.max_nofile.map_or(NOFILE_LIMIT, |max| NOFILE_LIMIT.min(max));
    let process = ProcessBuilder::default()
        .terminal(false)
        .user({
            let mut b = UserBuilder::default().uid(user.uid).gid(user.gid);
            if !user.additional_gids.is_empty() {
                b = b.additional_gids(user.additional_gids.clone());
            }
            b.build()?
        })
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities({
            // The builders start from oci-spec's Default values, which are
            // not ours: clear what we do not set.
            let mut c = LinuxCapabilitiesBuilder::default()
                .bounding(oci_caps.clone())
                .effective(oci_caps.clone())
                .permitted(oci_caps)
                .build()?;
            c.set_inheritable(None);
            c.set_ambient(None);
            c
        })
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(nofile)
            .hard(nofile)
            .build()?])
        .no_new_privileges(nnp)
        .build()?;

    let network = match input.network {
        NetworkMode::Isolated => Some(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).build()?),
        NetworkMode::Join(path) | NetworkMode::JoinOwned { net: path, .. } => {
            Some(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).path(path.to_path_buf()).build()?)
        }
        NetworkMode::Host => None,
    };
    let mut namespaces =
        [LinuxNamespaceType::Pid, LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts, LinuxNamespaceType::Mount]
            .into_iter()
            .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
            .collect::<Result<Vec<_>, _>>()?;
    namespaces.extend(network);
    namespaces.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Cgroup).build()?);
    if userns.is_some() {
        let mut user = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User);
        if let NetworkMode::JoinOwned { user: path, .. } = input.network {
            user = user.path(path.to_path_buf());
        }
        namespaces.push(user.build()?);
    }
    // ICMP sockets let ping work without CAP_NET_RAW; the range is per
    // network namespace, so never set it in the host's.
    // A user namespace may not write the sysctls of a network namespace it
    // does not own (a joined one: runc fails with EACCES); then ping needs
    // the network's own setting.
    let sysctl = match input.network {
        NetworkMode::Host => HashMap::new(),
        NetworkMode::Join(_) if userns.is_some() => HashMap::new(),
        // The range is of gids in the writer's user namespace.
        _ => {
            let last = userns.map_or(2147483647, |m| m.size - 1);
            HashMap::from([("net.ipv4.ping_group_range".to_string(), format!("0 {last}"))])
        }
    };

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .devices(resources::default_devices()?)
        .resources(build_resources(&req.limits, sec.privileged)?)
        .cgroups_path(input.cgroups_path.clone())
        .rootfs_propagation("rprivate")
        .sysctl(sysctl)
        .build()?;
    if let Some(m) = userns {
        let map = |host_id| LinuxIdMappingBuilder::default().container_id(0u32).host_id(host_id).size(m.size).build();
        linux.set_uid_mappings(Some(vec![map(m.host_uid)?]));
        linux.set_gid_mappings(Some(vec![map(m.host_gid)?]));
    }
    // LinuxBuilder starts from oci-spec's Default, which has masked and
    // read-only paths of its own: ours, or none when privileged.
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    if !sec.privileged {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
        linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
        linux.set_seccomp(match &input.seccomp {
            SeccompChoice::Default => Some(default_seccomp(&caps, &input.host.arch)),
            SeccompChoice::Unconfined => None,
            SeccompChoice::Docker { profile, .. } => {
                Some(profile.resolve(&caps, &input.host.arch, input.host.kernel_release.as_deref())?)
            }
            SeccompChoice::Profile(p) => Some(p.clone()),
        });
    }

    Ok(SpecBuilder::default()
        .version(OCI_VERSION)
        .root(RootBuilder::default().path(input.rootfs).readonly(sec.read_only).build()?)
        .hostname(hostname)
        .process(process)
        .mounts(all_mounts(input, sec.privileged, userns)?)
        .annotations(annotations(&req.labels)?)
        .linux(linux)
        .build()?)
}

/// The spec as pretty JSON with object keys sorted and capability sets in
/// order, so the same spec always gives the same bytes (the OCI types keep
/// some sets in hash maps).
pub fn to_canonical_json(spec: &Spec) -> Result<String, SpecError> {
    let value = serde_json::to_value(spec).map_err(|e| SpecError::Internal { reason: e.to_string() })?;
    let mut out = serde_json::to_string_pretty(&canonical(value, false))
        .map_err(|e| SpecError::Internal { reason: e.to_string() })?;
    out.push('\n');
    Ok(out)
}

fn canonical(value: serde_json::Value, sort_arrays: bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let sets = k == "capabilities";
                        let v = canonical(v, sets || sort_arrays);
                        (k, v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(|v| canonical(v, false)).collect();
            if sort_arrays {
                items.sort_by_key(|v| v.to_string());
            }
            Value::Array(items)
        }
        v => v,
    }
}

#[cfg(test)]
mod tests;
