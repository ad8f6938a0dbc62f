//! The fake daemon the end-to-end tests of the CLI run against: a unix
//! socket that answers from routes and records every request.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_cli::Cli;
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

pub type Route = Box<dyn Fn(&str, &str) -> Option<(u16, String)> + Send + Sync>;

/// Answers each request with the first route that knows it, else 404
/// with the daemon's error body; records every request.
pub struct FakeDaemon {
    socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeDaemon {
    pub fn start(routes: Vec<Route>) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = std::env::temp_dir().join(format!(
            "berth-cli-fake-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let routes = Arc::new(routes);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (record, routes) = (record.clone(), routes.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = conn.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = conn.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let mut first = head.lines().next().unwrap().split(' ');
                    let (method, path) = (first.next().unwrap().to_string(), first.next().unwrap());
                    // The client sends the absolute form, http://berth/v1/...
                    let path = path.strip_prefix("http://berth").unwrap_or(path).to_string();
                    let body = (length > 0).then(|| serde_json::from_slice(&buf[head_end..head_end + length]).unwrap());
                    record.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), body });
                    let (status, text) = routes.iter().find_map(|r| r(&method, &path)).unwrap_or_else(|| {
                        (404, json!({"error": format!("no such object at {path}"), "kind": "not_found"}).to_string())
                    });
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        Self { socket, seen }
    }

    pub async fn run(&self, args: &[&str]) -> i32 {
        let socket = self.socket.display().to_string();
        let argv = ["berth", "--socket", &socket].into_iter().chain(args.iter().copied());
        berth_cli::run(Cli::try_parse_from(argv).unwrap()).await
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| format!("{} {}", s.method, s.path)).collect()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

pub fn route(method: &'static str, path: &'static str, status: u16, body: Value) -> Route {
    Box::new(move |m, p| (m == method && p == path).then(|| (status, body.to_string())))
}

pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
}
