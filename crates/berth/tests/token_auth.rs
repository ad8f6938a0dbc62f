//! `berth login`, `pull` and `push` against a real registry (Debian's
//! docker-registry, distribution 2.8) that uses bearer-token auth, with a
//! token server the harness runs on loopback. All traffic stays on 127.0.0.1.

mod berthd;
mod support;

use berthd::Berthd;
use support::{image_digests, images, require_root, Registry};

const USER: &str = "alice";
const PASS: &str = "wonderland";

#[test]
fn token_auth_login_pull_and_push() {
    require_root();
    let reg = Registry::start_with_token_auth(USER, PASS);
    let tokens = reg.token_server();
    let manifest = image_digests()["single"]["manifest"].as_str().expect("single manifest digest").to_string();

    // The registry refuses anything without a token, and the harness's own
    // push goes through the token dance.
    assert_eq!(reg.http_status("/v2/", None), 401);
    assert_eq!(reg.http_status("/v2/", Some((USER, PASS))), 401, "basic auth is no token");
    reg.push(&format!("oci:{}:single", images().join("single").display()), "private/single:1");
    let manifest_path = format!("/v2/private/single/manifests/{manifest}");
    assert_eq!(reg.http_status_bearer(&manifest_path, &tokens.mint(&["repository:private/single:pull"])), 200);
    // Tokens are checked: one without access to the repository gets nowhere.
    assert_eq!(reg.http_status_bearer(&manifest_path, &tokens.mint(&["repository:private/other:pull"])), 401);

    let d = Berthd::start();
    let remote = reg.image_ref("private/single:1");

    // Anonymous: the token server refuses, and the error names the fix.
    let (code, err) = d.fails(&["pull", &remote]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("berth login"), "names the fix: {err}");

    // Wrong password: refused at the token server, nothing saved.
    let issued_before = tokens.issued().len();
    let (code, err) = d.fails(&["login", &reg.addr, "-u", USER, "-p", "wrong"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(!d.root.join("images/auth.json").exists(), "wrong credentials are never saved");
    assert_eq!(tokens.issued().len(), issued_before, "no token for wrong credentials");

    // Right password: the login probe gets a token (with no scope).
    d.ok(&["login", &reg.addr, "-u", USER, "-p", PASS]);
    assert!(d.root.join("images/auth.json").exists(), "credentials are saved after a successful login");
    let issued = tokens.issued();
    assert!(
        issued[issued_before..].iter().any(|t| t.subject == USER && t.scopes.is_empty()),
        "login asked the token server with the credentials: {issued:?}"
    );

    d.ok(&["pull", &remote]);
    let inspect = d.json(&["image", "inspect", &remote]);
    assert_eq!(inspect["digest"], manifest.as_str(), "{inspect}");

    // Push under another name: berth must ask for (and get) push access.
    let copy = reg.image_ref("private/copy:1");
    d.ok(&["tag", &remote, &copy]);
    d.ok(&["push", &copy]);
    let issued = tokens.issued();
    assert!(
        issued.iter().any(|t| t.scopes.iter().any(|s| s.starts_with("repository:private/copy:") && s.contains("push"))),
        "push was authorized by a token with push access to private/copy: {issued:?}"
    );
    // The registry has it, independently of berth...
    let copy_token = tokens.mint(&["repository:private/copy:pull"]);
    assert_eq!(
        reg.http_status_bearer(&format!("/v2/private/copy/manifests/{manifest}"), &copy_token),
        200,
        "pushed manifest is in the registry:\n{}",
        reg.log()
    );
    assert_eq!(reg.http_status_bearer("/v2/private/copy/manifests/1", &copy_token), 200, "tag 1 points at it");
    // ...and it pulls back whole.
    d.ok(&["rmi", &copy]);
    d.ok(&["rmi", &remote]);
    assert!(d.json(&["images"]).as_array().expect("image list").is_empty());
    d.ok(&["pull", &copy]);
    assert_eq!(d.json(&["image", "inspect", &copy])["digest"], manifest.as_str());

    // After logout, anonymous again.
    d.ok(&["logout", &reg.addr]);
    d.ok(&["rmi", &copy]);
    let (code, err) = d.fails(&["pull", &copy]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("berth login"), "{err}");
}
