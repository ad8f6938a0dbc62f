//! Seccomp: which profile a container gets (`seccomp_choice`), Berth's own
//! default-deny profile (`default_seccomp`) and the conversion of the
//! docker/containers `seccomp.json` format (`convert_docker_profile`).

mod builtin;
mod docker;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Arch, LinuxSeccomp};

pub use builtin::{default_seccomp, NEVER_ALLOWED};
pub use docker::{convert_docker_profile, DockerProfile};

use crate::SpecError;

/// Where Debian's `containers-common`/`golang-github-containers-common`
/// (pulled in by skopeo and podman) installs its profile.
pub const HOST_SECCOMP_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The seccomp filter a container gets. Privileged containers get none,
/// whatever the choice.
#[derive(Debug, Clone, PartialEq)]
pub enum SeccompChoice {
    /// Berth's built-in profile ([`default_seccomp`]) for the effective caps.
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A docker/containers-format profile, resolved against the effective
    /// capabilities and the host architecture when the spec is built.
    Docker {
        /// Where it came from, for `inspect` and errors.
        source: PathBuf,
        profile: DockerProfile,
    },
    /// A ready OCI filter, used as is.
    Profile(LinuxSeccomp),
}

impl SeccompChoice {
    /// `default`, `unconfined`, the profile's path, or `custom`: what
    /// `berth inspect` shows.
    pub fn label(&self) -> String {
        match self {
            SeccompChoice::Default => "default".to_string(),
            SeccompChoice::Unconfined => "unconfined".to_string(),
            SeccompChoice::Docker { source, .. } => source.display().to_string(),
            SeccompChoice::Profile(_) => "custom".to_string(),
        }
    }
}

/// Decides the profile from `security_opt`: `seccomp=unconfined` or
/// `seccomp=/ABSOLUTE/PATH` (docker/containers JSON; `:` also accepted, as
/// Docker once wrote it). Without either, the host's containers profile
/// ([`HOST_SECCOMP_PROFILE`]) when it exists, else Berth's built-in
/// [`SeccompChoice::Default`], as the containers issue asks.
///
/// Files are read only through `read_file`, so tests pass fakes.
pub fn seccomp_choice(
    security_opt: &[String],
    read_file: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<SeccompChoice, SpecError> {
    seccomp_choice_with_host_profile(security_opt, Some(Path::new(HOST_SECCOMP_PROFILE)), read_file)
}

/// [`seccomp_choice`] with the host profile's path as configuration; `None`
/// means the built-in profile is the default.
///
/// A profile that cannot be read or parsed is an error naming the path; a
/// `host_profile` that does not exist is not.
pub fn seccomp_choice_with_host_profile(
    security_opt: &[String],
    host_profile: Option<&Path>,
    read_file: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<SeccompChoice, SpecError> {
    let mut chosen: Option<&str> = None;
    for opt in security_opt {
        if let Some(value) = opt.strip_prefix("seccomp=").or_else(|| opt.strip_prefix("seccomp:")) {
            if value.is_empty() || chosen.is_some() {
                return Err(SpecError::InvalidSecurityOpt { opt: opt.clone() });
            }
            chosen = Some(value);
        }
    }
    let parsed = |path: &Path, json: std::io::Result<String>| -> Result<SeccompChoice, SpecError> {
        let json = json.map_err(|source| SpecError::SeccompRead { path: path.to_path_buf(), source })?;
        let profile = DockerProfile::parse(&path.display().to_string(), &json)?;
        Ok(SeccompChoice::Docker { source: path.to_path_buf(), profile })
    };
    match chosen {
        Some("unconfined") => Ok(SeccompChoice::Unconfined),
        Some(path) if Path::new(path).is_absolute() => parsed(Path::new(path), read_file(Path::new(path))),
        Some(path) => Err(SpecError::InvalidSecurityOpt { opt: format!("seccomp={path}") }),
        None => match host_profile {
            Some(path) => match read_file(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeccompChoice::Default),
                json => parsed(path, json),
            },
            None => Ok(SeccompChoice::Default),
        },
    }
}

/// How an architecture is named in the places seccomp needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArchInfo {
    /// Go's `GOARCH`, which docker profiles use in `includes.arches`.
    pub go: &'static str,
    pub native: Arch,
    /// ABIs the native kernel also runs (e.g. 32-bit x86 on x86_64).
    pub subs: &'static [Arch],
    /// The argument of `clone(2)` that holds the flags.
    pub clone_flags_arg: usize,
}

/// Accepts Rust's `std::env::consts::ARCH`, `uname -m` and Go names.
pub(crate) fn arch_info(arch: &str) -> Option<ArchInfo> {
    let (go, native, subs, clone_flags_arg): (_, _, &'static [Arch], _) = match arch {
        "x86_64" | "amd64" => ("amd64", Arch::ScmpArchX86_64, &[Arch::ScmpArchX86, Arch::ScmpArchX32], 0),
        "x86" | "i386" | "i686" | "386" => ("386", Arch::ScmpArchX86, &[], 0),
        "aarch64" | "arm64" => ("arm64", Arch::ScmpArchAarch64, &[Arch::ScmpArchArm], 0),
        "arm" | "armv7l" | "armhf" => ("arm", Arch::ScmpArchArm, &[], 0),
        "s390x" => ("s390x", Arch::ScmpArchS390x, &[Arch::ScmpArchS390], 1),
        "powerpc64" | "powerpc64le" | "ppc64le" => ("ppc64le", Arch::ScmpArchPpc64le, &[], 0),
        "riscv64" => ("riscv64", Arch::ScmpArchRiscv64, &[], 0),
        "loongarch64" | "loong64" => ("loong64", Arch::ScmpArchLoongarch64, &[], 0),
        _ => return None,
    };
    Some(ArchInfo { go, native, subs, clone_flags_arg })
}

/// `CAP_SYS_ADMIN` for `sys_admin`, `SYS_ADMIN` or `CAP_SYS_ADMIN`.
pub(crate) fn normalize_cap(c: &str) -> String {
    let upper = c.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn opts(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn no_files(_: &Path) -> io::Result<String> {
        Err(io::Error::from(io::ErrorKind::NotFound))
    }

    const PROFILE: &str =
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;

    #[test]
    fn default_without_options_or_host_file() {
        assert_eq!(seccomp_choice_with_host_profile(&[], None, no_files).unwrap(), SeccompChoice::Default);
        let host = Path::new(HOST_SECCOMP_PROFILE);
        assert_eq!(
            seccomp_choice_with_host_profile(&opts(&["no-new-privileges"]), Some(host), no_files).unwrap(),
            SeccompChoice::Default
        );
    }

    #[test]
    fn the_short_form_looks_for_the_containers_profile() {
        let c = seccomp_choice(&[], |p| {
            assert_eq!(p, Path::new(HOST_SECCOMP_PROFILE));
            Ok(PROFILE.to_string())
        })
        .unwrap();
        assert!(matches!(c, SeccompChoice::Docker { .. }));
        assert_eq!(seccomp_choice(&[], no_files).unwrap(), SeccompChoice::Default);
        assert_eq!(seccomp_choice(&opts(&["seccomp=unconfined"]), no_files).unwrap(), SeccompChoice::Unconfined);
    }

    #[test]
    fn host_profile_is_used_when_present() {
        let host = Path::new("/etc/host.json");
        let c = seccomp_choice_with_host_profile(&[], Some(host), |p| {
            assert_eq!(p, Path::new("/etc/host.json"));
            Ok(PROFILE.to_string())
        })
        .unwrap();
        assert!(matches!(&c, SeccompChoice::Docker { source, .. } if source == host));
        assert_eq!(c.label(), "/etc/host.json");
        // A host profile that exists but cannot be read is an error, not a silent fallback.
        let e = seccomp_choice_with_host_profile(&[], Some(host), |_| {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        });
        assert!(matches!(e, Err(SpecError::SeccompRead { .. })));
    }

    #[test]
    fn unconfined_and_path() {
        let c =
            seccomp_choice_with_host_profile(&opts(&["seccomp=unconfined"]), Some(Path::new("/x")), no_files).unwrap();
        assert_eq!(c, SeccompChoice::Unconfined);
        assert_eq!(c.label(), "unconfined");
        let c = seccomp_choice_with_host_profile(&opts(&["seccomp:unconfined"]), None, no_files).unwrap();
        assert_eq!(c, SeccompChoice::Unconfined);
        let c =
            seccomp_choice_with_host_profile(&opts(&["seccomp=/etc/p.json"]), None, |_| Ok(PROFILE.into())).unwrap();
        assert!(matches!(c, SeccompChoice::Docker { .. }));
    }

    #[test]
    fn bad_options_and_files_are_errors() {
        for bad in [&["seccomp="][..], &["seccomp=rel/p.json"], &["seccomp=unconfined", "seccomp=/p"]] {
            let e = seccomp_choice_with_host_profile(&opts(bad), None, no_files).unwrap_err();
            assert!(matches!(e, SpecError::InvalidSecurityOpt { .. }), "{bad:?}: {e}");
        }
        let e = seccomp_choice_with_host_profile(&opts(&["seccomp=/missing.json"]), None, no_files).unwrap_err();
        assert!(matches!(&e, SpecError::SeccompRead { path, .. } if path == Path::new("/missing.json")));
        assert!(e.to_string().contains("/missing.json"));
        let e = seccomp_choice_with_host_profile(&opts(&["seccomp=/bad.json"]), None, |_| Ok("{".into())).unwrap_err();
        assert!(matches!(&e, SpecError::SeccompProfile { source_name, .. } if source_name == "/bad.json"), "{e}");
    }

    #[test]
    fn arch_names() {
        for (a, go) in [("x86_64", "amd64"), ("amd64", "amd64"), ("aarch64", "arm64"), ("s390x", "s390x")] {
            assert_eq!(arch_info(a).unwrap().go, go);
        }
        assert_eq!(arch_info("s390x").unwrap().clone_flags_arg, 1);
        assert!(arch_info("vax").is_none());
        assert!(arch_info(std::env::consts::ARCH).is_some(), "the build host's arch must be known");
    }
}
