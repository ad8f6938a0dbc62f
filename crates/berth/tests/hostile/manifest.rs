//! Manifests built to exhaust the daemon or to make it repeat a secret:
//! the billion laughs and the 200,000-deep nesting of issue 12, the largest
//! alias expansion the reader still takes, an oversized request, and
//! Secrets that fail to decode. Each is sent through `berth apply
//! --dry-run` and raw to the API (no client-side check in the way).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::berthd::Berthd;
use crate::{assert_serving, daemon};

/// Peak memory allowed for the daemon across these attacks: well under the
/// cgroup's 512 MiB, so a limit that slipped shows here, not as an OOM kill.
const PEAK: u64 = 256 << 20;

fn write(d: &Berthd, name: &str, text: &str) -> PathBuf {
    let path = d.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `berth apply --dry-run -f PATH`, which must fail; its stderr.
fn apply_fails(d: &Berthd, path: &std::path::Path) -> String {
    let (_, stderr) = d.fails(&["apply", "--dry-run", "-f", &path.display().to_string()]);
    stderr.trim().to_string()
}

/// POST /v1/apply with the body from a file (a body this large does not
/// fit on a command line); the JSON answer and the HTTP status.
fn api_apply(d: &Berthd, name: &str, text: &str) -> (u16, Value) {
    let body = json!({"files": [{"name": name, "text": text}], "dry_run": true});
    let path = d.dir().join(format!("{name}.body.json"));
    std::fs::write(&path, body.to_string()).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-m", "120", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{}", path.display()))
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg("http://berth/v1/apply")
        .output()
        .expect("run curl");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), serde_json::from_str(answer).unwrap_or(Value::Null))
}

/// The attack was refused in one line saying each of `expected`, through
/// the CLI and raw, and the daemon is still up, serving, within [`PEAK`].
fn refused_both_ways(d: &mut Berthd, name: &str, text: &str, expected: &[&str]) {
    let path = write(d, name, text);
    let cli = apply_fails(d, &path);
    for e in expected {
        assert!(cli.contains(e), "berth apply said: {cli}");
    }
    assert!(cli.contains(&format!("{}:", path.display())), "the error names the file: {cli}");
    assert_eq!(cli.lines().count(), 1, "one line: {cli}");
    assert!(cli.len() < 400, "short: {cli}");
    let (status, answer) = api_apply(d, name, text);
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    for e in expected {
        assert!(error.contains(e), "the API said: {answer}");
    }
    assert!(error.starts_with(&format!("{name}:")), "{error}");
    assert_serving(d);
    let peak = d.peak_rss();
    eprintln!("{name}: refused; daemon peak RSS {} MiB", peak >> 20);
    assert!(peak < PEAK, "{name}: the daemon peaked at {} MiB", peak >> 20);
}

/// Issue 12: a ConfigMap holding a 1 MiB anchored scalar aliased 200,000
/// times drove the daemon past 1.5 GB.
#[test]
fn a_billion_laughs_configmap_is_refused_within_bounded_memory() {
    let mut d = daemon("");
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: laughs\n  annotations:\n    big: &a \"{}\"\ndata: {{",
        "x".repeat(1 << 20)
    );
    for i in 0..200_000 {
        text.push_str(&format!("k{i}: *a, "));
    }
    text.push_str("}\n");
    assert!(text.len() < 4 << 20, "{} bytes", text.len());
    let expected =
        [":7: document 1: invalid YAML at line 7, column ", "more than 32 MiB of text after expanding aliases"];
    refused_both_ways(&mut d, "laughs.yaml", &text, &expected);
}

/// Issue 12: `- - - … a` 200,000 levels deep overflowed the daemon's stack.
#[test]
fn a_document_nested_200000_deep_is_refused() {
    let mut d = daemon("");
    let block = "- ".repeat(200_000) + "a\n";
    refused_both_ways(&mut d, "deep.yaml", &block, &["nested more than 100 levels deep"]);
    let flow = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: ".to_string() + &"[".repeat(200_000);
    refused_both_ways(&mut d, "deep-flow.yaml", &flow, &["nested more than 100 levels deep"]);
}

/// The most the reader takes: a 1 MiB value aliased 29 times, 31 MiB once
/// expanded with the copy kept for the aliases (under the 32 MiB bound). It is read, decoded and
/// refused by Kubernetes' 1 MiB data limit, within bounded memory: this is
/// what the limits were chosen against.
#[test]
fn the_largest_expansion_the_reader_takes_stays_within_memory() {
    let mut d = daemon("");
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: wide}}\ndata:\n  k0: &a \"{}\"\n",
        "x".repeat(1 << 20)
    );
    for i in 1..30 {
        text.push_str(&format!("  k{i}: *a\n"));
    }
    refused_both_ways(&mut d, "wide.yaml", &text, &["more than Kubernetes' limit of 1048576"]);
}

/// More than 16 MiB of manifests in one request: refused by the CLI before
/// sending and by the daemon before parsing.
#[test]
fn an_oversized_apply_is_refused() {
    let mut d = daemon("");
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{a: \"{}\"}}\n",
        "x".repeat(17 << 20)
    );
    let path = write(&d, "big.yaml", &text);
    let cli = apply_fails(&d, &path);
    assert!(cli.contains("the manifests come to more than 16 MiB"), "{cli}");
    let (status, answer) = api_apply(&d, "big.yaml", &text);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("more than 16 MiB"), "{answer}");
    assert_serving(&mut d);
    assert!(d.peak_rss() < PEAK, "peak {} MiB", d.peak_rss() >> 20);
}

/// Issue 12: decode errors echoed Secret values back.
#[test]
fn secret_decode_errors_do_not_repeat_the_secret() {
    let mut d = daemon("");
    for (body, secret) in [
        ("data:\n  password: hunter2-the-database-password!\n", "hunter2"),
        ("data:\n  password: 31415926535\n", "31415926535"),
        ("stringData:\n  pin: 27182818284\n", "27182818284"),
        ("stringData:\n  token: [hunter2-the-token]\n", "hunter2"),
    ] {
        let text = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\n{body}");
        let path = write(&d, "secret.yaml", &text);
        let cli = apply_fails(&d, &path);
        assert!(cli.contains("secret/db:"), "{cli}");
        assert!(!cli.contains(secret), "berth apply repeated the secret: {cli}");
        let (status, answer) = api_apply(&d, "secret.yaml", &text);
        assert_eq!(status, 400, "{answer}");
        assert!(!answer.to_string().contains(secret), "the API repeated the secret: {answer}");
    }
    assert!(!d.log().contains("hunter2"), "the daemon logged the secret");
    assert_serving(&mut d);
}

/// The most values the reader takes: just under 200,000, as a mapping of
/// 99,990 keys (about 2 MiB of text) and as one small list aliased 198
/// times (a few KiB). Both are read and refused later, within bounded memory.
#[test]
fn the_most_values_the_reader_takes_stays_within_memory() {
    let mut d = daemon("");
    let mut keys = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: many}\ndata:\n");
    for i in 0..99_990 {
        keys.push_str(&format!("  k{i}: vvvvvvvvvv\n"));
    }
    refused_both_ways(&mut d, "many.yaml", &keys, &["more than Kubernetes' limit of 1048576"]);
    let mut aliased = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: many}}\ndata:\n  k0: &a [{}]\n",
        vec!["x"; 1000].join(", ")
    );
    for i in 1..198 {
        aliased.push_str(&format!("  k{i}: *a\n"));
    }
    refused_both_ways(&mut d, "aliased.yaml", &aliased, &["data[k0]: invalid type: sequence, expected a string"]);
    let over = aliased + "  k198: *a\n  k199: *a\n";
    refused_both_ways(&mut d, "over.yaml", &over, &["more than 200000 values after expanding aliases"]);
}
