//! A bearer-token server for [`super::Registry::start_with_token_auth`]: the
//! "token" half of distribution's token authentication, std only.
//!
//! It listens on 127.0.0.1, serves `GET /token` to clients that present the
//! one user's HTTP basic credentials and answers with a JWT (RS256, signed
//! by the `openssl` CLI) that grants every requested scope in full. The
//! signing certificate is self-signed; the registry trusts it through its
//! `rootcertbundle`, and each token carries it in its `x5c` header.
//!
//! Work is bounded: one connection at a time, 5 s read/write timeouts, a
//! 16 KiB request head and a handful of scopes per request. The serving
//! thread stops when the server is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The `service` the registry names in its challenges (the tokens' `aud`).
pub const SERVICE: &str = "berth-test";
/// The `issuer` the registry expects (the tokens' `iss`).
pub const ISSUER: &str = "berth-test-issuer";
/// How long an issued token is valid, in seconds.
const TOKEN_TTL: u64 = 300;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_SCOPES: usize = 16;

/// A token server on 127.0.0.1 with one user. Dropping it stops the serving
/// thread and deletes its key and certificate.
pub struct TokenServer {
    /// The URL the registry sends clients to (`realm` in its config).
    pub realm: String,
    /// The signing certificate (PEM), which the registry trusts.
    pub cert_path: PathBuf,
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
    // Declared last so the key outlives the serving thread.
    _dir: tempfile::TempDir,
}

/// A token the server handed out over HTTP.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The `sub` claim: the authenticated user.
    pub subject: String,
    /// The granted scopes as requested, e.g. `repository:app:pull,push`.
    pub scopes: Vec<String>,
}

struct State {
    user: String,
    /// `base64(user:pass)`: what a correct `Authorization: Basic` carries.
    basic: String,
    signer: Signer,
    stop: AtomicBool,
    issued: Mutex<Vec<Issued>>,
    /// Requests answered with an error status (refused credentials, bad
    /// requests), with the reason, for assertion messages.
    refused: Mutex<Vec<String>>,
}

struct Signer {
    key_path: PathBuf,
    /// Standard base64 of the certificate's DER: the `x5c` chain's only entry.
    cert_der_b64: String,
    serial: AtomicU64,
}

impl TokenServer {
    /// Generates a key and certificate and starts serving.
    pub fn start(user: &str, pass: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-token-").tempdir().expect("create token server tempdir");
        let key_path = dir.path().join("key.pem");
        let cert_path = dir.path().join("cert.pem");
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=berth-test-token"],
            &[("-keyout", &key_path), ("-out", &cert_path)],
            None,
        );
        let der = openssl(&["x509", "-outform", "der"], &[("-in", &cert_path)], None);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server on loopback");
        let addr = listener.local_addr().expect("token server address");
        let state = Arc::new(State {
            user: user.to_string(),
            basic: super::base64(format!("{user}:{pass}").as_bytes()),
            signer: Signer { key_path, cert_der_b64: super::base64(&der), serial: AtomicU64::new(0) },
            stop: AtomicBool::new(false),
            issued: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("token-server".into())
                .spawn(move || serve(&listener, &state))
                .expect("spawn token server thread")
        };
        TokenServer { realm: format!("http://{addr}/token"), cert_path, addr, state, thread: Some(thread), _dir: dir }
    }

    /// The registry config's `auth:` section for this server.
    pub fn registry_auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            serde_json::to_string(&self.realm).expect("serialize realm"),
            super::yaml_str(&self.cert_path)
        )
    }

    /// Signs a token for the user granting `scopes` (`repository:NAME:ACTIONS`)
    /// directly, without HTTP: for checking the registry independently of
    /// the client under test. Not recorded in [`TokenServer::issued`].
    pub fn mint(&self, scopes: &[&str]) -> String {
        let access = scopes.iter().map(|s| parse_scope(s).unwrap_or_else(|e| panic!("{e}"))).collect();
        self.state.signer.sign(&self.state.user, SERVICE, access).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every token handed out over HTTP so far, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.state.issued.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Why each refused request was refused, oldest first.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Unblock accept(); the loop sees the flag before handling this.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, state: &State) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            // A failed exchange concerns only that client (which sees it).
            Ok(stream) => {
                let _ = handle(stream, state);
            }
            // E.g. out of file descriptors: don't spin.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

struct Reply {
    status: u16,
    body: Value,
    extra_headers: &'static str,
}

fn handle(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let reply = match read_head(&mut stream)? {
        Some(head) => respond(&head, state),
        None => error_reply(431, "request head too large"),
    };
    if reply.status != 200 {
        state.refused.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{}: {}", reply.status, reply.body));
    }
    let body = reply.body.to_string();
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n{}\r\n{body}",
        reply.status,
        reason(reply.status),
        body.len(),
        reply.extra_headers
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// The request head up to the blank line, or `None` if it exceeds
/// [`MAX_HEAD_BYTES`]. A client that closes early yields what it sent.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

fn respond(head: &str, state: &State) -> Reply {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return error_reply(404, &format!("no such endpoint {path:?}"));
    }
    if method != "GET" {
        return error_reply(405, &format!("method {method} not supported"));
    }

    let authorization = lines.take_while(|l| !l.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_string())
    });
    let authorized = authorization
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, cred)| scheme.eq_ignore_ascii_case("basic") && cred.trim() == state.basic);
    if !authorized {
        let why = if authorization.is_some() { "wrong username or password" } else { "authentication required" };
        return Reply {
            status: 401,
            body: error_body("UNAUTHORIZED", why),
            extra_headers: "WWW-Authenticate: Basic realm=\"berth-test-token\"\r\n",
        };
    }

    let mut service = SERVICE.to_string();
    let mut scopes = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = match percent_decode(value) {
            Some(v) => v,
            None => return error_reply(400, &format!("bad percent-encoding in {pair:?}")),
        };
        match key {
            "service" => service = value,
            // One parameter may hold several space-separated scopes.
            "scope" => scopes.extend(value.split_whitespace().map(str::to_string)),
            "account" if value != state.user => {
                return error_reply(401, &format!("account {value:?} does not match the credentials"))
            }
            _ => {}
        }
    }
    if service != SERVICE {
        return error_reply(400, &format!("unknown service {service:?}"));
    }
    if scopes.len() > MAX_SCOPES {
        return error_reply(400, &format!("too many scopes ({})", scopes.len()));
    }
    let mut access = Vec::new();
    for scope in &scopes {
        match parse_scope(scope) {
            Ok(a) => access.push(a),
            Err(e) => return error_reply(400, &e),
        }
    }

    // A signing failure must not kill the serving thread: report it.
    let token = match state.signer.sign(&state.user, &service, access) {
        Ok(token) => token,
        Err(e) => return error_reply(500, &e),
    };
    state.issued.lock().unwrap_or_else(PoisonError::into_inner).push(Issued { subject: state.user.clone(), scopes });
    let now = unix_now();
    Reply {
        status: 200,
        body: json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_TTL,
            "issued_at": rfc3339(now),
        }),
        extra_headers: "",
    }
}

fn error_reply(status: u16, message: &str) -> Reply {
    let code = match status {
        401 => "UNAUTHORIZED",
        404 => "NOT_FOUND",
        405 => "UNSUPPORTED",
        500 => "INTERNAL_ERROR",
        _ => "BAD_REQUEST",
    };
    Reply { status, body: error_body(code, message), extra_headers: "" }
}

fn error_body(code: &str, message: &str) -> Value {
    json!({ "errors": [{ "code": code, "message": message }] })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

/// `TYPE:NAME:ACTION[,ACTION…]` as a claim's `access` entry. The name may
/// contain `:` only in theory (a registry host with a port); take the type
/// from the front and the actions from the back.
fn parse_scope(scope: &str) -> Result<Value, String> {
    let bad = || format!("malformed scope {scope:?}; expected TYPE:NAME:ACTIONS");
    let (kind, rest) = scope.split_once(':').ok_or_else(bad)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(bad)?;
    if kind.is_empty() || name.is_empty() {
        return Err(bad());
    }
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Ok(json!({ "type": kind, "name": name, "actions": actions }))
}

impl Signer {
    /// An RS256 JWT for `subject` with `access`, carrying the certificate.
    fn sign(&self, subject: &str, audience: &str, access: Vec<Value>) -> Result<String, String> {
        let now = unix_now();
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        // Unique enough: process, serial and time, hashed.
        let jti =
            super::sha256_digest(format!("{}-{serial}-{now}-{:?}", std::process::id(), SystemTime::now()).as_bytes());
        let header = json!({ "typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64] });
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + TOKEN_TTL,
            "nbf": now - 10,
            "iat": now,
            "jti": &jti["sha256:".len().."sha256:".len() + 32],
            "access": access,
        });
        let signing_input =
            format!("{}.{}", base64url(header.to_string().as_bytes()), base64url(claims.to_string().as_bytes()));
        let signature =
            run_openssl(&["dgst", "-sha256"], &[("-sign", &self.key_path)], Some(signing_input.as_bytes()))?;
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }
}

/// Runs `openssl ARGS [FLAG PATH]…`, feeding `input` on stdin; returns
/// stdout and panics (with stderr) on failure.
fn openssl(args: &[&str], paths: &[(&str, &Path)], input: Option<&[u8]>) -> Vec<u8> {
    run_openssl(args, paths, input).unwrap_or_else(|e| panic!("{e}"))
}

/// [`openssl`], with failures (including stderr) as errors.
fn run_openssl(args: &[&str], paths: &[(&str, &Path)], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("run openssl {args:?}: {e} (is openssl installed?)"))?;
    if let Some(input) = input {
        // Small inputs fit the pipe buffer; dropping stdin ends openssl's read.
        let mut stdin = child.stdin.take().expect("openssl stdin is piped");
        if let Err(e) = stdin.write_all(input) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("write to openssl {args:?}: {e}"));
        }
    }
    let out = child.wait_with_output().map_err(|e| format!("wait for openssl {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out.stdout)
}

/// Base64url without padding (RFC 7515), as JWTs use.
fn base64url(input: &[u8]) -> String {
    super::base64(input).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Decodes `%XX` escapes and `+` (a space in query strings); `None` if an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC).
fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}
