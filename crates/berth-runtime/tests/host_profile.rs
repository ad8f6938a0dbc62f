//! Conversion of the real containers-common profile that Debian installs
//! with skopeo/podman. CI has it (skopeo is a dependency), so a missing file
//! fails the test instead of skipping it.

use std::collections::BTreeSet;

use berth_runtime::{convert_docker_profile, seccomp_choice, SeccompChoice, DEFAULT_CAPS, HOST_SECCOMP_PROFILE};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};

fn host_profile() -> String {
    std::fs::read_to_string(HOST_SECCOMP_PROFILE).unwrap_or_else(|e| {
        panic!(
            "{HOST_SECCOMP_PROFILE} is needed by this test and could not be read ({e}); \
             install it with `apt-get install golang-github-containers-common` (skopeo pulls it in)"
        )
    })
}

fn allowed(s: &LinuxSeccomp) -> BTreeSet<String> {
    s.syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names().iter().cloned())
        .collect()
}

#[test]
fn containers_profile_converts_for_x86_64() {
    let json = host_profile();
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let s = convert_docker_profile(&json, &caps, "x86_64").unwrap();
    assert!(!s.syscalls().as_ref().unwrap().is_empty());
    assert_eq!(s.architectures().as_ref().unwrap()[0], Arch::ScmpArchX86_64);
    let base = allowed(&s);
    for name in ["read", "write", "execve", "arch_prctl", "chroot"] {
        assert!(base.contains(name), "{name} should be allowed");
    }
    for name in ["bpf", "open_by_handle_at", "cacheflush", "iopl"] {
        assert!(!base.contains(name), "{name} should not be allowed with the default caps on x86_64");
    }

    let mut with_admin = caps.clone();
    with_admin.push("CAP_SYS_ADMIN".into());
    let admin = allowed(&convert_docker_profile(&json, &with_admin, "x86_64").unwrap());
    assert!(admin.is_superset(&base));
    assert!(admin.len() > base.len(), "SYS_ADMIN must allow more");
    assert!(admin.contains("bpf") && admin.contains("perf_event_open"));
}

#[test]
fn host_profile_is_the_default_choice_when_present() {
    let c = seccomp_choice(&[], |p| std::fs::read_to_string(p)).unwrap();
    assert!(matches!(c, SeccompChoice::Docker { .. }), "{c:?}");
}
