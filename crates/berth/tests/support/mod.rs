//! Shared harness for berth's system tests.
//!
//! Include it from any integration test with `mod support;`. It provides:
//!
//! - [`Registry`]: a real registry (Debian's `docker-registry`, i.e.
//!   distribution 2.8) on 127.0.0.1, anonymous, with htpasswd auth or with
//!   bearer-token auth (and its own [`TokenServer`]), in its own temporary
//!   directory, killed when dropped;
//! - [`images`]: the test images built by `scripts/mkimages.py`, once per
//!   test binary;
//! - [`require_root`]: fail (never skip) tests that need root.

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

mod token;

pub use token::TokenServer;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Picking a free port and handing it to the registry is racy (another
/// process may take it in between), so a failed bind is retried this often.
const START_ATTEMPTS: usize = 5;
const IMAGES_DIR_PREFIX: &str = "berth-test-images-";
/// distribution 2.8 answers 404 `MANIFEST_UNKNOWN` for an OCI manifest or
/// index unless the request explicitly accepts its media type (`*/*` is not
/// enough), so every request lists the manifest types.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A running registry. Dropping it kills the process and deletes its storage.
pub struct Registry {
    /// `127.0.0.1:PORT`, as used in image references.
    pub addr: String,
    /// The filesystem driver's root directory.
    pub storage: PathBuf,
    /// Credentials when started with [`Registry::start_with_auth`] or
    /// [`Registry::start_with_token_auth`].
    pub creds: Option<(String, String)>,
    log_path: PathBuf,
    child: Child,
    /// The token server of a registry with token auth; it must outlive
    /// the registry process, which reads its certificate.
    token_server: Option<TokenServer>,
    // Declared last so it is removed only after the process is gone.
    tempdir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry that accepts anonymous pulls and pushes.
    pub fn start() -> Self {
        Self::spawn(Auth::None)
    }

    /// Starts a registry that requires HTTP basic auth for every request.
    pub fn start_with_auth(user: &str, pass: &str) -> Self {
        Self::spawn(Auth::Htpasswd(user, pass))
    }

    /// Starts a registry that requires a bearer token for every request,
    /// with a [`TokenServer`] on loopback that issues tokens to `user` (HTTP
    /// basic auth with `pass`), granting whatever they ask for. See
    /// [`Registry::token_server`].
    pub fn start_with_token_auth(user: &str, pass: &str) -> Self {
        Self::spawn(Auth::Token(user, pass))
    }

    fn spawn(auth: Auth<'_>) -> Self {
        let tempdir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("create registry tempdir");
        let storage = tempdir.path().join("storage");
        fs::create_dir(&storage).expect("create registry storage dir");
        let log_path = tempdir.path().join("registry.log");
        let config_path = tempdir.path().join("config.yml");

        let (creds, mut token_server, auth) = match auth {
            Auth::None => (None, None, String::new()),
            Auth::Htpasswd(user, pass) => {
                let htpasswd = tempdir.path().join("htpasswd");
                fs::write(&htpasswd, htpasswd_line(user, pass)).expect("write htpasswd");
                let config = format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", yaml_str(&htpasswd));
                (Some((user, pass)), None, config)
            }
            Auth::Token(user, pass) => {
                let server = TokenServer::start(user, pass);
                let config = server.registry_auth_config();
                (Some((user, pass)), Some(server), config)
            }
        };

        for attempt in 1..=START_ATTEMPTS {
            let addr = free_loopback_addr();
            // A fixed http.secret silences the "no HTTP secret" warning.
            // No blobdescriptor cache: tests tamper with blobs on disk and
            // must see the registry read them afresh.
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: berth-test-secret\n\
                 {auth}",
                yaml_str(&storage)
            );
            fs::write(&config_path, config).expect("write registry config");

            let log = fs::File::create(&log_path).expect("create registry log");
            let mut cmd = Command::new(REGISTRY_BIN);
            cmd.arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log);
            // REGISTRY_* variables override the config file; keep the test hermetic.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(key);
                }
            }
            let mut child =
                cmd.spawn().unwrap_or_else(|e| panic!("spawn {REGISTRY_BIN}: {e} (is docker-registry installed?)"));

            match wait_ready(&mut child, &addr) {
                Ok(()) => {
                    return Registry {
                        addr: addr.to_string(),
                        storage,
                        creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
                        log_path,
                        child,
                        token_server: token_server.take(),
                        tempdir,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    if log.contains("address already in use") && attempt < START_ATTEMPTS {
                        continue;
                    }
                    panic!("registry on {addr} did not start: {why}\n--- registry log ---\n{log}");
                }
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// Where distribution's filesystem driver keeps a blob, so tests can
    /// corrupt or delete it. Accepts a bare hex digest or `sha256:<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        assert!(hex.len() == 64, "not a sha256 digest: {digest:?}");
        self.storage.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// `ADDR/repo:tag` — an image reference pointing at this registry.
    pub fn image_ref(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// Status code of `GET path`, optionally with basic auth. The request
    /// accepts all manifest media types (see [`MANIFEST_ACCEPT`]).
    pub fn http_status(&self, path: &str, auth: Option<(&str, &str)>) -> u16 {
        let authorization = auth.map(|(user, pass)| format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())));
        self.http_status_with(path, authorization.as_deref())
    }

    /// Status code of `GET path` with `Authorization: Bearer TOKEN`, for a
    /// registry with token auth (see [`TokenServer::mint`]).
    pub fn http_status_bearer(&self, path: &str, token: &str) -> u16 {
        self.http_status_with(path, Some(&format!("Bearer {token}")))
    }

    fn http_status_with(&self, path: &str, authorization: Option<&str>) -> u16 {
        let addr: SocketAddr = self.addr.parse().expect("registry addr");
        http_get_status(addr, path, authorization)
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}\n{}", self.addr, self.log()))
    }

    /// The token server of a registry started with
    /// [`Registry::start_with_token_auth`]; panics for any other.
    pub fn token_server(&self) -> &TokenServer {
        self.token_server.as_ref().expect("this registry was not started with token auth")
    }

    /// Copies an image into this registry with skopeo (all platforms, so
    /// image indexes arrive whole), using [`Registry::creds`] if set (skopeo
    /// fetches a bearer token with them from a token registry's realm).
    /// `source` is a skopeo reference such as `oci:/path/single:single`;
    /// `dest` is `repo:tag`.
    pub fn push(&self, source: &str, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--quiet", "--dest-tls-verify=false"]);
        if let Some((user, pass)) = &self.creds {
            cmd.arg(format!("--dest-creds={user}:{pass}"));
        }
        cmd.arg(source).arg(format!("docker://{}", self.image_ref(dest)));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {source} -> {dest} failed: {}\n--- registry log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The registry's combined stdout/stderr so far (for assertion messages),
    /// followed by the token server's refusals if it has one.
    pub fn log(&self) -> String {
        let mut log = fs::read_to_string(&self.log_path).unwrap_or_default();
        if let Some(server) = &self.token_server {
            log.push_str("--- token server refusals ---\n");
            for refusal in server.refused() {
                log.push_str(&refusal);
                log.push('\n');
            }
        }
        log
    }

    /// The registry's temporary directory (config, htpasswd, log, storage).
    pub fn dir(&self) -> &Path {
        self.tempdir.path()
    }
}

/// How a registry authenticates clients.
enum Auth<'a> {
    None,
    /// HTTP basic auth against an htpasswd file with this one user.
    Htpasswd(&'a str, &'a str),
    /// Bearer tokens from a [`TokenServer`] that knows this one user.
    Token(&'a str, &'a str),
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Only our own child, by PID; errors mean it already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An htpasswd line with a bcrypt hash: distribution accepts nothing else.
fn htpasswd_line(user: &str, pass: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, pass])
        .output()
        .expect("run htpasswd (Debian package apache2-utils)");
    assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
    // htpasswd -n ends the entry with an empty line; keep just the entry.
    let text = String::from_utf8(out.stdout).expect("htpasswd output is UTF-8");
    format!("{}\n", text.trim_end())
}

/// A path as a YAML scalar; JSON strings are valid YAML, so quote via `serde_json`.
fn yaml_str(path: &Path) -> String {
    serde_json::to_string(path.to_str().expect("UTF-8 path")).expect("serialize path")
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_addr() -> SocketAddr {
    let mut last_err = None;
    for _ in 0..START_ATTEMPTS {
        match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => return addr,
            Err(e) => last_err = Some(e),
        }
    }
    panic!("no free loopback port: {last_err:?}")
}

/// Polls `GET /v2/` until the registry answers 200 or 401.
fn wait_ready(child: &mut Child, addr: &SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("no attempt made");
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("process exited early with {status}"));
        }
        match http_get_status(*addr, "/v2/", None) {
            Ok(200 | 401) => return Ok(()),
            Ok(code) => last = format!("GET /v2/ answered {code}"),
            Err(e) => last = format!("GET /v2/: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready after {READY_TIMEOUT:?} ({last})"))
}

/// Minimal HTTP/1.0 client: std only, and 1.0 so the server closes the
/// connection instead of keeping it alive.
/// `authorization` is the header's value (`Basic …`, `Bearer …`).
fn http_get_status(addr: SocketAddr, path: &str, authorization: Option<&str>) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let auth_header = authorization.map(|value| format!("Authorization: {value}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {MANIFEST_ACCEPT}\r\n{auth_header}\r\n");
    stream.write_all(request.as_bytes())?;

    // Only the status line matters; stop reading once it is complete.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad status line {status_line:?}")))
}

/// Standard base64 with padding (no base64 crate among the dev-dependencies).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The directory produced by `scripts/mkimages.py`, built on first use.
///
/// Layout: `single/`, `multi/`, `multiarch/`, `hostile/<name>/` (OCI
/// layouts whose ref name is the directory name), `docker-save.tar`,
/// `single.oci.tar`, `rootfs/`, `rootfs.tar` and `digests.json` (see
/// [`image_digests`]). Each test binary (process) gets its own copy, so a
/// test may modify files in it only if no other test in the same binary
/// relies on them.
pub fn images() -> &'static Path {
    static IMAGES: OnceLock<PathBuf> = OnceLock::new();
    IMAGES.get_or_init(build_images)
}

fn build_images() -> PathBuf {
    let tmp = std::env::temp_dir();
    remove_stale_image_dirs(&tmp);
    let out = tmp.join(format!("{IMAGES_DIR_PREFIX}{}", std::process::id()));
    let script = workspace_root().join("scripts/mkimages.py");
    let result = Command::new("python3")
        .arg(&script)
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run python3 {}: {e}", script.display()));
    assert!(
        result.status.success(),
        "{} failed ({}):\n{}{}",
        script.display(),
        result.status,
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// Image directories are never removed by their own process (statics are
/// not dropped), so each build sweeps those left by processes that are gone.
fn remove_stale_image_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|n| n.strip_prefix(IMAGES_DIR_PREFIX)).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// `digests.json` from [`images`]: per image its `manifest`, `config`,
/// `layers` (compressed digests) and `diff_ids`; keys are `single`, `multi`,
/// `docker-save`, `hostile/<name>`, and `multiarch` (which has `index`,
/// `manifests` by architecture and `foreign_arch` instead).
pub fn image_digests() -> serde_json::Value {
    let path = images().join("digests.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Fails the calling test unless it runs as root: tests that need root must
/// fail loudly rather than pass by skipping their assertions.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    // "Uid:\treal\teffective\tsaved\tfs"
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert!(euid == "0", "this test needs root (effective uid is {euid}); run the integration tests as root");
}

/// `sha256:<hex>` of some bytes, for checking blobs against digests.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}
