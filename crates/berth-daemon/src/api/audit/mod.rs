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

mod summary;
pub use summary::{objects_summary, summary};

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
    use super::summary::word;
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
            action: serde_json::from_value(serde_json::json!(action)).unwrap(),
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
