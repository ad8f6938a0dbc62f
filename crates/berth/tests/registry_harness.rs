//! Smoke test for the test harness itself: the registry starts, enforces auth
//! when asked, accepts a push of a generated image and stores its blobs where
//! `Registry::blob_path` says they are.

mod support;

use std::process::Command;

use support::{image_digests, images, sha256_digest, Registry};

fn single_layout() -> String {
    format!("oci:{}:single", images().join("single").display())
}

/// The pushed layer must sit at `blob_path`, byte for byte.
fn assert_layer_stored(reg: &Registry) {
    let digests = image_digests();
    let layer = digests["single"]["layers"][0].as_str().expect("single has a layer digest");
    let path = reg.blob_path(layer);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("layer not at {}: {e}\n--- registry log ---\n{}", path.display(), reg.log()));
    assert_eq!(sha256_digest(&data), layer);
}

#[test]
fn registry_without_auth() {
    let reg = Registry::start();
    assert_eq!(reg.http_status("/v2/", None), 200);
    reg.push(&single_layout(), "harness/single:1");
    assert_layer_stored(&reg);
    let manifest = image_digests()["single"]["manifest"].as_str().unwrap().to_string();
    assert_eq!(reg.http_status(&format!("/v2/harness/single/manifests/{manifest}"), None), 200);
}

#[test]
fn registry_with_auth() {
    let reg = Registry::start_with_auth("berth", "s3cret");
    assert_eq!(reg.http_status("/v2/", None), 401);
    assert_eq!(reg.http_status("/v2/", Some(("berth", "wrong"))), 401);
    assert_eq!(reg.http_status("/v2/", Some(("berth", "s3cret"))), 200);

    // Anonymous pushes are refused...
    let anonymous = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(single_layout())
        .arg(format!("docker://{}", reg.image_ref("harness/anon:1")))
        .output()
        .expect("run skopeo");
    assert!(!anonymous.status.success(), "anonymous push was accepted");

    // ...and authenticated ones accepted.
    reg.push(&single_layout(), "harness/single:1");
    assert_layer_stored(&reg);
}
