//! The requests `push` needs, with the same bounds as a pull's: every
//! answer is a status and headers, plus an error body read to at most
//! [`MAX_ERROR_BYTES`](super::MAX_ERROR_BYTES); each request finishes
//! within the request timeout, except a blob upload, which must move
//! [`STALL_MIN_BYTES`] every [`STALL_WINDOW`] and then be answered within
//! the request timeout; nothing runs past the operation's deadline.
//!
//! A blob goes up monolithically (`POST` for an upload location, then one
//! `PUT …?digest=` with the whole blob), as the distribution spec allows
//! and docker does for layers of known size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::time::{sleep_until, Instant};

use super::{RegistryClient, Request, STALL_MIN_BYTES, STALL_WINDOW};
use crate::error::{ImageError, Result};

impl RegistryClient {
    /// Whether the repository has blob `digest` (`HEAD`).
    pub async fn blob_exists(&self, digest: &str) -> Result<bool> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repo);
        let until = self.request_end();
        let r = Request { method: Method::HEAD, url: &url, accept: None, body: None, what: "blob", until };
        let resp = self.send_with(r, &[StatusCode::NOT_FOUND]).await?;
        Ok(resp.status() != StatusCode::NOT_FOUND)
    }

    /// Uploads blob `digest` of `size` bytes read from `file`; `sent` is
    /// called with the bytes handed to the connection so far.
    pub async fn upload_blob(
        &self,
        digest: &str,
        size: u64,
        file: tokio::fs::File,
        sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<()> {
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repo);
        let until = self.request_end();
        let r = Request { method: Method::POST, url: &start, accept: None, body: None, what: "blob upload", until };
        let resp = self.send_with(r, &[]).await?;
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        drop(resp);
        let location = location.ok_or_else(|| ImageError::Registry {
            registry: self.registry.clone(),
            detail: format!("POST {start} answered without a Location to upload to"),
        })?;
        let mut url = Url::parse(&start).and_then(|base| base.join(&location)).map_err(|e| ImageError::Registry {
            registry: self.registry.clone(),
            detail: format!("the upload location {location:?} is not a URL: {e}"),
        })?;
        url.query_pairs_mut().append_pair("digest", digest);

        let counter = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&counter);
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
            if let Ok(c) = &chunk {
                sent(seen.fetch_add(c.len() as u64, Ordering::Relaxed) + c.len() as u64);
            }
            chunk
        });
        let mut req = self
            .http
            .put(url.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(h) = self.auth.lock().expect("auth lock").clone() {
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        let put = req.send();
        tokio::pin!(put);
        // The watchdog: a window without enough progress ends the upload;
        // once every byte is handed over, the answer has the request
        // timeout to come.
        let (mut window_start, mut at_start) = (Instant::now(), 0u64);
        let mut answer_by: Option<Instant> = None;
        let resp = loop {
            let now_sent = counter.load(Ordering::Relaxed);
            let wake = match answer_by {
                Some(t) => t,
                None if now_sent >= size => {
                    let t = self.request_end();
                    answer_by = Some(t);
                    t
                }
                None => (window_start + STALL_WINDOW).min(self.bounds.deadline),
            };
            tokio::select! {
                r = &mut put => break r,
                () = sleep_until(wake) => {}
            }
            let now = Instant::now();
            if now >= self.bounds.deadline {
                return Err(self.deadline_passed("uploading a layer"));
            }
            if answer_by.is_some_and(|t| now >= t) {
                return Err(self.timeout("answer to the layer upload", size));
            }
            let moved = counter.load(Ordering::Relaxed);
            if answer_by.is_none() && now >= window_start + STALL_WINDOW {
                if moved - at_start < STALL_MIN_BYTES && moved < size {
                    return Err(ImageError::Unreachable {
                        registry: self.registry.clone(),
                        detail: format!(
                            "the layer upload stalled: {} bytes in {} s, under the {STALL_MIN_BYTES} bytes berth waits for",
                            moved - at_start,
                            STALL_WINDOW.as_secs()
                        ),
                    });
                }
                (window_start, at_start) = (now, moved);
            }
        };
        // The client's read timeout (the request bound) also ends an
        // upload whose bytes the registry stopped taking, or whose answer
        // does not come.
        let resp = resp.map_err(|e| match e.is_timeout() {
            false => self.transport(&e),
            true if counter.load(Ordering::Relaxed) >= size => self.timeout("answer to the layer upload", size),
            true => ImageError::Unreachable {
                registry: self.registry.clone(),
                detail: format!(
                    "the layer upload stalled: the registry took nothing for {} s ({} of {size} bytes sent); raise images.registry_timeout_secs if it is merely slow",
                    self.bounds.request.as_secs(),
                    counter.load(Ordering::Relaxed)
                ),
            },
        })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let until = self.request_end();
        Err(self.status_error(resp, &Method::PUT, "blob upload", until).await)
    }

    /// Puts `manifest` (of `media_type`) under `reference`, a tag or digest.
    pub async fn put_manifest(&self, reference: &str, media_type: &str, manifest: Bytes) -> Result<()> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let until = self.request_end();
        let body = Some((media_type, manifest));
        let r = Request { method: Method::PUT, url: &url, accept: None, body, what: "manifest upload", until };
        self.send_with(r, &[]).await.map(drop)
    }

    fn deadline_passed(&self, doing: &str) -> ImageError {
        ImageError::Unreachable {
            registry: self.registry.clone(),
            detail: format!(
                "the push ran past its deadline while {doing}; raise images.pull_timeout_secs (it bounds pushes too) if the registry is merely slow"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::config::Source;
    use crate::fetch::Bounds;

    /// One request as the scripted server saw it.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        method: String,
        path: String,
        content_type: String,
        body: usize,
    }

    /// What the server does with a request, given what it saw so far.
    enum Act {
        Answer(&'static str, Vec<String>, Vec<u8>),
        /// Reads the body, then never answers.
        Swallow,
        /// Never reads the body nor answers.
        Ignore,
    }

    fn serve(script: impl Fn(&Seen) -> Act + Send + Sync + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (script, seen_log) = (Arc::new(script), Arc::clone(&log));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (script, log) = (Arc::clone(&script), Arc::clone(&seen_log));
                std::thread::spawn(move || handle(conn, &*script, &log));
            }
        });
        (addr, log)
    }

    fn handle(mut conn: TcpStream, script: &dyn Fn(&Seen) -> Act, log: &Mutex<Vec<Seen>>) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split_whitespace();
            let mut seen = Seen {
                method: parts.next().unwrap_or("").into(),
                path: parts.next().unwrap_or("").into(),
                ..Seen::default()
            };
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap_or((&h, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => seen.content_type = value.trim().into(),
                    _ => {}
                }
            }
            let act = script(&seen);
            if matches!(act, Act::Ignore) {
                log.lock().unwrap().push(seen);
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            seen.body = length;
            log.lock().unwrap().push(seen);
            match act {
                Act::Answer(status, headers, body) => {
                    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
                    for h in headers {
                        head.push_str(&format!("{h}\r\n"));
                    }
                    head.push_str("\r\n");
                    if conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&body)).is_err() {
                        return;
                    }
                }
                Act::Swallow | Act::Ignore => {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                }
            }
        }
    }

    fn client(addr: &str, request: Duration, whole: Duration) -> RegistryClient {
        let src = Source { registry: addr.to_string(), plain_http: true, mirror: false };
        let bounds = Bounds { request, deadline: Instant::now() + whole };
        RegistryClient::new(&src, "team/app", None, bounds).unwrap()
    }

    async fn blob_file(size: u64) -> (tempfile::TempDir, tokio::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        (dir, tokio::fs::File::open(&path).await.unwrap())
    }

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// The registry's side of a normal push.
    fn registry(s: &Seen) -> Act {
        match (s.method.as_str(), s.path.as_str()) {
            ("HEAD", p) if p.ends_with("/blobs/sha256:present") => Act::Answer("200 OK", vec![], vec![]),
            ("HEAD", _) => Act::Answer("404 Not Found", vec![], vec![]),
            ("POST", "/v2/team/app/blobs/uploads/") => {
                Act::Answer("202 Accepted", vec!["Location: /v2/team/app/blobs/uploads/u1?state=x".into()], vec![])
            }
            ("PUT", p) if p.starts_with("/v2/team/app/blobs/uploads/u1?state=x&digest=sha256") => {
                Act::Answer("201 Created", vec![], vec![])
            }
            ("PUT", "/v2/team/app/manifests/v1") => Act::Answer("201 Created", vec![], vec![]),
            _ => Act::Answer("400 Bad Request", vec![], b"{\"errors\":[{\"code\":\"UNSUPPORTED\"}]}".to_vec()),
        }
    }

    #[tokio::test]
    async fn a_push_asks_uploads_and_names_the_manifest_type() {
        let (addr, log) = serve(registry);
        let c = client(&addr, Duration::from_secs(5), Duration::from_secs(10));
        assert!(c.blob_exists("sha256:present").await.unwrap());
        assert!(!c.blob_exists(D).await.unwrap());
        let (_dir, file) = blob_file(3 << 20).await;
        let progress = Arc::new(AtomicU64::new(0));
        let p = Arc::clone(&progress);
        c.upload_blob(D, 3 << 20, file, move |n| p.store(n, Ordering::Relaxed)).await.unwrap();
        assert_eq!(progress.load(Ordering::Relaxed), 3 << 20);
        let mt = "application/vnd.oci.image.manifest.v1+json";
        c.put_manifest("v1", mt, Bytes::from_static(b"{}")).await.unwrap();
        let log = log.lock().unwrap().clone();
        let put = log.iter().find(|s| s.method == "PUT" && s.path.contains("uploads")).unwrap();
        assert_eq!(put.body, 3 << 20);
        assert!(put.path.ends_with(&format!("digest={}", D.replace(':', "%3A"))), "{}", put.path);
        let manifest = log.iter().find(|s| s.path.ends_with("/manifests/v1")).unwrap();
        assert_eq!(manifest.content_type, mt);
    }

    #[tokio::test]
    async fn an_upload_never_answered_fails_within_the_request_bound() {
        let (addr, _) = serve(|s| match s.method.as_str() {
            "PUT" => Act::Swallow,
            _ => registry(s),
        });
        let c = client(&addr, Duration::from_secs(1), Duration::from_secs(20));
        let (_dir, file) = blob_file(1 << 20).await;
        let started = std::time::Instant::now();
        let e = c.upload_blob(D, 1 << 20, file, |_| {}).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
        assert!(e.to_string().contains("answer to the layer upload did not arrive within 1 s"), "{e}");
    }

    #[tokio::test]
    async fn an_upload_the_registry_stops_reading_is_abandoned() {
        let (addr, _) = serve(|s| match s.method.as_str() {
            "PUT" => Act::Ignore,
            _ => registry(s),
        });
        let c = client(&addr, Duration::from_secs(1), Duration::from_secs(20));
        // Far more than the socket buffers hold.
        let (_dir, file) = blob_file(256 << 20).await;
        let started = std::time::Instant::now();
        let e = c.upload_blob(D, 256 << 20, file, |_| {}).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(e.to_string().contains("the layer upload stalled: the registry took nothing for 1 s"), "{e}");
    }

    #[tokio::test]
    async fn no_upload_runs_past_the_push_deadline() {
        let (addr, _) = serve(|s| match s.method.as_str() {
            "PUT" => Act::Ignore,
            _ => registry(s),
        });
        let c = client(&addr, Duration::from_secs(10), Duration::from_secs(1));
        let (_dir, file) = blob_file(256 << 20).await;
        let started = std::time::Instant::now();
        let e = c.upload_blob(D, 256 << 20, file, |_| {}).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
        assert!(e.to_string().contains("ran past its deadline while uploading a layer"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_manifest_reads_as_the_registry_said_in_one_line() {
        let (addr, _) = serve(|s| match s.method.as_str() {
            "PUT" => Act::Answer(
                "400 Bad Request",
                vec![],
                b"{\"errors\":[{\"code\":\"MANIFEST_INVALID\",\"message\":\"manifest invalid\\nsecond line\"}]}"
                    .to_vec(),
            ),
            _ => registry(s),
        });
        let c = client(&addr, Duration::from_secs(5), Duration::from_secs(10));
        let e = c.put_manifest("v1", "application/json", Bytes::from_static(b"{}")).await.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("PUT http://") && msg.contains("manifest invalid second line"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
