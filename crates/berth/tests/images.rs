//! System tests of the image store: the real `berth` binary and daemon
//! against a real registry (Debian's docker-registry on loopback) and the
//! busybox test images from `scripts/mkimages.py`.

mod berthd;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use berthd::Berthd;
use serde_json::Value;
use support::{image_digests, images, require_root, Registry};

fn layout(name: &str) -> String {
    images().join(name).display().to_string()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no test image for {other}"),
    }
}

fn digest_of(d: &Berthd, name: &str) -> String {
    d.json(&["image", "inspect", name])["digest"].as_str().expect("digest").to_string()
}

#[test]
fn imports_every_format() {
    require_root();
    let d = Berthd::start();
    let digests = image_digests();

    let out = d.ok(&["image", "import", &layout("single")]);
    assert!(out.contains("oci-layout"), "{out}");
    assert_eq!(digest_of(&d, "localhost/single"), digests["single"]["manifest"].as_str().unwrap());

    d.ok(&["image", "import", &layout("single.oci.tar"), "--tag", "archive:1"]);
    assert_eq!(digest_of(&d, "archive:1"), digests["single"]["manifest"].as_str().unwrap());

    let out = d.ok(&["image", "import", &layout("docker-save.tar")]);
    assert!(out.contains("docker-archive"), "{out}");
    let dsave = d.json(&["image", "inspect", "dsave:1"]);
    assert_eq!(dsave["id"], digests["docker-save"]["config"]);
    assert_eq!(dsave["layers"][0]["diff_id"], digests["single"]["diff_ids"][0]);

    d.ok(&[
        "image",
        "import",
        &layout("rootfs"),
        "--tag",
        "fromdir:1",
        "--config-cmd",
        r#"["/bin/echo","hi"]"#,
        "--config-env",
        "GREETING=hello",
        "--config-workdir",
        "/tmp",
    ]);
    let dir = d.json(&["image", "inspect", "fromdir:1"]);
    assert_eq!(dir["config"]["cmd"], serde_json::json!(["/bin/echo", "hi"]));
    assert!(dir["config"]["env"].as_array().unwrap().iter().any(|e| e == "GREETING=hello"));
    assert!(dir["config"]["env"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().starts_with("PATH=")));
    assert_eq!(dir["config"]["working_dir"], "/tmp");
    assert_eq!(dir["architecture"], host_arch());
    // The same tree packs to the same layer: imports are reproducible.
    d.ok(&["image", "import", &layout("rootfs"), "--tag", "fromdir:2", "--config-cmd", r#"["/bin/echo","hi"]"#]);
    assert_eq!(
        d.json(&["image", "inspect", "fromdir:2"])["layers"][0]["diff_id"],
        dir["layers"][0]["diff_id"],
        "packing a directory twice must give the same diff_id"
    );

    d.ok(&["image", "import", &layout("rootfs.tar"), "--tag", "fromtar:1"]);
    assert_eq!(d.json(&["image", "inspect", "fromtar:1"])["config"]["cmd"], serde_json::json!(["/bin/sh"]));

    d.ok(&["image", "import", &layout("multiarch")]);
    let m = d.json(&["image", "inspect", "localhost/multiarch"]);
    assert_eq!(m["architecture"], host_arch(), "the host's platform is chosen from the index");
    assert_eq!(m["digest"], digests["multiarch"]["manifests"][host_arch()]);

    // A rootfs has no name of its own.
    let (code, err) = d.fails(&["image", "import", &layout("rootfs")]);
    assert_eq!(code, 1);
    assert!(err.contains("--tag"), "{err}");
    let (_, err) = d.fails(&["image", "import", "/nonexistent/thing"]);
    assert!(err.contains("/nonexistent/thing"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}

#[test]
fn export_and_reimport_keep_digests() {
    require_root();
    let d = Berthd::start();
    d.ok(&["image", "import", &layout("multi")]);
    let before = digest_of(&d, "localhost/multi");
    let archive = d.dir().join("multi.tar");
    let archive = archive.to_str().unwrap();
    d.ok(&["image", "export", "localhost/multi", archive]);
    let (_, err) = d.fails(&["image", "export", "localhost/multi", archive]);
    assert!(err.contains("already exists"), "export never overwrites: {err}");

    let other = Berthd::start();
    let out = other.ok(&["image", "import", archive]);
    assert!(out.contains("oci-archive"), "{out}");
    assert_eq!(digest_of(&other, "localhost/multi"), before);
    // skopeo reads what berth writes.
    let s = std::process::Command::new("skopeo").args(["inspect", &format!("oci-archive:{archive}")]).output().unwrap();
    assert!(s.status.success(), "skopeo cannot read berth's archive: {}", String::from_utf8_lossy(&s.stderr));
}

#[test]
fn push_then_pull_round_trip_skips_present_blobs() {
    require_root();
    let reg = Registry::start();
    let d = Berthd::start();
    d.ok(&["image", "import", &layout("multi")]);
    let want = digest_of(&d, "localhost/multi");
    let remote = reg.image_ref("test/multi:1");
    d.ok(&["tag", "localhost/multi", &remote]);
    // An ID is not a destination: it would read as a Docker Hub repository.
    let id = d.json(&["image", "inspect", &remote])["id"].as_str().unwrap()[7..19].to_string();
    let (code, err) = d.fails(&["push", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("not a name of a stored image"), "{err}");
    d.ok(&["push", &remote]);
    assert_eq!(reg.http_status(&format!("/v2/test/multi/manifests/{want}"), None), 200);

    d.ok(&["rmi", &remote]);
    d.ok(&["rmi", "localhost/multi"]);
    assert!(d.json(&["images"]).as_array().unwrap().is_empty());
    assert!(d.blob_files().is_empty(), "rmi collects unreferenced blobs: {:?}", d.blob_files());
    assert!(d.layer_dirs().is_empty(), "rmi collects unpacked layers: {:?}", d.layer_dirs());

    let out = d.run(&["pull", &remote]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(digest_of(&d, &remote), want);
    let inspect = d.json(&["image", "inspect", &remote]);
    assert_eq!(inspect["layers"].as_array().unwrap().len(), 3);
    assert!(inspect["repo_digests"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().ends_with(&want)));

    // Pull again under another tag: nothing is downloaded twice.
    reg.push(&format!("oci:{}:multi", layout("multi")), "test/multi:2");
    let out = d.run(&["pull", &reg.image_ref("test/multi:2")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches(": exists").count(), 3, "all three layers were already present:\n{err}");
    assert!(!err.contains("downloading"), "{err}");

    let q = d.ok(&["pull", "-q", &remote]);
    assert_eq!(q.trim(), want);
}

#[test]
fn pull_resolves_the_host_platform_from_an_index() {
    require_root();
    let reg = Registry::start();
    reg.push(&format!("oci:{}:multiarch", layout("multiarch")), "test/multiarch:1");
    let d = Berthd::start();
    let remote = reg.image_ref("test/multiarch:1");
    d.ok(&["pull", &remote]);
    let digests = image_digests();
    let inspect = d.json(&["image", "inspect", &remote]);
    assert_eq!(inspect["digest"], digests["multiarch"]["manifests"][host_arch()]);
    let index = digests["multiarch"]["index"].as_str().unwrap();
    assert!(inspect["repo_digests"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().ends_with(index)));
    // The other platform on request.
    let foreign = digests["multiarch"]["foreign_arch"].as_str().unwrap();
    d.ok(&["pull", "--platform", &format!("linux/{foreign}"), &reg.image_ref("test/multiarch:1")]);
    assert_eq!(d.json(&["image", "inspect", &remote])["architecture"], foreign);
    let (_, err) = d.fails(&["pull", "--platform", "linux/s390x", &remote]);
    assert!(err.contains("linux/s390x") && err.contains("available"), "{err}");
}

#[test]
fn basic_auth_login_and_refusals() {
    require_root();
    let reg = Registry::start_with_auth("alice", "wonderland");
    reg.push(&format!("oci:{}:single", layout("single")), "private/single:1");
    let d = Berthd::start();
    let remote = reg.image_ref("private/single:1");

    let (code, err) = d.fails(&["pull", &remote]);
    assert_eq!(code, 1);
    assert!(err.contains("berth login"), "names the fix: {err}");

    let (_, err) = d.fails(&["login", &reg.addr, "-u", "alice", "-p", "wrong"]);
    assert!(err.contains("refused"), "{err}");
    assert!(!d.root.join("images/auth.json").exists(), "wrong credentials are never saved");

    d.ok(&["login", &reg.addr, "-u", "alice", "-p", "wonderland"]);
    let mode = fs::metadata(d.root.join("images/auth.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    d.ok(&["pull", &remote]);
    d.ok(&["tag", &remote, &reg.image_ref("private/copy:1")]);
    d.ok(&["push", &reg.image_ref("private/copy:1")]);

    d.ok(&["logout", &reg.addr]);
    d.ok(&["rmi", &remote]);
    let (_, err) = d.fails(&["pull", &remote]);
    assert!(err.contains("berth login"), "{err}");
}

#[test]
fn mirror_serves_when_the_origin_is_unreachable_and_is_skipped_when_down() {
    require_root();
    let mirror = Registry::start();
    mirror.push(&format!("oci:{}:single", layout("single")), "team/app:1");
    // A loopback origin nobody listens on: unreachable without leaving the host.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let origin = format!("127.0.0.1:{dead}");
    let d = Berthd::start_with_config(&format!("[registries.\"{origin}\"]\nmirrors = [\"http://{}\"]\n", mirror.addr));
    let remote = format!("{origin}/team/app:1");
    let out = d.run(&["pull", &remote]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("Using mirror {}", mirror.addr)), "{err}");
    assert_eq!(digest_of(&d, &remote), image_digests()["single"]["manifest"].as_str().unwrap());

    // Mirror down, origin up: a warning, then the origin.
    let origin = Registry::start();
    origin.push(&format!("oci:{}:single", layout("single")), "team/app:1");
    let d2 = Berthd::start_with_config(&format!(
        "[registries.\"{}\"]\nmirrors = [\"http://127.0.0.1:{dead}\"]\n",
        origin.addr
    ));
    let out = d2.run(&["pull", &origin.image_ref("team/app:1")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: mirror") && err.contains("trying the next source"), "{err}");
}

#[test]
fn tampered_blob_is_rejected_and_nothing_is_stored() {
    require_root();
    let reg = Registry::start();
    reg.push(&format!("oci:{}:multi", layout("multi")), "test/multi:1");
    let digests = image_digests();
    let layer = digests["multi"]["layers"][2].as_str().unwrap();
    let path = reg.blob_path(layer);
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&path, data).unwrap();

    let d = Berthd::start();
    let (code, err) = d.fails(&["pull", &reg.image_ref("test/multi:1")]);
    assert_eq!(code, 1);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(d.json(&["images"]).as_array().unwrap().is_empty());
    assert!(d.blob_files().is_empty(), "no blob of a failed pull stays: {:?}", d.blob_files());
    assert!(d.tmp_files().is_empty(), "no partial file stays: {:?}", d.tmp_files());
    assert!(d.layer_dirs().is_empty(), "no layer of a failed pull stays: {:?}", d.layer_dirs());

    // A tampered layout on import, too.
    let (_, err) = d.fails(&["image", "import", &layout("hostile/tampered")]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(d.blob_files().is_empty());
}

#[test]
fn hostile_layers_are_rejected_and_leave_nothing() {
    require_root();
    let d = Berthd::start_with_config("[images]\nmax_layer_bytes = 16777216\n");
    let cases = [
        ("escape-dotdot", ".."),
        ("escape-abs", "absolute"),
        ("symlink-through", "symlink"),
        ("hardlink-out", "hardlink"),
        ("device", "device"),
        ("bomb", "max_layer_bytes"),
    ];
    for (name, expect) in cases {
        let (code, err) = d.fails(&["image", "import", &layout(&format!("hostile/{name}"))]);
        assert_eq!(code, 1, "{name}");
        assert!(err.to_lowercase().contains(expect), "{name}: expected {expect:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one-line error: {err}");
        assert!(d.json(&["images"]).as_array().unwrap().is_empty(), "{name}");
        assert!(d.layer_dirs().is_empty(), "{name}: layer dirs left: {:?}", d.layer_dirs());
        assert!(d.blob_files().is_empty(), "{name}: blobs left: {:?}", d.blob_files());
    }
    assert!(!std::path::Path::new("/escaped").exists() && !std::path::Path::new("/etc/escaped-abs").exists());
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

#[test]
fn system_df_shows_what_sharing_saves() {
    require_root();
    let d = Berthd::start();
    d.ok(&["image", "import", &layout("single")]);
    d.ok(&["image", "import", &layout("multi")]);
    let df = d.json(&["system", "df"]);
    let rows = df["images"].as_array().unwrap();
    let row =
        |tag: &str| -> &Value { rows.iter().find(|r| r["repo_tags"][0].as_str().unwrap().contains(tag)).unwrap() };
    let single = row("single");
    let multi = row("multi");
    let base = single["unpacked"].as_u64().unwrap();
    assert!(base > 1_000_000, "busybox is about 2 MB unpacked: {base}");
    assert_eq!(single["shared"].as_u64().unwrap(), base, "single's only layer is shared with multi");
    assert_eq!(single["unique"].as_u64().unwrap(), 0);
    assert_eq!(multi["shared"].as_u64().unwrap(), base);
    assert!(multi["unique"].as_u64().unwrap() >= 1 << 20, "multi's own layers hold a 1 MiB file");
    let total = df["total_unpacked"].as_u64().unwrap();
    assert_eq!(total, single["unpacked"].as_u64().unwrap() + multi["unpacked"].as_u64().unwrap());
    assert_eq!(df["layers_on_disk"].as_u64().unwrap(), total - base, "the shared layer is on disk once");
    assert!(df["shared_savings"].as_u64().unwrap() >= base);
    let table = d.ok(&["system", "df", "-v"]);
    assert!(table.contains("SHARED") && table.contains("localhost/multi"), "{table}");
}

#[test]
fn rmi_untags_first_and_prune_collects() {
    require_root();
    let d = Berthd::start();
    d.ok(&["image", "import", &layout("single")]);
    d.ok(&["tag", "localhost/single", "other:1"]);
    let out = d.ok(&["rmi", "other:1"]);
    assert!(out.contains("Untagged") && !out.contains("Deleted"), "{out}");
    let (_, err) = d.fails(&["rmi", "nope:1"]);
    assert!(err.contains("no such image"), "{err}");
    // An ID prefix works like docker's.
    let id = d.json(&["images"])[0]["id"].as_str().unwrap()[7..19].to_string();
    assert!(d.ok(&["rmi", &id]).contains("Deleted"));
    assert!(d.blob_files().is_empty());
    d.ok(&["image", "import", &layout("single")]);
    let out = d.ok(&["image", "prune", "--all"]);
    assert!(out.contains("Deleted image"), "{out}");
    assert!(d.blob_files().is_empty() && d.layer_dirs().is_empty());
}

#[test]
fn a_full_disk_fails_cleanly() {
    require_root();
    let dir = tempfile::Builder::new().prefix("berthd-full-").tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(root.clone());
    {
        let d = Berthd::start_at(dir, root.clone(), "");
        let (code, err) = d.fails(&["image", "import", &layout("multi")]);
        assert_eq!(code, 1);
        assert!(err.contains("no space left"), "{err}");
        assert!(d.json(&["images"]).as_array().unwrap().is_empty());
        assert!(d.blob_files().is_empty(), "{:?}", d.blob_files());
        assert!(d.layer_dirs().is_empty(), "{:?}", d.layer_dirs());
        assert!(d.tmp_files().is_empty(), "{:?}", d.tmp_files());
        // What fits still works afterwards.
        d.ok(&["image", "import", &layout("rootfs"), "--tag", "small:1"]);
    }
}

#[test]
fn a_crash_during_a_pull_leaves_no_partial_blob() {
    require_root();
    let reg = Registry::start();
    // A layer big enough that the pull is still running when the daemon dies.
    let src = tempfile::tempdir().unwrap();
    let big = src.path().join("rootfs");
    fs::create_dir_all(&big).unwrap();
    let mut data = vec![0u8; 48 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(big.join("noise.bin"), &data).unwrap();
    let mut d = Berthd::start();
    d.ok(&["image", "import", big.to_str().unwrap(), "--tag", &reg.image_ref("big/noise:1")]);
    d.ok(&["push", &reg.image_ref("big/noise:1")]);
    d.ok(&["rmi", &reg.image_ref("big/noise:1")]);

    let child = std::process::Command::new(berthd::BERTH)
        .args(["pull", &reg.image_ref("big/noise:1")])
        .env("BERTH_SOCKET", &d.socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.crash_and_restart();
    let mut child = child;
    let _ = child.wait();
    assert!(d.tmp_files().is_empty(), "temporaries are cleared on start: {:?}", d.tmp_files());
    for name in d.blob_files() {
        let bytes = fs::read(d.root.join("images/blobs/sha256").join(&name)).unwrap();
        assert_eq!(support::sha256_digest(&bytes), format!("sha256:{name}"), "every visible blob is whole");
    }
    // The pull can simply be run again.
    d.ok(&["pull", &reg.image_ref("big/noise:1")]);
}

#[test]
fn unreachable_daemon_and_bad_input_give_one_line() {
    let out = std::process::Command::new(berthd::BERTH)
        .args(["images"])
        .env("BERTH_SOCKET", "/nonexistent/berth.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("berth daemon") && err.contains("/nonexistent/berth.sock"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    require_root();
    let d = Berthd::start();
    // (No reference here may parse with a registry host: it would be looked up.)
    for bad in ["UPPER", "a b", "app:", "x@sha256:123", "a//b"] {
        let (code, err) = d.fails(&["pull", bad]);
        assert_eq!(code, 1, "{bad}");
        assert!(err.contains("invalid image reference"), "{bad}: {err}");
    }
}

#[test]
fn pulls_docker_schema2_images_and_reports_unknown_tags() {
    require_root();
    let reg = Registry::start();
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:single", layout("single")))
        .arg(format!("docker://{}", reg.image_ref("docker/single:1")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = Berthd::start();
    d.ok(&["pull", &reg.image_ref("docker/single:1")]);
    let inspect = d.json(&["image", "inspect", &reg.image_ref("docker/single:1")]);
    assert_eq!(inspect["media_type"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(inspect["layers"][0]["media_type"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    // The socket is root-only.
    let mode = fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (code, err) = d.fails(&["pull", &reg.image_ref("docker/single:nope")]);
    assert_eq!(code, 1);
    assert!(err.contains("manifest unknown"), "{err}");
}

#[test]
fn unsupported_media_types_are_refused_by_name() {
    require_root();
    // A copy of `single` whose layer claims a media type berth does not know.
    let dir = tempfile::tempdir().unwrap();
    let src = images().join("single");
    let dst = dir.path().join("odd");
    fs::create_dir_all(dst.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    fs::copy(src.join("oci-layout"), dst.join("oci-layout")).unwrap();
    let digests = image_digests();
    let manifest_hex = &digests["single"]["manifest"].as_str().unwrap()[7..];
    let mut manifest: Value =
        serde_json::from_slice(&fs::read(src.join("blobs/sha256").join(manifest_hex)).unwrap()).unwrap();
    manifest["layers"][0]["mediaType"] = "application/vnd.example.unknown.layer".into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = support::sha256_digest(&bytes);
    fs::write(dst.join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "odd"}}]});
    fs::write(dst.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let d = Berthd::start();
    let (code, err) = d.fails(&["image", "import", dst.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unsupported media type") && err.contains("vnd.example.unknown.layer"), "{err}");
    assert!(d.blob_files().is_empty(), "{:?}", d.blob_files());
}
