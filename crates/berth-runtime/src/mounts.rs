//! The container's mount table: the standard kernel filesystems, then the
//! user's bind volumes and tmpfs mounts, then `/etc/resolv.conf`.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder};

use crate::SpecError;

/// Container paths no user mount may cover or sit below: the kernel
/// filesystems whose hardening (masks, read-only) a mount would undo.
const RESERVED: [&str; 5] = ["/proc", "/sys", "/dev", "/dev/pts", "/sys/fs/cgroup"];

/// tmpfs options accepted from users. `suid` and `dev` only when privileged.
const TMPFS_OPTIONS: [&str; 26] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "huge",
    "mpol",
    "exec",
    "noexec",
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "diratime",
    "nodiratime",
    "sync",
    "async",
    "dirsync",
    "tmpcopyup",
];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// `/proc`, a private `/dev` (tmpfs) with `pts`, `shm` and `mqueue`, and
/// `/sys` plus `/sys/fs/cgroup` read-only (read-write only when privileged).
pub fn default_mounts(privileged: bool) -> Result<Vec<Mount>, SpecError> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_mode])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", sys_mode])?,
    ])
}

/// An absolute path with `.` and repeated or trailing `/` removed; `None`
/// when relative or when it has a `..` component (refused rather than
/// resolved, so what the user wrote is what is mounted).
pub(crate) fn clean_abs(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn is_reserved(dest: &str) -> bool {
    dest.starts_with("/proc/") || RESERVED.contains(&dest)
}

/// `HOST:CONTAINER[:ro|rw]` as a recursive, private bind mount.
pub fn parse_volume(spec: &str) -> Result<Mount, SpecError> {
    let invalid = |reason: &str| SpecError::InvalidVolume { spec: spec.to_string(), reason: reason.to_string() };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, dest, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => return Err(invalid("it needs HOST:CONTAINER with an optional :ro or :rw")),
    };
    let host = clean_abs(host).ok_or_else(|| invalid("the host path must be absolute without '..'"))?;
    let dest = clean_abs(dest).ok_or_else(|| invalid("the container path must be absolute without '..'"))?;
    if dest == "/" {
        return Err(invalid("the container path cannot be /"));
    }
    if is_reserved(&dest) {
        return Err(invalid("the container path is a kernel filesystem (/proc, /sys, /dev, /dev/pts)"));
    }
    if mode != "ro" && mode != "rw" {
        return Err(invalid("the mode must be ro or rw"));
    }
    Ok(MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(host)
        .options(vec!["rbind".to_string(), mode.to_string(), "rprivate".to_string()])
        .build()?)
}

/// `/PATH[:opt,opt=value,...]` as a tmpfs with `nosuid,nodev,noexec` first
/// (`exec` in the options lifts `noexec`; later options win in mount(8)).
pub fn parse_tmpfs(spec: &str, privileged: bool) -> Result<Mount, SpecError> {
    let invalid = |reason: String| SpecError::InvalidTmpfs { spec: spec.to_string(), reason };
    let (path, opts) = match spec.split_once(':') {
        Some((p, o)) => (p, o),
        None => (spec, ""),
    };
    let dest = clean_abs(path).ok_or_else(|| invalid("the path must be absolute without '..'".into()))?;
    if dest == "/" || is_reserved(&dest) {
        return Err(invalid("the path cannot be / or a kernel filesystem (/proc, /sys, /dev, /dev/pts)".into()));
    }
    let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let privileged_only = key == "suid" || key == "dev";
        if !(TMPFS_OPTIONS.contains(&key) || privileged && privileged_only) {
            let why = if privileged_only { " (allowed only with privileged)" } else { "" };
            return Err(invalid(format!("option {key:?} is not a tmpfs option{why}")));
        }
        if let Some(v) = value {
            let ok = match key {
                "size" | "nr_inodes" | "nr_blocks" => valid_size(v),
                "mode" => !v.is_empty() && v.len() <= 4 && v.bytes().all(|b| (b'0'..=b'7').contains(&b)),
                "uid" | "gid" => !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "huge" | "mpol" => !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b)),
                _ => false,
            };
            if !ok {
                return Err(invalid(format!("option {opt:?} has an invalid value")));
            }
        } else if matches!(key, "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "huge" | "mpol") {
            return Err(invalid(format!("option {key:?} needs a value ({key}=...)")));
        }
        options.push(opt.to_string());
    }
    Ok(MountBuilder::default().destination(dest).typ("tmpfs").source("tmpfs").options(options).build()?)
}

/// Digits with an optional `k`, `m`, `g` or `%` suffix, as tmpfs takes them.
fn valid_size(v: &str) -> bool {
    let digits = v.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G', '%']).unwrap_or(v);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A generated file bound read-only over one in the image's `/etc`.
pub fn etc_bind(destination: &str, source: &Path) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(
            ["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"].iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .build()?)
}

/// The full mount list. User mounts may replace the default `/dev/shm` and
/// `/dev/mqueue` (Docker allows it); two user mounts on one path are an
/// error; a user mount on `/etc/resolv.conf` wins over the generated one.
pub fn build_mounts(
    volumes: &[String],
    tmpfs: &[String],
    resolv_conf: Option<&Path>,
    privileged: bool,
) -> Result<Vec<Mount>, SpecError> {
    let mut user = Vec::new();
    for v in volumes {
        user.push(parse_volume(v)?);
    }
    for t in tmpfs {
        user.push(parse_tmpfs(t, privileged)?);
    }
    let mut seen = BTreeSet::new();
    for m in &user {
        let dest = m.destination().to_string_lossy().to_string();
        if !seen.insert(dest.clone()) {
            return Err(SpecError::DuplicateMount { destination: dest });
        }
    }
    let mut mounts: Vec<Mount> = default_mounts(privileged)?
        .into_iter()
        .filter(|m| !seen.contains(&*m.destination().to_string_lossy()))
        .collect();
    mounts.extend(user);
    if let Some(path) = resolv_conf {
        if !path.is_absolute() {
            return Err(SpecError::InvalidResolvConf { path: path.to_path_buf() });
        }
        if !seen.contains("/etc/resolv.conf") {
            mounts.push(etc_bind("/etc/resolv.conf", path)?);
        }
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    fn dests(ms: &[Mount]) -> Vec<String> {
        ms.iter().map(|m| m.destination().to_string_lossy().to_string()).collect()
    }

    #[test]
    fn default_mounts_are_hardened() {
        let ms = default_mounts(false).unwrap();
        assert_eq!(dests(&ms), ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]);
        assert!(opts(&ms[5]).contains(&"ro".to_string()));
        assert!(opts(&ms[6]).contains(&"ro".to_string()));
        assert!(opts(&ms[3]).contains(&"noexec".to_string()));
        let ms = default_mounts(true).unwrap();
        assert!(opts(&ms[5]).contains(&"rw".to_string()) && !opts(&ms[5]).contains(&"ro".to_string()));
        assert!(opts(&ms[6]).contains(&"rw".to_string()));
    }

    #[test]
    fn clean_abs_normalises_and_refuses() {
        assert_eq!(clean_abs("/a//b/./c/").as_deref(), Some("/a/b/c"));
        assert_eq!(clean_abs("/").as_deref(), Some("/"));
        assert_eq!(clean_abs("a/b"), None);
        assert_eq!(clean_abs("/a/../b"), None);
        assert_eq!(clean_abs(""), None);
    }

    #[test]
    fn volumes_parse() {
        let m = parse_volume("/srv/data:/data").unwrap();
        assert_eq!(m.source().as_ref().unwrap().to_str(), Some("/srv/data"));
        assert_eq!(m.destination().to_str(), Some("/data"));
        assert_eq!(m.typ().as_deref(), Some("bind"));
        assert_eq!(opts(&m), ["rbind", "rw", "rprivate"]);
        let m = parse_volume("/srv/data/:/data/:ro").unwrap();
        assert_eq!(opts(&m), ["rbind", "ro", "rprivate"]);
        assert_eq!(m.destination().to_str(), Some("/data"));
    }

    #[test]
    fn bad_volumes_name_the_spec() {
        for bad in [
            "/srv",
            "srv:/data",
            "/srv:data",
            "/srv:/",
            "/srv:/data:rx",
            "/srv:/data:ro:z",
            "/srv/../etc:/data",
            "/srv:/proc",
            "/srv:/proc/sys",
            "/srv:/sys",
            "/srv:/dev",
            "",
        ] {
            let e = parse_volume(bad).unwrap_err();
            assert!(matches!(&e, SpecError::InvalidVolume { spec, .. } if spec == bad), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn tmpfs_parse_adds_defaults_and_validates() {
        let m = parse_tmpfs("/run", false).unwrap();
        assert_eq!(opts(&m), ["nosuid", "nodev", "noexec"]);
        assert_eq!(m.typ().as_deref(), Some("tmpfs"));
        let m = parse_tmpfs("/tmp:size=64m,mode=1777,exec,uid=1000", false).unwrap();
        assert_eq!(opts(&m), ["nosuid", "nodev", "noexec", "size=64m", "mode=1777", "exec", "uid=1000"]);
        for bad in [
            "tmp",
            "/",
            "/proc",
            "/tmp:size",
            "/tmp:size=lots",
            "/tmp:mode=999",
            "/tmp:bogus",
            "/tmp:suid",
            "/tmp:dev",
            "/tmp:uid=-1",
            "/tmp:size=1m,,exec=yes",
        ] {
            let e = parse_tmpfs(bad, false).unwrap_err();
            assert!(matches!(&e, SpecError::InvalidTmpfs { spec, .. } if spec == bad), "{bad}: {e}");
        }
        assert!(parse_tmpfs("/tmp:suid,dev", true).is_ok());
    }

    #[test]
    fn user_mounts_replace_shm_and_duplicates_fail() {
        let ms = build_mounts(&[], &["/dev/shm:size=1g".into()], None, false).unwrap();
        let shm: Vec<&Mount> = ms.iter().filter(|m| m.destination().to_str() == Some("/dev/shm")).collect();
        assert_eq!(shm.len(), 1);
        assert!(opts(shm[0]).contains(&"size=1g".to_string()));
        let e = build_mounts(&["/a:/data".into()], &["/data/".into()], None, false).unwrap_err();
        assert!(matches!(e, SpecError::DuplicateMount { destination } if destination == "/data"));
    }

    #[test]
    fn resolv_conf_is_a_read_only_bind_unless_the_user_mounts_one() {
        let ms = build_mounts(&[], &[], Some(Path::new("/run/berth/resolv.conf")), false).unwrap();
        let last = ms.last().unwrap();
        assert_eq!(last.destination().to_str(), Some("/etc/resolv.conf"));
        assert!(opts(last).contains(&"ro".to_string()));
        let ms = build_mounts(&["/x/r:/etc/resolv.conf:ro".into()], &[], Some(Path::new("/y")), false).unwrap();
        assert_eq!(ms.iter().filter(|m| m.destination().to_str() == Some("/etc/resolv.conf")).count(), 1);
        assert!(matches!(
            build_mounts(&[], &[], Some(Path::new("resolv.conf")), false),
            Err(SpecError::InvalidResolvConf { .. })
        ));
    }
}

/// Flags of the mount a bind source sits on that a user namespace may not
/// clear: the kernel locks `nosuid`, `nodev` and `noexec` of mounts that
/// enter a user namespace, and refuses a remount (runc's read-only
/// remount of a `ro` bind) that drops one with EPERM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockedFlags {
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// Adds to every bind mount of `mounts` the locked flags of its source's
/// mount (`flags_of`, e.g. from statvfs), so a container in a user
/// namespace can remount it read-only; runc 1.1 does not carry them over
/// itself. Sources `flags_of` cannot read are left as they are.
pub fn keep_locked_flags(
    mounts: &mut [oci_spec::runtime::Mount],
    flags_of: impl Fn(&std::path::Path) -> Option<LockedFlags>,
) {
    for m in mounts.iter_mut() {
        let is_bind = m.typ().as_deref() == Some("bind")
            || m.options().as_ref().is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
        let Some(source) = m.source().clone().filter(|_| is_bind) else { continue };
        let Some(locked) = flags_of(&source) else { continue };
        let mut options = m.options().clone().unwrap_or_default();
        for (set, name) in [(locked.nosuid, "nosuid"), (locked.nodev, "nodev"), (locked.noexec, "noexec")] {
            if set && !options.iter().any(|o| o == name) {
                options.push(name.to_string());
            }
        }
        m.set_options(Some(options));
    }
}

#[cfg(test)]
mod locked_tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn binds_keep_the_locked_flags_of_their_source() {
        let bind = |src: &str, opts: &[&str]| {
            oci_spec::runtime::MountBuilder::default()
                .destination("/d")
                .typ("bind")
                .source(src)
                .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
                .unwrap()
        };
        let proc_mount =
            oci_spec::runtime::MountBuilder::default().destination("/proc").typ("proc").source("proc").build().unwrap();
        let mut mounts = vec![bind("/pods/x/volumes/s", &["rbind", "ro"]), bind("/srv", &["rbind"]), proc_mount];
        keep_locked_flags(&mut mounts, |p| match p {
            p if p == Path::new("/pods/x/volumes/s") => Some(LockedFlags { nosuid: true, nodev: true, noexec: false }),
            p if p == Path::new("/proc") || p == Path::new("proc") => panic!("only binds are looked at"),
            _ => None,
        });
        assert_eq!(mounts[0].options().as_ref().unwrap(), &["rbind", "ro", "nosuid", "nodev"]);
        assert_eq!(mounts[1].options().as_ref().unwrap(), &["rbind"], "an unreadable source is left alone");
        assert!(mounts[2].options().is_none());
    }
}
