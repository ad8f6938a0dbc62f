//! The docker/containers-common `seccomp.json` format and its resolution to
//! an OCI filter, following moby's `profiles/seccomp` rules: `archMap`
//! picks the native architecture and its sub-architectures; a rule applies
//! when its `includes` all hold (every listed cap present, the arch listed,
//! the kernel at least `minKernel`) and none of its `excludes` does.

use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSyscall,
    LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::{arch_info, normalize_cap};
use crate::SpecError;

/// A parsed docker-format profile, not yet resolved for capabilities and
/// architecture. Unknown fields (`comment`, `errno`, ...) are ignored, as
/// Docker does; unknown actions, operators and architectures are errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    #[serde(default)]
    flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// `major.minor` of a kernel release such as `6.1.0-18-amd64` or `4.8`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().filter(|s| !s.is_empty()).unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

impl DockerProfile {
    /// Parses a profile; `source_name` (usually the path) names it in errors.
    pub fn parse(source_name: &str, json: &str) -> Result<Self, SpecError> {
        let invalid = |reason: String| SpecError::SeccompProfile { source_name: source_name.to_string(), reason };
        let profile: DockerProfile = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            return Err(invalid("it has both architectures and archMap; keep one".into()));
        }
        for (i, rule) in profile.syscalls.iter().enumerate() {
            if rule.name.is_some() && !rule.names.is_empty() {
                return Err(invalid(format!("syscalls[{i}] has both name and names; keep one")));
            }
            for k in rule.includes.min_kernel.iter().chain(&rule.excludes.min_kernel) {
                if kernel_version(k).is_none() {
                    return Err(invalid(format!("syscalls[{i}] minKernel {k:?} is not a kernel version like 4.8")));
                }
            }
        }
        Ok(profile)
    }

    /// The OCI filter for a container with capabilities `caps` (any
    /// spelling) on `arch` (e.g. `x86_64`). `kernel_release` (`uname -r`)
    /// decides `minKernel` conditions; when unknown, a rule that needs a
    /// minimum kernel is dropped if it allows and kept otherwise, so an
    /// unknown kernel never widens the filter.
    pub fn resolve(
        &self,
        caps: &[String],
        arch: &str,
        kernel_release: Option<&str>,
    ) -> Result<LinuxSeccomp, SpecError> {
        let info = arch_info(arch).ok_or_else(|| SpecError::UnsupportedArch { arch: arch.to_string() })?;
        let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
        let kernel = kernel_release.and_then(kernel_version);
        let has_cap = |c: &String| caps.contains(&normalize_cap(c));
        // true: the kernel is at least `min`; None: unknown.
        let kernel_at_least = |min: &str| kernel.zip(kernel_version(min)).map(|(k, m)| k >= m);

        let mut architectures = self.architectures.clone();
        for m in &self.arch_map {
            if m.architecture == info.native {
                architectures.push(m.architecture);
                architectures.extend(&m.sub_architectures);
            }
        }

        let mut syscalls: Vec<LinuxSyscall> = Vec::new();
        for rule in &self.syscalls {
            let allows = matches!(rule.action, LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog);
            let ex = &rule.excludes;
            if ex.arches.iter().any(|a| a == info.go) || ex.caps.iter().any(has_cap) {
                continue;
            }
            if let Some(min) = &ex.min_kernel {
                // Excluded on new kernels; unknown kernel: keep only non-allowing rules.
                match kernel_at_least(min) {
                    Some(true) => continue,
                    None if allows => continue,
                    _ => {}
                }
            }
            let inc = &rule.includes;
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == info.go) {
                continue;
            }
            if !inc.caps.iter().all(has_cap) {
                continue;
            }
            if let Some(min) = &inc.min_kernel {
                match kernel_at_least(min) {
                    Some(false) => continue,
                    None if allows => continue,
                    _ => {}
                }
            }
            let names: Vec<String> = rule.name.iter().chain(&rule.names).cloned().collect();
            if names.is_empty() {
                continue;
            }
            let mut b = LinuxSyscallBuilder::default().names(names).action(rule.action);
            if let Some(e) = rule.errno_ret {
                b = b.errno_ret(e);
            }
            if let Some(args) = rule.args.as_ref().filter(|a| !a.is_empty()) {
                b = b.args(args.clone());
            }
            syscalls.push(b.build()?);
        }

        let mut b = LinuxSeccompBuilder::default().default_action(self.default_action).syscalls(syscalls);
        if let Some(e) = self.default_errno_ret {
            b = b.default_errno_ret(e);
        }
        if !architectures.is_empty() {
            b = b.architectures(architectures);
        }
        if !self.flags.is_empty() {
            b = b.flags(self.flags.clone());
        }
        if let Some(p) = &self.listener_path {
            b = b.listener_path(p.clone());
        }
        if let Some(m) = &self.listener_metadata {
            b = b.listener_metadata(m.clone());
        }
        Ok(b.build()?)
    }
}

/// Converts a docker/containers-common `seccomp.json` into the OCI filter
/// for the capability set `caps` on `arch`, with the kernel unknown (see
/// [`DockerProfile::resolve`] to pass one).
pub fn convert_docker_profile(json: &str, caps: &[String], arch: &str) -> Result<LinuxSeccomp, SpecError> {
    DockerProfile::parse("(inline)", json)?.resolve(caps, arch, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "", "includes": {}, "excludes": {}},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["both"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["old"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"minKernel": "5.0"}},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": null}
        ]
    }"#;

    fn names(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls().as_ref().unwrap().iter().flat_map(|r| r.names().clone()).collect()
    }

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolves_arch_caps_and_kernel() {
        let p = DockerProfile::parse("sample", SAMPLE).unwrap();
        let s = p.resolve(&caps(&["CAP_CHOWN"]), "x86_64", Some("6.1.0-18-amd64")).unwrap();
        assert_eq!(s.default_errno_ret(), Some(38));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert_eq!(names(&s), ["read", "write", "getpid", "personality", "arch_prctl", "mount", "ptrace", "socket"]);
        let rules = s.syscalls().as_ref().unwrap();
        assert_eq!((rules[4].action(), rules[4].errno_ret()), (LinuxSeccompAction::ScmpActErrno, Some(1)));
        assert_eq!(rules[2].args().as_ref().unwrap()[0].value(), 8);
        assert!(rules[6].args().is_none());

        let s = p.resolve(&caps(&["sys_admin", "NET_ADMIN"]), "aarch64", Some("4.4")).unwrap();
        assert_eq!(s.architectures().as_ref().unwrap(), &vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]);
        assert_eq!(
            names(&s),
            ["read", "write", "getpid", "personality", "cacheflush", "mount", "both", "old", "socket"]
        );
        assert_eq!(s.syscalls().as_ref().unwrap()[4].action(), LinuxSeccompAction::ScmpActAllow);
    }

    #[test]
    fn unknown_kernel_never_widens() {
        let p = DockerProfile::parse("sample", SAMPLE).unwrap();
        let n = names(&p.resolve(&[], "x86_64", None).unwrap());
        assert!(!n.contains(&"ptrace".to_string()), "allow rules needing a kernel are dropped");
        assert!(n.contains(&"old".to_string()), "deny rules excluded on new kernels are kept");
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases = [
            ("{}", "defaultAction"),
            (r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "SCMP_ACT_NOPE"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                "both",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0]",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_WAT"}]}]}"#,
                "SCMP_CMP_WAT",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#,
                "minKernel",
            ),
        ];
        for (json, needle) in cases {
            let e = DockerProfile::parse("p.json", json).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("p.json"), "{json}: {e}");
        }
        assert!(matches!(convert_docker_profile(SAMPLE, &[], "vax"), Err(SpecError::UnsupportedArch { .. })));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("5"), Some((5, 0)));
        assert_eq!(kernel_version("x"), None);
    }
}
