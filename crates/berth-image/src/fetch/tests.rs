//! The bounded registry client against a scripted HTTP server on loopback:
//! oversized answers, trickles, the token dance and error bodies.

use super::*;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the scripted server sends for one request.
pub(crate) enum Reply {
    /// Status line, extra headers, whole body (with Content-Length).
    Full(&'static str, Vec<String>, Vec<u8>),
    /// Status line and headers, then `chunk` `times` times with `delay`
    /// between, no Content-Length (the body ends when the connection does).
    Stream { status: &'static str, headers: Vec<String>, chunk: Vec<u8>, times: usize, delay: Duration },
}

/// Serves every connection with `handler(path, authorization)`; returns
/// the address and a count of body bytes written.
pub(crate) fn serve(handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let handler = Arc::new(handler);
    let counter = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let (handler, counter) = (handler.clone(), counter.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.strip_prefix("authorization: ").or_else(|| h.strip_prefix("Authorization: ")) {
                        auth = v.trim().to_string();
                    }
                }
                match handler(&path, &auth) {
                    Reply::Full(status, headers, body) => {
                        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
                        for h in headers {
                            head.push_str(&format!("{h}\r\n"));
                        }
                        head.push_str("Connection: close\r\n\r\n");
                        let _ = conn.write_all(head.as_bytes());
                        let _ = conn.write_all(&body);
                        counter.fetch_add(body.len() as u64, Ordering::Relaxed);
                    }
                    Reply::Stream { status, headers, chunk, times, delay } => {
                        let mut head = format!("HTTP/1.1 {status}\r\n");
                        for h in headers {
                            head.push_str(&format!("{h}\r\n"));
                        }
                        head.push_str("Connection: close\r\n\r\n");
                        let _ = conn.write_all(head.as_bytes());
                        for _ in 0..times {
                            if conn.write_all(&chunk).is_err() {
                                return;
                            }
                            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            if !delay.is_zero() {
                                std::thread::sleep(delay);
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, sent)
}

fn client(addr: &str, request: Duration, pull: Duration) -> RegistryClient {
    let src = Source { registry: addr.to_string(), plain_http: true, mirror: false };
    let bounds = Bounds { request, deadline: Instant::now() + pull };
    RegistryClient::new(&src, "team/app", None, bounds).unwrap()
}

const SECS_5: Duration = Duration::from_secs(5);

#[tokio::test]
async fn huge_manifests_are_refused_without_reading_them_whole() {
    // Declared: refused on the header.
    let (addr, _) = serve(|_, _| Reply::Stream {
        status: "200 OK",
        headers: vec![format!("Content-Length: {}", 100u64 << 20)],
        chunk: vec![b' '; 1 << 20],
        times: 100,
        delay: Duration::ZERO,
    });
    let e = client(&addr, SECS_5, SECS_5).manifest("v1", "application/json").await.unwrap_err();
    assert!(
        matches!(&e, ImageError::Registry { detail, .. } if detail.contains("larger than the 4194304 bytes")),
        "{e}"
    );

    // Undeclared (streamed until the connection closes): refused at the cap.
    let (addr, sent) = serve(|_, _| Reply::Stream {
        status: "200 OK",
        headers: vec![],
        chunk: vec![b' '; 1 << 20],
        times: 100,
        delay: Duration::ZERO,
    });
    let started = std::time::Instant::now();
    let e = client(&addr, SECS_5, SECS_5).manifest("v1", "application/json").await.unwrap_err();
    assert!(matches!(&e, ImageError::Registry { detail, .. } if detail.contains("larger than")), "{e}");
    assert!(started.elapsed() < SECS_5);
    std::thread::sleep(Duration::from_millis(200));
    // What the server managed to write: the cap plus socket buffers, never the 100 MiB.
    assert!(sent.load(Ordering::Relaxed) < 40 << 20, "server wrote {}", sent.load(Ordering::Relaxed));
}

#[tokio::test]
async fn a_trickling_registry_fails_within_the_request_bound() {
    let (addr, _) = serve(|_, _| Reply::Stream {
        status: "200 OK",
        headers: vec!["Content-Length: 1000".into()],
        chunk: b"{".to_vec(),
        times: 1000,
        delay: Duration::from_millis(100),
    });
    let started = std::time::Instant::now();
    let e = client(&addr, Duration::from_secs(1), SECS_5).manifest("v1", "application/json").await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let msg = e.to_string();
    assert!(msg.contains("did not arrive within 1 s") && msg.contains("registry_timeout_secs"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[tokio::test]
async fn a_blob_transfer_ends_at_the_pull_deadline() {
    let (addr, _) = serve(|_, _| Reply::Stream {
        status: "200 OK",
        headers: vec![],
        chunk: vec![0; 1],
        times: 1000,
        delay: Duration::from_millis(100),
    });
    let c = client(&addr, SECS_5, Duration::from_secs(1));
    let mut t = c.blob("sha256:00").await.unwrap();
    let started = std::time::Instant::now();
    let e = loop {
        match t.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("ended"),
            Err(e) => break e,
        }
    };
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(e.to_string().contains("pull_timeout_secs"), "{e}");
}

#[tokio::test]
async fn tokens_are_fetched_from_the_realm_and_reused() {
    let token_calls = Arc::new(AtomicU64::new(0));
    let calls = token_calls.clone();
    let addr_cell: Arc<std::sync::OnceLock<String>> = Arc::default();
    let cell = addr_cell.clone();
    let (addr, _) = serve(move |path, auth| {
        if path.starts_with("/token?") {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(path.contains("scope=repository%3Ateam%2Fapp%3Apull") && path.contains("service=svc"), "{path}");
            return Reply::Full("200 OK", vec![], br#"{"token":"t0k"}"#.to_vec());
        }
        if auth != "Bearer t0k" {
            let realm = format!("Bearer realm=\"http://{}/token\",service=\"svc\"", cell.get().unwrap());
            return Reply::Full("401 Unauthorized", vec![format!("WWW-Authenticate: {realm}")], vec![]);
        }
        Reply::Full("200 OK", vec![], format!("body of {path}").into_bytes())
    });
    addr_cell.set(addr.clone()).unwrap();
    let c = client(&addr, SECS_5, SECS_5);
    assert_eq!(c.manifest("v1", "application/json").await.unwrap(), b"body of /v2/team/app/manifests/v1");
    assert_eq!(c.small_blob("sha256:ab", 100).await.unwrap(), b"body of /v2/team/app/blobs/sha256:ab");
    assert_eq!(token_calls.load(Ordering::Relaxed), 1);
    // A small blob past its declared size is refused.
    assert!(c.small_blob("sha256:ab", 10).await.is_err());
}

#[tokio::test]
async fn error_bodies_are_read_only_in_part_and_mapped() {
    let (addr, sent) = serve(|path, _| {
        if path.contains("missing") {
            let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such tag"}]}"#.to_vec();
            return Reply::Full("404 Not Found", vec![], body);
        }
        let mut chunk = br#"{"errors":[{"code":"X","message":"boom\nsecond line"}]}"#.to_vec();
        chunk.resize(1 << 20, b' ');
        Reply::Stream { status: "500 Internal Server Error", headers: vec![], chunk, times: 100, delay: Duration::ZERO }
    });
    let c = client(&addr, SECS_5, SECS_5);
    let e = c.manifest("missing", "application/json").await.unwrap_err();
    assert!(matches!(e, ImageError::ManifestUnknown { .. }), "{e}");
    let started = std::time::Instant::now();
    let e = c.manifest("v1", "application/json").await.unwrap_err();
    assert!(started.elapsed() < SECS_5);
    let msg = e.to_string();
    assert!(msg.contains("500") && !msg.contains('\n'), "{msg}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(sent.load(Ordering::Relaxed) < 40 << 20);
}

#[test]
fn error_envelopes_are_kept_short_and_on_one_line() {
    let (codes, msgs) = error_envelope(br#"{"errors":[{"code":"DENIED","message":"a\nb"}]}"#);
    assert_eq!((codes, msgs), (vec!["DENIED".to_string()], vec!["a b".to_string()]));
    let long = format!(r#"{{"errors":[{{"code":"C","message":"{}"}}]}}"#, "m".repeat(1000));
    assert_eq!(error_envelope(long.as_bytes()).1[0].len(), 200);
    assert_eq!(error_envelope(b"not json"), (vec![], vec![]));
}

#[tokio::test]
async fn a_token_server_answering_without_end_is_refused_at_the_cap() {
    let addr_cell: Arc<std::sync::OnceLock<String>> = Arc::default();
    let cell = addr_cell.clone();
    let (addr, sent) = serve(move |path, _| {
        if path.starts_with("/token") {
            return Reply::Stream {
                status: "200 OK",
                headers: vec![],
                chunk: vec![b' '; 1 << 20],
                times: 100,
                delay: Duration::ZERO,
            };
        }
        let realm = format!("Bearer realm=\"http://{}/token\"", cell.get().unwrap());
        Reply::Full("401 Unauthorized", vec![format!("WWW-Authenticate: {realm}")], vec![])
    });
    addr_cell.set(addr.clone()).unwrap();
    let e = client(&addr, SECS_5, SECS_5).manifest("v1", "application/json").await.unwrap_err();
    assert!(e.to_string().contains("token is larger than the 1048576 bytes"), "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(sent.load(Ordering::Relaxed) < 40 << 20);
}
