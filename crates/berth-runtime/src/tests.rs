//! Tests of `build_spec` as a whole; the modules test their own parts.

use std::path::Path;

use berth_core::api::{ContainerCreateRequest, IdMapping, ImageRunConfig, ResourceLimits, SecurityOptions};
use oci_spec::runtime::{Capability, LinuxNamespaceType, LinuxSeccompAction, Spec};

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app\n";

fn image() -> ImageRunConfig {
    ImageRunConfig {
        entrypoint: vec!["/bin/entry".into()],
        cmd: vec!["serve".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "MODE=prod".into()],
        working_dir: Some("/srv".into()),
        ..Default::default()
    }
}

fn build(req: &ContainerCreateRequest) -> Result<Spec, SpecError> {
    build_with(req, SeccompChoice::Default)
}

fn build_with(req: &ContainerCreateRequest, seccomp: SeccompChoice) -> Result<Spec, SpecError> {
    let img = image();
    build_spec(&SpecInput { seccomp, ..input(&img, req) })
}

/// The input most tests start from.
fn input<'a>(img: &'a ImageRunConfig, req: &'a ContainerCreateRequest) -> SpecInput<'a> {
    SpecInput {
        id: ID,
        rootfs: Path::new("/var/lib/berth/containers/x/rootfs"),
        image: img,
        request: req,
        cgroups_path: format!("/berth/{ID}"),
        passwd: Some(PASSWD),
        group: Some(GROUP),
        seccomp: SeccompChoice::Default,
        resolv_conf: None,
        hosts: None,
        network: Default::default(),
        host: HostInfo {
            arch: "x86_64".into(),
            kernel_release: Some("6.1.0".into()),
            max_nofile: None,
            capabilities: None,
        },
    }
}

fn security(f: impl FnOnce(&mut SecurityOptions)) -> ContainerCreateRequest {
    let mut req = ContainerCreateRequest { image: "busybox".into(), ..Default::default() };
    f(&mut req.security);
    req
}

fn caps_of(spec: &Spec) -> Vec<String> {
    let c = spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
    let mut v: Vec<String> = c.bounding().as_ref().unwrap().iter().map(|c| format!("CAP_{c}")).collect();
    v.sort();
    v
}

fn mount_opts(spec: &Spec, dest: &str) -> Vec<String> {
    let m = spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(dest));
    m.unwrap_or_else(|| panic!("no mount at {dest}")).options().clone().unwrap_or_default()
}

#[test]
fn default_spec_is_hardened() {
    let spec = build(&ContainerCreateRequest::default()).unwrap();
    assert_eq!(spec.version(), "1.0.2");
    assert_eq!(spec.hostname().as_deref(), Some(&ID[..12]));
    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.readonly(), Some(false));

    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/entry", "serve"]);
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert!(p.oom_score_adj().is_none());
    let rl = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!((rl.typ(), rl.soft(), rl.hard()), (oci_spec::runtime::PosixRlimitType::RlimitNofile, 1048576, 1048576));

    let mut want: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(caps_of(&spec), want);
    let c = p.capabilities().as_ref().unwrap();
    assert_eq!(c.effective(), c.bounding());
    assert_eq!(c.permitted(), c.bounding());
    assert!(c.inheritable().is_none() && c.ambient().is_none());

    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<LinuxNamespaceType> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup
        ]
    );
    assert!(linux.namespaces().as_ref().unwrap().iter().all(|n| n.path().is_none()), "no host namespaces");
    assert_eq!(linux.masked_paths().as_ref().unwrap(), &MASKED_PATHS.to_vec());
    assert_eq!(linux.readonly_paths().as_ref().unwrap(), &READONLY_PATHS.to_vec());
    assert_eq!(linux.cgroups_path().as_deref(), Some(Path::new(&format!("/berth/{ID}"))));
    assert_eq!(linux.seccomp().as_ref().unwrap().default_action(), LinuxSeccompAction::ScmpActErrno);
    assert!(mount_opts(&spec, "/sys").contains(&"ro".to_string()));
    assert!(mount_opts(&spec, "/sys/fs/cgroup").contains(&"ro".to_string()));
}

#[test]
fn nofile_is_capped_at_the_hosts_hard_limit() {
    let img = image();
    let req = ContainerCreateRequest::default();
    let nofile = |max_nofile| {
        let host = HostInfo { max_nofile, ..HostInfo::default() };
        let input = SpecInput {
            id: ID,
            rootfs: Path::new("/r"),
            image: &img,
            request: &req,
            cgroups_path: "/b".into(),
            passwd: None,
            group: None,
            seccomp: SeccompChoice::Default,
            resolv_conf: None,
            hosts: None,
            network: Default::default(),
            host,
        };
        let spec = build_spec(&input).unwrap();
        let rl = spec.process().as_ref().unwrap().rlimits().as_ref().unwrap()[0];
        (rl.soft(), rl.hard())
    };
    assert_eq!(nofile(None), (NOFILE_LIMIT, NOFILE_LIMIT));
    assert_eq!(nofile(Some(20_000)), (20_000, 20_000));
    assert_eq!(nofile(Some(u64::MAX)), (NOFILE_LIMIT, NOFILE_LIMIT));
}

#[test]
fn privileged_relaxes_only_what_it_must() {
    let spec = build(&security(|s| s.privileged = true)).unwrap();
    assert_eq!(caps_of(&spec).len(), ALL_CAPS.len());
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
    assert!(mount_opts(&spec, "/sys").contains(&"rw".to_string()));
    assert!(mount_opts(&spec, "/sys/fs/cgroup").contains(&"rw".to_string()));
    let devices = linux.resources().as_ref().unwrap().devices().as_ref().unwrap();
    assert!(devices.len() == 1 && devices[0].allow());
    // Still confined in its own namespaces, and no_new_privileges stays on.
    assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
    assert_eq!(spec.process().as_ref().unwrap().no_new_privileges(), Some(true));
    // Privileged does not excuse a typo.
    let e = build(&security(|s| (s.privileged, s.cap_add) = (true, vec!["NOPE".into()]))).unwrap_err();
    assert!(matches!(e, SpecError::UnknownCapability { .. }));
}

#[test]
fn capabilities_are_limited_to_what_the_host_can_grant() {
    let img = image();
    let build_on = |req: &ContainerCreateRequest, host_caps: Vec<String>| {
        build_spec(&SpecInput {
            id: ID,
            rootfs: Path::new("/r"),
            image: &img,
            request: req,
            cgroups_path: "/b".into(),
            passwd: None,
            group: None,
            seccomp: SeccompChoice::Default,
            resolv_conf: None,
            hosts: None,
            network: Default::default(),
            host: HostInfo { capabilities: Some(host_caps), ..HostInfo::default() },
        })
    };
    // A host whose bounding set lacks CAP_SYS_RESOURCE.
    let host = caps_from_mask(0x1ff_feff_ffff);
    let spec = build_on(&security(|s| s.privileged = true), host.clone()).unwrap();
    assert_eq!(caps_of(&spec).len(), ALL_CAPS.len() - 1);
    assert!(!caps_of(&spec).contains(&"CAP_SYS_RESOURCE".to_string()));
    let spec = build_on(&security(|s| s.cap_add = vec!["ALL".into()]), host.clone()).unwrap();
    assert_eq!(caps_of(&spec).len(), ALL_CAPS.len() - 1);
    let e = build_on(&security(|s| s.cap_add = vec!["sys_resource".into()]), host.clone()).unwrap_err();
    assert!(matches!(&e, SpecError::CapabilityUnavailable { name } if name == "CAP_SYS_RESOURCE"), "{e}");
    // A host without CAP_SETFCAP still runs containers, with one cap fewer.
    let host: Vec<String> = ALL_CAPS.iter().filter(|c| **c != "CAP_SETFCAP").map(|c| c.to_string()).collect();
    let spec = build_on(&ContainerCreateRequest::default(), host).unwrap();
    assert_eq!(caps_of(&spec).len(), DEFAULT_CAPS.len() - 1);
}

#[test]
fn privileged_ignores_even_an_explicit_seccomp_profile() {
    let spec = build_with(&security(|s| s.privileged = true), SeccompChoice::Default).unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
}

#[test]
fn read_only_root() {
    let spec = build(&security(|s| s.read_only = true)).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn no_new_privileges_options() {
    let nnp = |opts: &[&str]| {
        let spec = build(&security(|s| s.security_opt = opts.iter().map(|o| o.to_string()).collect())).unwrap();
        spec.process().as_ref().unwrap().no_new_privileges()
    };
    assert_eq!(nnp(&[]), Some(true));
    assert_eq!(nnp(&["no-new-privileges"]), Some(true));
    assert_eq!(nnp(&["no-new-privileges=false"]), Some(false));
    assert_eq!(nnp(&["no-new-privileges:false", "no-new-privileges=true"]), Some(true));
    assert_eq!(nnp(&["seccomp=unconfined", "no-new-privileges=false"]), Some(false));
    for bad in ["apparmor=unconfined", "label=disable", "no-new-privileges=maybe"] {
        let e = build(&security(|s| s.security_opt = vec![bad.into()])).unwrap_err();
        assert!(matches!(&e, SpecError::InvalidSecurityOpt { opt } if opt == bad), "{bad}: {e}");
    }
}

#[test]
fn seccomp_choices() {
    let spec = build_with(&ContainerCreateRequest::default(), SeccompChoice::Unconfined).unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());

    let profile = DockerProfile::parse(
        "p",
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let choice = SeccompChoice::Docker { source: "/p.json".into(), profile };
    let spec = build_with(&ContainerCreateRequest::default(), choice.clone()).unwrap();
    let s = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActKillProcess);
    assert!(s.syscalls().as_ref().unwrap().is_empty(), "mount needs SYS_ADMIN");
    // The profile is resolved against the effective caps.
    let spec = build_with(&security(|s| s.cap_add = vec!["SYS_ADMIN".into()]), choice).unwrap();
    assert_eq!(spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap().syscalls().as_ref().unwrap().len(), 1);

    // The built-in one too: dropping SYS_CHROOT closes chroot.
    let has_chroot = |spec: &Spec| {
        let s = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
        s.syscalls().as_ref().unwrap().iter().any(|r| r.names().iter().any(|n| n == "chroot"))
    };
    assert!(has_chroot(&build(&ContainerCreateRequest::default()).unwrap()));
    assert!(!has_chroot(&build(&security(|s| s.cap_drop = vec!["SYS_CHROOT".into()])).unwrap()));

    let custom = default_seccomp(&[], "x86_64");
    let spec = build_with(&ContainerCreateRequest::default(), SeccompChoice::Profile(custom.clone())).unwrap();
    assert_eq!(spec.linux().as_ref().unwrap().seccomp().as_ref(), Some(&custom));
}

#[test]
fn cap_changes_reach_the_spec() {
    let spec = build(&security(|s| {
        s.cap_drop = vec!["ALL".into()];
        s.cap_add = vec!["net_bind_service".into()];
    }))
    .unwrap();
    assert_eq!(caps_of(&spec), ["CAP_NET_BIND_SERVICE"]);
    let e = build(&security(|s| s.cap_drop = vec!["CAP_FLY".into()])).unwrap_err();
    assert!(e.to_string().contains("CAP_FLY"), "{e}");
    let c = spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
    assert!(c.bounding().as_ref().unwrap().contains(&Capability::NetBindService));
}

#[test]
fn user_and_env_come_together() {
    let mut req =
        ContainerCreateRequest { user: Some("app".into()), env: vec!["MODE=dev".into()], ..Default::default() };
    req.hostname = Some("web-1".into());
    let spec = build(&req).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[50]);
    let env = p.env().as_ref().unwrap();
    assert_eq!(env, &["HOSTNAME=web-1", "PATH=/usr/bin:/bin", "MODE=dev", "HOME=/home/app"]);
    assert_eq!(spec.hostname().as_deref(), Some("web-1"));

    let img_user = ImageRunConfig { user: Some("1000:50".into()), ..image() };
    let spec = build_spec(&SpecInput {
        id: ID,
        rootfs: Path::new("/r"),
        image: &img_user,
        request: &ContainerCreateRequest::default(),
        cgroups_path: "/berth/x".into(),
        passwd: None,
        group: None,
        seccomp: SeccompChoice::Default,
        resolv_conf: None,
        hosts: None,
        network: Default::default(),
        host: HostInfo::default(),
    })
    .unwrap();
    let u = spec.process().as_ref().unwrap().user().clone();
    assert_eq!((u.uid(), u.gid(), u.additional_gids().is_none()), (1000, 50, true));

    let e = build(&ContainerCreateRequest { user: Some("ghost".into()), ..Default::default() }).unwrap_err();
    assert!(matches!(e, SpecError::UnknownUser { .. }));
}

#[test]
fn limits_volumes_and_tmpfs_reach_the_spec() {
    let req = ContainerCreateRequest {
        volumes: vec!["/srv/data:/data:ro".into()],
        tmpfs: vec!["/run:size=8m".into()],
        limits: ResourceLimits {
            memory: Some(256 << 20),
            memory_swap: None,
            cpus: Some(0.5),
            cpu_shares: Some(512),
            pids_limit: Some(64),
        },
        ..Default::default()
    };
    let spec = build(&req).unwrap();
    assert_eq!(mount_opts(&spec, "/data"), ["rbind", "ro", "rprivate"]);
    assert!(mount_opts(&spec, "/run").contains(&"size=8m".to_string()));
    let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    assert_eq!(r.memory().unwrap().limit(), Some(256 << 20));
    assert_eq!(r.memory().unwrap().swap(), Some(512 << 20));
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(r.pids().unwrap().limit(), 64);

    for (bad, what) in [
        (ContainerCreateRequest { volumes: vec!["data:/data".into()], ..Default::default() }, "volume"),
        (ContainerCreateRequest { tmpfs: vec!["/run:exec=1".into()], ..Default::default() }, "tmpfs"),
        (
            ContainerCreateRequest {
                limits: ResourceLimits { memory: Some(1 << 20), ..Default::default() },
                ..Default::default()
            },
            "memory",
        ),
    ] {
        let e = build(&bad).unwrap_err().to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}

#[test]
fn labels_become_annotations_but_not_runtime_switches() {
    let mut req = ContainerCreateRequest::default();
    req.labels.insert("com.example.team".into(), "web".into());
    let spec = build(&req).unwrap();
    assert_eq!(spec.annotations().as_ref().unwrap().get("com.example.team").map(String::as_str), Some("web"));
    // Image labels stay out: an image must not configure its own confinement.
    let img =
        ImageRunConfig { labels: [("run.oci.keep_original_groups".to_string(), "1".to_string())].into(), ..image() };
    let spec = build_spec(&SpecInput {
        id: ID,
        rootfs: Path::new("/r"),
        image: &img,
        request: &ContainerCreateRequest::default(),
        cgroups_path: "/b".into(),
        passwd: None,
        group: None,
        seccomp: SeccompChoice::Default,
        resolv_conf: None,
        hosts: None,
        network: Default::default(),
        host: HostInfo::default(),
    })
    .unwrap();
    assert!(spec.annotations().as_ref().unwrap().is_empty());
    req.labels.insert("run.oci.keep_original_groups".into(), "1".into());
    assert!(matches!(build(&req), Err(SpecError::InvalidLabel { .. })));
    let mut req = ContainerCreateRequest::default();
    req.labels.insert(String::new(), "x".into());
    assert!(matches!(build(&req), Err(SpecError::InvalidLabel { .. })));
}

#[test]
fn identity_errors() {
    let img = image();
    let input = |id: &'static str, rootfs: &'static str, req: &'static ContainerCreateRequest| SpecInput {
        id,
        rootfs: Path::new(rootfs),
        image: &img,
        request: req,
        cgroups_path: "/b".into(),
        passwd: None,
        group: None,
        seccomp: SeccompChoice::Default,
        resolv_conf: None,
        hosts: None,
        network: Default::default(),
        host: HostInfo::default(),
    };
    static EMPTY: std::sync::LazyLock<ContainerCreateRequest> = std::sync::LazyLock::new(Default::default);
    assert!(matches!(build_spec(&input("abc", "/r", &EMPTY)), Err(SpecError::InvalidId { .. })));
    let upper = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(matches!(build_spec(&input(upper, "/r", &EMPTY)), Err(SpecError::InvalidId { .. })));
    assert!(matches!(build_spec(&input(ID, "rootfs", &EMPTY)), Err(SpecError::InvalidRootfs { .. })));
    for bad in ["", "-web", "web_1", "a..b", &"x".repeat(64)] {
        let req = ContainerCreateRequest { hostname: Some(bad.to_string()), ..Default::default() };
        assert!(matches!(build(&req), Err(SpecError::InvalidHostname { .. })), "{bad}");
    }
    let e = build(&ContainerCreateRequest { entrypoint: Some(vec![]), ..Default::default() }).unwrap_err();
    assert_eq!(e.to_string(), "no command: the image has no Cmd/Entrypoint; give one");
}

#[test]
fn spec_round_trips_and_has_the_fields_runc_requires() {
    let spec = build(&ContainerCreateRequest { volumes: vec!["/a:/b".into()], ..Default::default() }).unwrap();
    let json = to_canonical_json(&spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);

    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for pointer in [
        "/ociVersion",
        "/root/path",
        "/process/args/0",
        "/process/cwd",
        "/process/user/uid",
        "/process/user/gid",
        "/process/env",
        "/hostname",
        "/mounts/0/destination",
        "/linux/namespaces",
        "/linux/resources/devices",
        "/linux/seccomp/defaultAction",
        "/linux/seccomp/syscalls/0/names",
    ] {
        assert!(v.pointer(pointer).is_some(), "{pointer} missing");
    }
    assert!(v.pointer("/process/capabilities/inheritable").is_none());
    assert!(v.pointer("/process/oomScoreAdj").is_none());
}

#[test]
fn canonical_json_is_stable() {
    let spec = build(&security(|s| s.cap_add = vec!["ALL".into()])).unwrap();
    let a = to_canonical_json(&spec).unwrap();
    let b = to_canonical_json(&serde_json::from_str::<Spec>(&a).unwrap()).unwrap();
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let bounding: Vec<&str> = v
        .pointer("/process/capabilities/bounding")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let mut sorted = bounding.clone();
    sorted.sort();
    assert_eq!(bounding, sorted);
}

#[test]
fn network_modes_join_a_prepared_namespace_or_the_hosts() {
    let img = image();
    let req = ContainerCreateRequest::default();
    let build_mode = |network: NetworkMode<'_>, hosts: Option<&Path>| {
        let resolv_conf = Some(Path::new("/run/b/resolv.conf"));
        build_spec(&SpecInput { resolv_conf, hosts, network, ..input(&img, &req) }).unwrap()
    };
    let net_ns = |s: &Spec| {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .cloned()
    };
    let joined = build_mode(NetworkMode::Join(Path::new("/run/netns/berth-abc")), Some(Path::new("/run/b/hosts")));
    assert_eq!(net_ns(&joined).unwrap().path().as_deref(), Some(Path::new("/run/netns/berth-abc")));
    let hosts: Vec<_> =
        joined.mounts().as_ref().unwrap().iter().filter(|m| m.destination() == Path::new("/etc/hosts")).collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].source().as_deref(), Some(Path::new("/run/b/hosts")));

    let host = build_mode(NetworkMode::Host, None);
    assert!(net_ns(&host).is_none());
    // A sysctl in the host's namespace would change the host.
    assert!(host.linux().as_ref().unwrap().sysctl().as_ref().is_none_or(|s| s.is_empty()));
    assert!(net_ns(&build_mode(NetworkMode::Isolated, None)).unwrap().path().is_none());
}

fn auto(f: impl FnOnce(&mut ContainerCreateRequest)) -> ContainerCreateRequest {
    let mut req = ContainerCreateRequest {
        userns: Some("auto".into()),
        userns_mapping: Some(IdMapping { host_uid: 1_000_065_536, host_gid: 1_000_065_536, size: 65536 }),
        ..Default::default()
    };
    f(&mut req);
    req
}

#[test]
fn userns_auto_maps_root_to_the_allocated_range() {
    let spec = build(&auto(|_| {})).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let types: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert!(types.contains(&LinuxNamespaceType::User), "{types:?}");
    for maps in [linux.uid_mappings(), linux.gid_mappings()] {
        let maps = maps.as_ref().unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!((maps[0].container_id(), maps[0].host_id(), maps[0].size()), (0, 1_000_065_536, 65536));
    }
    let sysctl = linux.sysctl().as_ref().unwrap();
    assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 65535", "gids of the user namespace");
    // Its own network namespace: sysfs is mounted as usual.
    let sys = spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
    assert_eq!(sys.typ().as_deref(), Some("sysfs"));
}

#[test]
fn userns_host_or_absent_has_no_user_namespace() {
    for userns in [None, Some("host")] {
        let req = ContainerCreateRequest { userns: userns.map(String::from), ..Default::default() };
        let spec = build(&req).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let types: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        assert!(!types.contains(&LinuxNamespaceType::User), "{userns:?}");
        assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none(), "{userns:?}");
    }
}

#[test]
fn userns_in_a_joined_network_namespace_binds_sys() {
    let (img, req) = (image(), auto(|_| {}));
    let netns = Path::new("/run/berth/netns/x");
    for network in [NetworkMode::Join(netns), NetworkMode::Host] {
        let spec = build_spec(&SpecInput { network, ..input(&img, &req) }).unwrap();
        let sys = spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
        assert_eq!(sys.typ().as_deref(), Some("bind"), "{network:?}");
        assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
        let opts = sys.options().as_ref().unwrap();
        assert!(opts.iter().any(|o| o == "ro") && opts.iter().any(|o| o == "rbind"), "{opts:?}");
        let sysctl = spec.linux().as_ref().unwrap().sysctl().clone().unwrap_or_default();
        assert!(sysctl.is_empty(), "a netns the userns does not own: {sysctl:?}");
    }
}

#[test]
fn userns_joins_the_user_namespace_that_owns_its_network_namespace() {
    let img = image();
    let (net, user) = (Path::new("/run/netns/bt-x"), Path::new("/run/berth/userns/bt-x"));
    let network = NetworkMode::JoinOwned { net, user };
    let req = auto(|_| {});
    let spec = build_spec(&SpecInput { network, ..input(&img, &req) }).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let path_of = |t| path_of_in(linux, t);
    assert_eq!(path_of(LinuxNamespaceType::Network).as_deref(), Some(net));
    assert_eq!(path_of(LinuxNamespaceType::User).as_deref(), Some(user));
    // The mapping stays in the spec: runc reads it for the root's owner.
    assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 1_000_065_536);
    // The namespace is the container's own: sysfs and its sysctls as usual.
    let sys = spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
    assert_eq!(sys.typ().as_deref(), Some("sysfs"));
    assert_eq!(linux.sysctl().as_ref().unwrap()["net.ipv4.ping_group_range"], "0 65535");

    // Without a user namespace of its own the container only joins the
    // network namespace (host root may enter any).
    let plain = ContainerCreateRequest::default();
    let spec = build_spec(&SpecInput { network, ..input(&img, &plain) }).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let types: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert!(!types.contains(&LinuxNamespaceType::User), "{types:?}");
    assert_eq!(path_of_in(linux, LinuxNamespaceType::Network).as_deref(), Some(net));
}

fn path_of_in(linux: &oci_spec::runtime::Linux, t: LinuxNamespaceType) -> Option<std::path::PathBuf> {
    linux.namespaces().as_ref().unwrap().iter().find(|n| n.typ() == t).unwrap().path().clone()
}

#[test]
fn userns_mistakes_are_refused_with_a_reason() {
    let cases: Vec<(ContainerCreateRequest, &str)> = vec![
        (auto(|r| r.userns_mapping = None), "allocates"),
        (auto(|r| r.userns = Some("host".into())), "without --userns=auto"),
        (auto(|r| r.userns = None), "without --userns=auto"),
        (auto(|r| r.userns = Some("keep-id".into())), "give auto or host"),
        (auto(|r| r.security.privileged = true), "--privileged"),
        (auto(|r| r.userns_mapping = Some(IdMapping { host_uid: 0, host_gid: 0, size: 65536 })), "root"),
        (auto(|r| r.user = Some("70000".into())), "outside its user namespace"),
        (auto(|r| r.user = Some("0:65536".into())), "gid 65536"),
    ];
    for (req, want) in cases {
        let e = build(&req).unwrap_err().to_string();
        assert!(e.contains(want), "{want:?} not in {e:?}");
    }
    assert!(build(&auto(|r| r.user = Some("65535:65535".into()))).is_ok());
}
