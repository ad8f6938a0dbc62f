//! Images and registries built to exhaust the daemon: the gzip layer of
//! issue 12 whose PAX extended header declares 3 GiB (in the layer, and in
//! the OCI archive around it), and registries that answer a pull with a
//! 100 MiB manifest or with one byte per second.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::berthd::Berthd;
use crate::support::sha256_digest;
use crate::{assert_serving, daemon};

/// Peak memory allowed for the daemon across these attacks. The 3 GiB
/// header, or a 100 MiB manifest read whole, would go far past it.
const PEAK: u64 = 96 << 20;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child =
        Command::new("gzip").args(["-9", "-c"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A ustar header block.
fn tar_header(name: &str, size: u64, kind: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar_file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(&tar_header(name, data.len() as u64, b'0'));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A PAX header declaring 3 GiB, then 3 GiB of zeros as gzip members of
/// 1 MiB each: about 3 MB on disk, endless to a reader that trusts the
/// header. `prefix` goes in front, uncompressed into the first member.
fn pax_bomb(prefix: &[u8]) -> Vec<u8> {
    let mut first = prefix.to_vec();
    first.extend_from_slice(&tar_header("PaxHeaders.0/etc/passwd", 3 << 30, b'x'));
    let mut out = gzip(&first);
    let zeros = gzip(&vec![0; 1 << 20]);
    for _ in 0..3072 {
        out.extend_from_slice(&zeros);
    }
    out
}

fn desc(media_type: &str, data: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": sha256_digest(data), "size": data.len()})
}

/// An OCI archive (a tar of an OCI layout) holding one image with `layer`.
fn oci_archive(layer: &[u8]) -> Vec<u8> {
    let config = serde_json::to_vec(&json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(b"whatever the stream would hash to")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [desc("application/vnd.oci.image.manifest.v1+json", &manifest)],
    }))
    .unwrap();
    let mut out = Vec::new();
    tar_file(&mut out, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    tar_file(&mut out, "index.json", &index);
    for blob in [&config, &manifest, &layer.to_vec()] {
        let name = format!("blobs/sha256/{}", sha256_digest(blob).trim_start_matches("sha256:"));
        tar_file(&mut out, &name, blob);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn write(d: &Berthd, name: &str, data: &[u8]) -> String {
    let path = d.dir().join(name);
    std::fs::write(&path, data).unwrap();
    path.display().to_string()
}

/// The attack was refused in one line, the daemon still serves within
/// [`PEAK`], and nothing of the attempt was kept.
fn refused(d: &mut Berthd, stderr: &str, expected: &[&str]) {
    // Progress ("Using registry …") may come first; the error is one line.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("berth:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line in: {stderr}");
    let msg = errors[0];
    for e in expected {
        assert!(msg.contains(e), "expected {e:?} in: {msg}");
    }
    assert_serving(d);
    eprintln!("daemon peak RSS: {} MiB", d.peak_rss() >> 20);
    assert!(d.peak_rss() < PEAK, "peak RSS {} bytes:\n{}", d.peak_rss(), d.log());
    assert!(d.layer_dirs().is_empty(), "layers left: {:?}", d.layer_dirs());
    assert!(d.tmp_files().is_empty(), "temporaries left: {:?}", d.tmp_files());
}

#[test]
fn a_layer_whose_pax_header_declares_3_gib_is_refused_unread() {
    let mut d = daemon("");
    let layer = pax_bomb(b"");
    let digest = sha256_digest(&layer);
    let path = write(&d, "bomb.oci.tar", &oci_archive(&layer));
    let (_, stderr) = d.fails(&["image", "import", &path, "--tag", "bomb:1"]);
    refused(&mut d, &stderr, &[&digest, "PAX extended header", "\"PaxHeaders.0/etc/passwd\"", "3221225472", "1048576"]);
    assert!(d.blob_files().is_empty(), "blobs left: {:?}", d.blob_files());
}

#[test]
fn an_archive_whose_own_pax_header_declares_3_gib_is_refused_unread() {
    let mut d = daemon("");
    let path = write(&d, "outer-bomb.tar.gz", &pax_bomb(b""));
    let (_, stderr) = d.fails(&["image", "import", &path, "--tag", "bomb:2"]);
    refused(&mut d, &stderr, &[&path, "PAX extended header", "3221225472", "hostile"]);
}

/// A registry on loopback that answers every manifest request with
/// `reply`, one connection at a time, until dropped.
struct HostileRegistry {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileRegistry {
    fn start(reply: fn(&mut TcpStream, &AtomicBool)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut line = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                reply(&mut conn, &flag);
            }
        });
        Self { addr, stop, thread: Some(thread) }
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 100 MiB of manifest, no Content-Length: only counting stops it.
fn huge_manifest(conn: &mut TcpStream, stop: &AtomicBool) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n";
    let _ = conn.write_all(head.as_bytes());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..100 {
        if stop.load(Ordering::Relaxed) || conn.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// One byte a second, for as long as the client listens.
fn slow_loris(conn: &mut TcpStream, stop: &AtomicBool) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100000\r\n\r\n";
    let _ = conn.write_all(head.as_bytes());
    for _ in 0..100_000 {
        if stop.load(Ordering::Relaxed) || conn.write_all(b" ").is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_registry_answering_with_a_100_mib_manifest_is_refused() {
    let mut d = daemon("");
    let reg = HostileRegistry::start(huge_manifest);
    let started = Instant::now();
    let (_, stderr) = d.fails(&["pull", &format!("{}/hostile/app:v1", reg.addr)]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    refused(&mut d, &stderr, &[&reg.addr, "manifest is larger than the 4194304 bytes"]);
}

#[test]
fn a_slow_loris_registry_fails_the_pull_within_the_deadline() {
    let mut d = daemon("[images]\nregistry_timeout_secs = 5\n");
    let reg = HostileRegistry::start(slow_loris);
    let started = Instant::now();
    let (_, stderr) = d.fails(&["pull", &format!("{}/hostile/app:v1", reg.addr)]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(15), "took {took:?}");
    refused(&mut d, &stderr, &[&reg.addr, "did not arrive within 5 s", "registry_timeout_secs"]);
}

/// The archive builder itself: a well-formed tar that `tar` lists.
#[test]
fn the_archive_builder_writes_valid_tar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, oci_archive(b"layer bytes")).unwrap();
    let out = Command::new("tar").arg("-tf").arg(Path::new(&path)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("oci-layout"));
}
