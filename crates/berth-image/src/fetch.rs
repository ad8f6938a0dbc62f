//! A registry's answers read with bounds, for `pull` and `push`.
//!
//! Why not a registry client crate (`oci-client`): it reads manifests, token answers and error
//! bodies whole (`bytes()`/`text()`) before anyone can look at their size,
//! and its read timeout restarts on every byte, so a hostile registry can
//! make the daemon allocate without limit or hold a pull forever. This
//! client speaks the few requests a pull needs (manifests and blobs, with
//! the token dance of the distribution spec) and bounds every answer:
//!
//! - documents (manifests, indexes, configs) at 4 MiB, token answers at
//!   1 MiB, error bodies at 64 KiB — checked against `Content-Length`
//!   before reading and counted while streaming;
//! - each request for a document, and the headers of a blob request, must
//!   complete within `registry_timeout` (whatever the trickle);
//! - a blob transfer must move [`STALL_MIN_BYTES`] every [`STALL_WINDOW`];
//! - nothing runs past the pull's overall deadline.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use tokio::time::{timeout_at, Instant};

use crate::config::Source;
use crate::error::{ImageError, Result};
use crate::registry::{bearer_params, root_cause};

/// Largest manifest or image index accepted (containerd's limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Largest token-server answer read.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Most of an error body read (the rest is dropped unread).
pub const MAX_ERROR_BYTES: u64 = 64 << 10;
/// A blob transfer slower than this many bytes per window is abandoned.
pub const STALL_MIN_BYTES: u64 = 64 << 10;
pub const STALL_WINDOW: Duration = Duration::from_secs(30);

/// The bounds one pull runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Most time one document request (or a blob's headers) may take.
    pub request: Duration,
    /// When the whole pull must be over.
    pub deadline: Instant,
}

/// One request of [`RegistryClient::send_with`].
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub accept: Option<&'a str>,
    /// Content type and a small body (sent again after authenticating).
    pub body: Option<(&'a str, Bytes)>,
    /// What is asked for, in messages ("manifest", "blob upload").
    pub what: &'a str,
    pub until: Instant,
}

/// One registry (or mirror) and repository, with the credentials to use.
pub(crate) struct RegistryClient {
    http: reqwest::Client,
    base: String,
    registry: String,
    repo: String,
    creds: Option<(String, String)>,
    /// The Authorization header that worked last, reused by later requests.
    auth: Mutex<Option<HeaderValue>>,
    bounds: Bounds,
}

impl RegistryClient {
    pub fn new(src: &Source, repo: &str, creds: Option<(String, String)>, bounds: Bounds) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(bounds.request))
            // Per read; the bounds above are what end a trickle.
            .read_timeout(bounds.request)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| ImageError::Registry { registry: src.registry.clone(), detail: root_cause(&e) })?;
        let scheme = if src.plain_http { "http" } else { "https" };
        let host = if src.registry == "docker.io" { "registry-1.docker.io" } else { &src.registry };
        Ok(Self {
            http,
            base: format!("{scheme}://{host}"),
            registry: src.registry.clone(),
            repo: repo.to_string(),
            creds,
            auth: Mutex::new(None),
            bounds,
        })
    }

    /// The end of a request started now.
    fn request_end(&self) -> Instant {
        (Instant::now() + self.bounds.request).min(self.bounds.deadline)
    }

    /// GETs a manifest or index by tag or digest.
    pub async fn manifest(&self, reference: &str, accept: &str) -> Result<Vec<u8>> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        self.document(&url, Some(accept), "manifest", MAX_MANIFEST_BYTES).await
    }

    /// GETs a small blob (an image config) of at most `cap` bytes.
    pub async fn small_blob(&self, digest: &str, cap: u64) -> Result<Vec<u8>> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repo);
        self.document(&url, None, "config", cap).await
    }

    /// Starts a blob download; read it with [`Transfer::next`].
    pub async fn blob(&self, digest: &str) -> Result<Transfer> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repo);
        let until = self.request_end();
        let resp = self.send(&url, None, "blob", until).await?;
        let now = Instant::now();
        Ok(Transfer { resp, registry: self.registry.clone(), window_start: now, window_bytes: 0, bounds: self.bounds })
    }

    async fn document(&self, url: &str, accept: Option<&str>, what: &str, cap: u64) -> Result<Vec<u8>> {
        let until = self.request_end();
        let resp = self.send(url, accept, what, until).await?;
        match read_capped(resp, cap, until).await {
            Ok(body) => Ok(body),
            Err(e) => Err(self.body_error(e, what, cap)),
        }
    }

    fn body_error(&self, e: BodyError, what: &str, cap: u64) -> ImageError {
        let registry = self.registry.clone();
        match e {
            BodyError::TooLarge => ImageError::Registry {
                registry,
                detail: format!(
                    "its {what} is larger than the {cap} bytes berth accepts; the registry is broken or hostile"
                ),
            },
            BodyError::Timeout { got } => self.timeout(what, got),
            BodyError::Http(e) => ImageError::Unreachable {
                registry,
                detail: format!("the {what} transfer broke off: {}", root_cause(&e)),
            },
        }
    }

    fn timeout(&self, what: &str, got: u64) -> ImageError {
        let past_deadline = Instant::now() >= self.bounds.deadline;
        let detail = if past_deadline {
            format!("the pull ran past its deadline while waiting for the {what} (got {got} bytes); raise images.pull_timeout_secs if the registry is merely slow")
        } else {
            format!(
                "the {what} did not arrive within {} s (got {got} bytes); the registry is too slow or hostile — raise images.registry_timeout_secs if it is merely slow",
                self.bounds.request.as_secs()
            )
        };
        ImageError::Unreachable { registry: self.registry.clone(), detail }
    }

    /// Sends a GET, authenticating once if the registry asks to. Any
    /// answer but success becomes an error read from a capped body.
    async fn send(&self, url: &str, accept: Option<&str>, what: &str, until: Instant) -> Result<Response> {
        self.send_with(Request { method: Method::GET, url, accept, body: None, what, until }, &[]).await
    }

    /// Sends `r`, authenticating once if the registry asks to (a body is
    /// small and sent again then). An answer that is neither a success nor
    /// in `also` becomes an error read from a capped body.
    pub(crate) async fn send_with(&self, r: Request<'_>, also: &[StatusCode]) -> Result<Response> {
        let mut authenticated = false;
        loop {
            let mut req = self.http.request(r.method.clone(), r.url);
            if let Some(a) = r.accept {
                req = req.header(ACCEPT, a);
            }
            if let Some((content_type, body)) = &r.body {
                req = req.header(CONTENT_TYPE, *content_type).body(body.clone());
            }
            if let Some(h) = self.auth.lock().expect("auth lock").clone() {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = match timeout_at(r.until, req.send()).await {
                Err(_) => return Err(self.timeout(r.what, 0)),
                Ok(Err(e)) => return Err(self.transport(&e)),
                Ok(Ok(resp)) => resp,
            };
            if resp.status() == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
                drop(resp);
                self.authenticate(challenge.as_deref().unwrap_or(""), r.until).await?;
                continue;
            }
            if resp.status().is_success() || also.contains(&resp.status()) {
                return Ok(resp);
            }
            return Err(self.status_error(resp, &r.method, r.what, r.until).await);
        }
    }

    fn transport(&self, e: &reqwest::Error) -> ImageError {
        let detail = root_cause(e);
        let registry = self.registry.clone();
        if detail.contains("InvalidContentType")
            || detail.contains("invalid HTTP version")
            || detail.contains("http2 error")
        {
            return ImageError::Registry {
                registry,
                detail: format!("{detail} (does it speak plain HTTP? then list it under insecure_registries)"),
            };
        }
        ImageError::Unreachable { registry, detail }
    }

    /// Answers a 401: a bearer token from the realm the registry names, or
    /// basic credentials.
    async fn authenticate(&self, challenge: &str, until: Instant) -> Result<()> {
        let refused =
            |detail: String| ImageError::Unauthorized { registry: self.registry.clone(), user: String::new(), detail };
        let Some(params) = bearer_params(challenge) else {
            // Basic (or no) challenge: only credentials can help.
            let Some((user, password)) = &self.creds else {
                return Err(refused("the registry asks for credentials".into()));
            };
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let header = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| refused("the credentials do not fit an HTTP header".into()))?;
            *self.auth.lock().expect("auth lock") = Some(header);
            return Ok(());
        };
        let field = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let realm = field("realm").ok_or_else(|| refused("the registry's token challenge names no realm".into()))?;
        let scope = field("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repo));
        let mut req = self.http.get(&realm).query(&[("scope", scope)]);
        if let Some(service) = field("service") {
            req = req.query(&[("service", service)]);
        }
        if let Some((user, password)) = &self.creds {
            req = req.basic_auth(user, Some(password)).query(&[("account", user)]);
        }
        let resp = match timeout_at(until, req.send()).await {
            Err(_) => return Err(self.timeout("token", 0)),
            Ok(Err(e)) => return Err(self.transport(&e)),
            Ok(Ok(r)) => r,
        };
        if !resp.status().is_success() {
            return Err(refused(format!("the token server answered {}", resp.status())));
        }
        let body = read_capped(resp, MAX_TOKEN_BYTES, until)
            .await
            .map_err(|e| self.body_error(e, "token", MAX_TOKEN_BYTES))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("the token server's answer is not a token: {e}")))?;
        let token = answer.token.or(answer.access_token).filter(|t| !t.is_empty());
        let token = token.ok_or_else(|| refused("the token server answered without a token".into()))?;
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| refused("the token server's token is not a valid header value".into()))?;
        *self.auth.lock().expect("auth lock") = Some(header);
        Ok(())
    }

    /// Turns an unsuccessful answer into an error, reading at most
    /// [`MAX_ERROR_BYTES`] of its body for the registry's own words.
    pub(crate) async fn status_error(&self, resp: Response, method: &Method, what: &str, until: Instant) -> ImageError {
        let status = resp.status();
        let url = resp.url().clone();
        let body = read_prefix(resp, MAX_ERROR_BYTES, until).await;
        let (codes, messages) = error_envelope(&body);
        let registry = self.registry.clone();
        let upper = codes.join(",").to_uppercase();
        if (what == "manifest" && status == StatusCode::NOT_FOUND && method == Method::GET)
            || upper.contains("MANIFEST_UNKNOWN")
            || upper.contains("NAME_UNKNOWN")
        {
            return ImageError::ManifestUnknown { reference: format!("{}/{}", self.registry, self.repo), registry };
        }
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || upper.contains("UNAUTHORIZED")
            || upper.contains("DENIED")
        {
            return ImageError::Unauthorized {
                registry,
                user: String::new(),
                detail: format!("{url} answered {status}"),
            };
        }
        let said = if messages.is_empty() { String::new() } else { format!(": {}", messages.join("; ")) };
        ImageError::Registry { registry, detail: format!("{method} {url} for the {what} answered {status}{said}") }
    }
}

/// A blob download in progress.
pub(crate) struct Transfer {
    resp: Response,
    registry: String,
    window_start: Instant,
    window_bytes: u64,
    bounds: Bounds,
}

impl Transfer {
    /// The next chunk, `None` at the end. Fails when the transfer stalls
    /// (under [`STALL_MIN_BYTES`] in a [`STALL_WINDOW`]) or the pull's
    /// deadline passes.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            let window_end = self.window_start + STALL_WINDOW;
            let until = window_end.min(self.bounds.deadline);
            let chunk = timeout_at(until, self.resp.chunk()).await;
            let now = Instant::now();
            if now >= self.bounds.deadline {
                return Err(ImageError::Unreachable {
                    registry: self.registry.clone(),
                    detail: "the pull ran past its deadline while downloading a layer; raise images.pull_timeout_secs if the registry is merely slow".into(),
                });
            }
            if now >= window_end {
                if self.window_bytes < STALL_MIN_BYTES {
                    return Err(ImageError::Unreachable {
                        registry: self.registry.clone(),
                        detail: format!(
                            "the layer transfer stalled: {} bytes in {} s, under the {} bytes berth waits for",
                            self.window_bytes,
                            STALL_WINDOW.as_secs(),
                            STALL_MIN_BYTES
                        ),
                    });
                }
                (self.window_start, self.window_bytes) = (now, 0);
            }
            match chunk {
                Err(_) => continue, // window over; judged above
                Ok(Ok(Some(c))) => {
                    self.window_bytes += c.len() as u64;
                    return Ok(Some(c));
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => {
                    return Err(ImageError::Unreachable {
                        registry: self.registry.clone(),
                        detail: format!("the layer transfer broke off: {}", root_cause(&e)),
                    })
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the answer is larger than berth accepts")]
    TooLarge,
    #[error("the answer did not arrive in time ({got} bytes came)")]
    Timeout { got: u64 },
    #[error("the transfer broke off: {}", root_cause(.0))]
    Http(reqwest::Error),
}

/// Reads a whole body of at most `cap` bytes by `until`.
pub(crate) async fn read_capped(mut resp: Response, cap: u64, until: Instant) -> Result<Vec<u8>, BodyError> {
    let declared = resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(64 << 10) as usize);
    loop {
        match timeout_at(until, resp.chunk()).await {
            Err(_) => return Err(BodyError::Timeout { got: body.len() as u64 }),
            Ok(Err(e)) => return Err(BodyError::Http(e)),
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(c))) => {
                if body.len() as u64 + c.len() as u64 > cap {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&c);
            }
        }
    }
}

/// Up to `cap` bytes of a body (what arrives by `until`); the rest is
/// never read.
async fn read_prefix(mut resp: Response, cap: u64, until: Instant) -> Vec<u8> {
    let mut body = Vec::new();
    while (body.len() as u64) < cap {
        match timeout_at(until, resp.chunk()).await {
            Ok(Ok(Some(c))) => {
                let room = (cap - body.len() as u64) as usize;
                body.extend_from_slice(&c[..c.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// The codes and messages of an OCI distribution error body, each kept to
/// one short line.
fn error_envelope(body: &[u8]) -> (Vec<String>, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let one_line = |s: &str| -> String {
        let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
        s.trim().to_string()
    };
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) => (
            env.errors.iter().map(|e| one_line(&e.code)).collect(),
            env.errors.iter().map(|e| one_line(&e.message)).filter(|m| !m.is_empty()).take(5).collect(),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    }
}

mod upload;

#[cfg(test)]
mod tests;
