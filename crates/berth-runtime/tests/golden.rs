//! Golden test: the spec for a fixed, typical input, byte for byte.
//! `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-runtime --test golden`
//! rewrites the file; review the diff before keeping it.

use std::path::{Path, PathBuf};

use berth_core::api::{ContainerCreateRequest, ImageRunConfig, ResourceLimits};
use berth_runtime::{build_spec, to_canonical_json, HostInfo, SeccompChoice, SpecInput};

const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run with BERTH_UPDATE_GOLDEN=1 to create it", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{} differs from the generated spec from line {} on:\n  expected: {:?}\n  actual:   {:?}\n\
             rerun with BERTH_UPDATE_GOLDEN=1 if the change is intended, and review the diff",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line),
        );
    }
}

#[test]
fn default_spec_matches_golden() {
    let image = ImageRunConfig {
        entrypoint: vec!["/docker-entrypoint.sh".into()],
        cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "NGINX_VERSION=1.25.3".into(),
        ],
        working_dir: None,
        user: None,
        stop_signal: Some("SIGQUIT".into()),
        ..Default::default()
    };
    let request = ContainerCreateRequest {
        image: "nginx:1.25".into(),
        name: Some("web".into()),
        env: vec!["NGINX_PORT=8080".into()],
        volumes: vec!["/srv/www:/usr/share/nginx/html:ro".into()],
        tmpfs: vec!["/var/cache/nginx:size=16m".into()],
        labels: [("com.example.app".to_string(), "web".to_string())].into(),
        limits: ResourceLimits {
            memory: Some(128 << 20),
            memory_swap: None,
            cpus: Some(1.5),
            cpu_shares: None,
            pids_limit: Some(256),
        },
        ..Default::default()
    };
    let passwd = "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/nonexistent:/bin/false\n";
    let group = "root:x:0:\nnginx:x:101:\n";
    let spec = build_spec(&SpecInput {
        id: ID,
        rootfs: Path::new("/var/lib/berth/containers/3f4e5d6c7b8a/rootfs"),
        image: &image,
        request: &request,
        cgroups_path: format!("/berth/{ID}"),
        passwd: Some(passwd),
        group: Some(group),
        seccomp: SeccompChoice::Default,
        resolv_conf: Some(Path::new("/run/berth/resolv.conf")),
        hosts: None,
        network: Default::default(),
        host: HostInfo {
            arch: "x86_64".into(),
            kernel_release: Some("6.1.0-18-amd64".into()),
            max_nofile: None,
            capabilities: None,
        },
    })
    .unwrap();
    check_golden("default_spec.json", &to_canonical_json(&spec).unwrap());
}
