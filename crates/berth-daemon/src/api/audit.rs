//! The audit log's view of a call: who asked, what they asked (a redacted
//! summary), and how it ended.
//!
//! Recorded: every mutating call, and the reads worth knowing about (log
//! and event streams, Secrets). A call that streams its answer (logs,
//! events, exec, pull, push) is recorded when the stream ends, with how it
//! ended, not when its 200 goes out. The summary is built by
//! [`summary`], a pure function of the method, path, query and JSON body
//! that names only the fields it chooses: never a password, a secret
//! value or an environment value (names only).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse as _, Response};
use berth_core::api::AuditRecord;
use serde_json::Value;

use super::{Peer, State};

/// Request bodies up to this size are read for the summary (larger ones,
/// or ones of unknown length, are summarised from the path alone).
const SUMMARY_BODY_MAX: u64 = 1 << 20;
/// Error bodies up to this size are read for the reason.
const ERROR_BODY_MAX: usize = 64 << 10;
/// Longest error message kept in a record.
const ERROR_MAX_CHARS: usize = 1000;

/// What a handler adds to its call's record when the request alone does
/// not say it (apply and delete name their objects once they are read).
#[derive(Clone, Default)]
pub struct AuditNote(Arc<Mutex<Option<String>>>);

impl AuditNote {
    pub fn set(&self, summary: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(summary);
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The path's segments after `/v1/`.
fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').trim_start_matches("v1/").split('/').filter(|s| !s.is_empty()).collect()
}

/// Whether a call is recorded: every mutating one, and reads of streams
/// and Secrets.
pub fn audited(method: &Method, path: &str) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return true;
    }
    matches!(segments(path).as_slice(), ["events"] | ["containers", _, "logs"] | ["objects", "secrets", ..])
}

/// Whether the call's answer, when it streams, ends with an event saying
/// how it went (so a stream cut short is a failure), as opposed to a
/// stream that runs until the client leaves (logs, events).
fn stream_has_last_event(path: &str) -> bool {
    matches!(segments(path).as_slice(), ["containers", _, "exec"] | ["images", ..])
}

/// The body of calls whose errors may quote the manifests they carry
/// (and so a Secret's value): their error text is not recorded.
fn quotes_manifests(path: &str) -> bool {
    matches!(segments(path).as_slice(), ["apply"] | ["delete"])
}

/// A value as it appears in a summary: bare when unambiguous, else quoted.
fn word(s: &str) -> String {
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"[],=".contains(c)) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    format!("[{}]", items.into_iter().map(word).collect::<Vec<_>>().join(","))
}

/// `key=value` pairs, in order, of the fields that are present and not
/// empty, false or null.
struct Fields(String);

impl Fields {
    fn new(verb: &str) -> Self {
        Fields(verb.to_string())
    }

    fn raw(&mut self, key: &str, value: String) -> &mut Self {
        let _ = write!(self.0, " {key}={value}");
        self
    }

    fn text(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) if !s.is_empty() => self.raw(key, word(s)),
            _ => self,
        }
    }

    /// A JSON field: strings bare or quoted, arrays of strings as lists,
    /// numbers and `true` as they are.
    fn json(&mut self, key: &str, v: &Value) -> &mut Self {
        match v {
            Value::String(s) => self.text(key, Some(s)),
            Value::Bool(true) => self.raw(key, "true".into()),
            Value::Number(n) => self.raw(key, n.to_string()),
            Value::Array(a) if !a.is_empty() => self.raw(key, list(a.iter().map(|x| x.as_str().unwrap_or("?")))),
            _ => self,
        }
    }

    /// Environment entries, names only.
    fn env_names(&mut self, key: &str, v: &Value) -> &mut Self {
        let names: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(|e| e.split_once('=').map_or(e, |(k, _)| k)).collect())
            .unwrap_or_default();
        if names.is_empty() {
            self
        } else {
            self.raw(key, list(names))
        }
    }

    fn done(self) -> String {
        self.0
    }
}

/// A redacted one-line summary of a call.
pub fn summary(method: &Method, path: &str, query: &BTreeMap<String, String>, body: Option<&Value>) -> String {
    let null = Value::Null;
    let b = |k: &str| body.and_then(|b| b.get(k)).unwrap_or(&null);
    let q = |k: &str| query.get(k).map(String::as_str);
    let segs = segments(path);
    let mut f;
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["containers"]) => {
            f = Fields::new("create container");
            f.json("image", b("image")).json("name", b("name"));
            let sec = b("security");
            for key in ["privileged", "cap_add", "cap_drop", "security_opt", "read_only"] {
                f.json(key, sec.get(key).unwrap_or(&null));
            }
            for key in ["volumes", "tmpfs", "networks", "publish", "publish_all", "user", "entrypoint", "cmd"] {
                f.json(key, b(key));
            }
            f.env_names("env", b("env")).json("restart", b("restart")).json("auto_remove", b("auto_remove"));
            let secret_env: Vec<&str> = b("secret_env")
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.get("env").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if !secret_env.is_empty() {
                f.raw("secret_env", list(secret_env));
            }
        }
        ("POST", ["containers", id, "exec", rest @ ..]) => {
            f = Fields::new("exec");
            f.text("container", Some(id)).json("cmd", b("cmd")).json("user", b("user")).json("workdir", b("workdir"));
            f.env_names("env", b("env"));
            if rest == ["tty"] {
                f.raw("tty", "true".into());
            }
            if b("stdin").is_string() {
                f.raw("stdin", "true".into());
            }
        }
        ("POST", ["containers", id, "rename"]) => {
            f = Fields::new("rename");
            f.text("container", Some(id)).json("to", b("name"));
        }
        ("POST", ["containers", id, verb]) => {
            f = Fields::new(verb);
            f.text("container", Some(id)).text("signal", q("signal")).text("timeout", q("timeout"));
        }
        ("DELETE", ["containers", id]) => {
            f = Fields::new("remove");
            f.text("container", Some(id)).text("force", q("force").filter(|v| *v == "true"));
        }
        ("GET", ["containers", id, "logs"]) => {
            f = Fields::new("logs");
            f.text("container", Some(id)).text("follow", q("follow").filter(|v| *v == "true"));
        }
        ("GET", ["events"]) => {
            f = Fields::new("events");
            f.text("since", q("since")).text("until", q("until")).text("filter", q("filter"));
        }
        ("GET", ["objects", "secrets"]) => {
            f = Fields::new("list secrets");
            f.text("namespace", q("namespace").or(Some("default")).filter(|_| q("all_namespaces") != Some("true")));
            f.text("all_namespaces", q("all_namespaces").filter(|v| *v == "true")).text("selector", q("selector"));
            f.raw("show_secrets", (q("show_secrets") == Some("true")).to_string());
        }
        ("GET", ["objects", "secrets", ns, name]) => {
            f = Fields::new(&format!("get secret {}/{}", word(ns), word(name)));
            f.raw("show_secrets", (q("show_secrets") == Some("true")).to_string());
        }
        ("DELETE", ["objects", resource, ns, name]) => {
            f = Fields::new(&format!("delete {} {}/{}", word(resource), word(ns), word(name)));
        }
        ("POST", ["objects", resource, ns, name, "scale"]) => {
            f = Fields::new(&format!("scale {}/{}/{}", word(resource), word(ns), word(name)));
            f.json("replicas", b("replicas"));
        }
        ("POST", ["objects", resource, ns, name, "rollout"]) => {
            f = Fields::new(&format!("rollout {}/{}/{}", word(resource), word(ns), word(name)));
            f.json("action", b("action")).json("to_revision", b("to_revision")).json("full", b("full"));
        }
        ("POST", ["apply"]) => f = Fields::new("apply"),
        ("POST", ["delete"]) => f = Fields::new("delete"),
        ("POST", ["images", verb @ ("pull" | "push")]) => {
            f = Fields::new(verb);
            f.json("reference", b("reference")).json("platform", b("platform"));
        }
        ("POST", ["images", "import"]) => {
            f = Fields::new("import image");
            f.json("path", b("path")).json("tag", b("tag"));
        }
        ("POST", ["images", "export"]) => {
            f = Fields::new("export image");
            f.json("reference", b("reference")).json("path", b("path"));
        }
        ("POST", ["images", "tag"]) => {
            f = Fields::new("tag image");
            f.json("source", b("source")).json("target", b("target"));
        }
        ("POST", ["images", "prune"]) => {
            f = Fields::new("prune images");
            f.text("all", q("all").filter(|v| *v == "true"));
        }
        ("DELETE", ["images", name]) => {
            f = Fields::new("remove image");
            f.text("image", Some(name)).text("force", q("force").filter(|v| *v == "true"));
        }
        ("POST", ["auth", verb @ ("login" | "logout")]) => {
            // Never the password.
            f = Fields::new(verb);
            f.json("registry", b("registry")).json("username", b("username"));
        }
        ("POST", ["networks"]) => {
            f = Fields::new("create network");
            for key in ["name", "subnet", "gateway", "internal", "mtu"] {
                f.json(key, b(key));
            }
        }
        ("POST", ["networks", name, verb @ ("connect" | "disconnect")]) => {
            f = Fields::new(verb);
            f.text("network", Some(name)).json("container", b("container")).json("aliases", b("aliases"));
        }
        ("DELETE", ["networks", name]) => {
            f = Fields::new("remove network");
            f.text("network", Some(name));
        }
        ("POST", ["vips"]) => {
            f = Fields::new("create vip");
            for key in ["name", "port", "ip", "protocol"] {
                f.json(key, b(key));
            }
        }
        ("PUT", ["vips", name, "backends"]) => {
            f = Fields::new("set vip backends");
            f.text("vip", Some(name)).json("backends", b("backends"));
        }
        ("DELETE", ["vips", name]) => {
            f = Fields::new("remove vip");
            f.text("vip", Some(name));
        }
        _ => f = Fields::new(&format!("{} {}", method.as_str().to_lowercase(), word(path))),
    }
    f.done()
}

/// The summary of an apply or delete, from what it did: `apply
/// objects=[deployment/default/web(created),secret/default/db(unchanged)]`.
pub fn objects_summary(verb: &str, dry_run: bool, changes: &[berth_core::api::ObjectChange]) -> String {
    let objects: Vec<String> = changes
        .iter()
        .map(|c| format!("{}/{}/{}({})", c.kind.to_lowercase(), c.namespace, c.name, c.action))
        .map(|o| {
            if o.chars().any(|c| (c.is_whitespace() && c != ' ') || "\"[],=".contains(c)) {
                format!("{o:?}")
            } else {
                o.replace(' ', "_")
            }
        })
        .collect();
    let mut s = verb.to_string();
    if dry_run {
        s.push_str(" dry_run=true");
    }
    let _ = write!(s, " objects=[{}]", objects.join(","));
    s
}

/// How a stream ended, from its last line: `(ok, error, detail)`.
fn stream_outcome(last_line: &[u8], needs_last_event: bool) -> (bool, Option<String>, Option<String>) {
    let v: Value = serde_json::from_slice(last_line).unwrap_or(Value::Null);
    match v.get("event").and_then(Value::as_str) {
        Some("error") => (false, Some(v["error"].as_str().unwrap_or("failed").to_string()), None),
        Some("exit") => (true, None, Some(format!("exit_code={}", v["exit_code"]))),
        Some("done") => (true, None, None),
        _ if needs_last_event => {
            (false, Some("the stream ended before its last event (the client left or the daemon failed)".into()), None)
        }
        _ => (true, None, None),
    }
}

/// Records a stream's call once, when it ends, fails or is dropped.
struct StreamRecord {
    daemon: State,
    record: Option<AuditRecord>,
    needs_last_event: bool,
    /// The current line so far and the last complete one.
    line: Vec<u8>,
    last: Vec<u8>,
}

impl StreamRecord {
    fn saw(&mut self, chunk: &[u8]) {
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            if self.line.len() + part.len() <= ERROR_BODY_MAX {
                self.line.extend_from_slice(part);
            }
            if part.ends_with(b"\n") {
                self.last = std::mem::take(&mut self.line);
            }
        }
    }

    fn finish(&mut self, failure: Option<String>) {
        let Some(mut rec) = self.record.take() else { return };
        let (ok, error, detail) = match failure {
            Some(e) => (false, Some(e), None),
            None => {
                let last = if self.line.is_empty() { &self.last } else { &self.line };
                stream_outcome(last.trim_ascii(), self.needs_last_event)
            }
        };
        rec.ok = ok;
        rec.error = error.map(|e| truncate(&e));
        if let Some(d) = detail {
            rec.summary.push(' ');
            rec.summary.push_str(&d);
        }
        self.daemon.events.audit(&rec);
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        self.finish(None);
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(ERROR_MAX_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The middleware: summarises the request, runs it, and records the
/// outcome (for a stream, once the stream is over).
pub async fn middleware(
    axum::extract::State(d): axum::extract::State<State>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    if !audited(&method, &path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<axum::extract::ConnectInfo<Peer>>().map(|c| c.0).unwrap_or_default();
    let query: BTreeMap<String, String> =
        axum::extract::Query::try_from_uri(req.uri()).map(|q: axum::extract::Query<_>| q.0).unwrap_or_default();
    let time = d.events.now();
    // A small JSON body is read here for the summary and handed on as it was.
    let small_json =
        req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .is_some_and(|n| n <= SUMMARY_BODY_MAX)
            && !quotes_manifests(&path);
    let (mut req, body) = if small_json {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, SUMMARY_BODY_MAX as usize).await {
            Ok(bytes) => {
                let json = serde_json::from_slice::<Value>(&bytes).ok();
                (axum::extract::Request::from_parts(parts, Body::from(bytes)), json)
            }
            Err(e) => {
                let resp = super::ApiError::BadRequest(format!("reading the request body: {e}")).into_response();
                let rec = AuditRecord {
                    time,
                    uid: peer.uid,
                    pid: peer.pid,
                    method: method.to_string(),
                    path,
                    status: resp.status().as_u16(),
                    summary: summary(&method, parts.uri.path(), &query, None),
                    ok: false,
                    error: Some(format!("reading the request body: {e}")),
                };
                d.events.audit(&rec);
                return resp;
            }
        }
    } else {
        (req, None)
    };
    let note = AuditNote::default();
    req.extensions_mut().insert(note.clone());
    let resp = next.run(req).await;
    let status = resp.status();
    let mut rec = AuditRecord {
        time,
        uid: peer.uid,
        pid: peer.pid,
        method: method.to_string(),
        summary: note.take().unwrap_or_else(|| summary(&method, &path, &query, body.as_ref())),
        path: path.clone(),
        status: status.as_u16(),
        ok: status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS,
        error: None,
    };
    if status.is_client_error() || status.is_server_error() {
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, ERROR_BODY_MAX).await.unwrap_or_default();
        rec.error = Some(if quotes_manifests(&path) {
            "(the reason is not recorded: it may quote the manifests)".to_string()
        } else {
            let reason = serde_json::from_slice::<berth_core::api::ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            truncate(&reason)
        });
        d.events.audit(&rec);
        return Response::from_parts(parts, Body::from(bytes));
    }
    let streams =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    if !streams {
        d.events.audit(&rec);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let record = StreamRecord {
        daemon: d,
        record: Some(rec),
        needs_last_event: stream_has_last_event(&path),
        line: Vec::new(),
        last: Vec::new(),
    };
    use futures::StreamExt;
    let stream = futures::stream::unfold((body.into_data_stream(), record), |(mut inner, mut record)| async move {
        match inner.next().await {
            Some(Ok(chunk)) => {
                record.saw(&chunk);
                Some((Ok(chunk), (inner, record)))
            }
            Some(Err(e)) => {
                record.finish(Some(e.to_string()));
                Some((Err(e), (inner, record)))
            }
            None => {
                record.finish(None);
                None
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(method: Method, path: &str, query: &[(&str, &str)], body: &str) -> String {
        let q = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let body: Option<Value> = (!body.is_empty()).then(|| serde_json::from_str(body).unwrap());
        summary(&method, path, &q, body.as_ref())
    }

    #[test]
    fn a_run_shows_what_it_asks_for_and_no_environment_value() {
        let got = s(
            Method::POST,
            "/v1/containers",
            &[],
            r#"{"image":"busybox","name":"x","volumes":["/:/host"],"env":["PASSWORD=hunter2","DEBUG"],
               "security":{"privileged":true,"cap_add":["SYS_ADMIN"],"read_only":false},"cmd":["sh","-c","echo hi"],
               "secret_env":[{"env":"DB","namespace":"default","secret":"db","key":"password"}]}"#,
        );
        assert_eq!(
            got,
            r#"create container image=busybox name=x privileged=true cap_add=[SYS_ADMIN] volumes=[/:/host] cmd=[sh,-c,"echo hi"] env=[PASSWORD,DEBUG] secret_env=[DB]"#
        );
        assert!(!got.contains("hunter2"));
    }

    #[test]
    fn exec_logs_events_and_lifecycle() {
        let exec = s(
            Method::POST,
            "/v1/containers/web/exec",
            &[],
            r#"{"cmd":["cat","/etc/shadow"],"env":["TOKEN=abc"],"stdin":"aGk="}"#,
        );
        assert_eq!(exec, "exec container=web cmd=[cat,/etc/shadow] env=[TOKEN] stdin=true");
        assert_eq!(
            s(Method::POST, "/v1/containers/web/exec/tty", &[], r#"{"cmd":["sh"]}"#),
            "exec container=web cmd=[sh] tty=true"
        );
        assert_eq!(
            s(Method::GET, "/v1/containers/nosuch/logs", &[("follow", "true")], ""),
            "logs container=nosuch follow=true"
        );
        assert_eq!(
            s(Method::POST, "/v1/containers/web/kill", &[("signal", "HUP")], ""),
            "kill container=web signal=HUP"
        );
        assert_eq!(
            s(Method::DELETE, "/v1/containers/web", &[("force", "true")], ""),
            "remove container=web force=true"
        );
        assert_eq!(
            s(Method::GET, "/v1/events", &[("since", "2026-01-01T00:00:00Z")], ""),
            "events since=2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn secret_reads_and_credentials() {
        assert_eq!(
            s(Method::GET, "/v1/objects/secrets/default/db", &[("show_secrets", "true")], ""),
            "get secret default/db show_secrets=true"
        );
        assert_eq!(s(Method::GET, "/v1/objects/secrets", &[], ""), "list secrets namespace=default show_secrets=false");
        let login =
            s(Method::POST, "/v1/auth/login", &[], r#"{"registry":"r.lan","username":"me","password":"pw1234"}"#);
        assert_eq!(login, "login registry=r.lan username=me");
    }

    #[test]
    fn which_calls_are_recorded() {
        assert!(audited(&Method::POST, "/v1/containers/x/start"));
        assert!(audited(&Method::GET, "/v1/containers/x/logs"));
        assert!(audited(&Method::GET, "/v1/events"));
        assert!(audited(&Method::GET, "/v1/objects/secrets/default/db"));
        assert!(!audited(&Method::GET, "/v1/containers"));
        assert!(!audited(&Method::GET, "/v1/objects/pods"));
        assert!(!audited(&Method::GET, "/v1/audit"));
    }

    #[test]
    fn apply_names_its_objects() {
        let change = |action: &str, kind: &str, name: &str| berth_core::api::ObjectChange {
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            action: action.into(),
        };
        let got = objects_summary(
            "apply",
            true,
            &[change("created", "Deployment", "web"), change("unchanged", "Secret", "db")],
        );
        assert_eq!(got, "apply dry_run=true objects=[deployment/default/web(created),secret/default/db(unchanged)]");
    }

    #[test]
    fn streams_end_as_their_last_event_says() {
        assert_eq!(
            stream_outcome(br#"{"event":"exit","exit_code":3}"#, true),
            (true, None, Some("exit_code=3".into()))
        );
        assert_eq!(
            stream_outcome(br#"{"event":"error","error":"no such image"}"#, true).1.as_deref(),
            Some("no such image")
        );
        assert!(!stream_outcome(br#"{"event":"blob"}"#, true).0);
        assert!(stream_outcome(br#"{"line":"x"}"#, false).0);
        assert!(stream_outcome(b"", false).0);
    }

    #[test]
    fn words_are_quoted_when_ambiguous() {
        assert_eq!(word("a/b:c"), "a/b:c");
        assert_eq!(word("a b"), "\"a b\"");
        assert_eq!(word(""), "\"\"");
        assert_eq!(word("x=y"), "\"x=y\"");
    }
}
