//! The API router over services on a fake host: each request goes through
//! the router (audit middleware, extractors, handlers, error mapping) with
//! `oneshot`, as the unix socket would hand it over, and the answers are
//! checked as a client sees them: status, JSON body, content type.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::testlab::Lab;

struct Api {
    lab: Lab,
    daemon: Arc<crate::Daemon>,
    router: axum::Router,
}

async fn api() -> Api {
    let lab = Lab::new().await;
    let declared = lab.declared();
    let daemon = crate::Daemon::with_services(
        Arc::clone(&lab.images),
        Arc::clone(&lab.events),
        Arc::clone(&lab.containers),
        Arc::clone(&lab.nets),
        declared,
        &lab.dir.path().join("root"),
        &lab.dir.path().join("run"),
    )
    .unwrap();
    let (router, _) = super::router(Arc::clone(&daemon));
    Api { lab, daemon, router }
}

/// An answer: its status, content type and body.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: bytes::Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// An error body's message, checked to be one `ErrorBody` of `kind`.
    fn error(&self, kind: &str) -> String {
        let v = self.json();
        assert_eq!(v["kind"], kind, "{v}");
        let e = v["error"].as_str().unwrap_or_else(|| panic!("no error message: {v}")).to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.unwrap_or("").to_string();
        let req = req.header(header::CONTENT_LENGTH, body.len()).body(Body::from(body)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer { status, content_type, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(&body.to_string())).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// The audit log, oldest first, as `(method path status)`.
    fn audited(&self) -> Vec<String> {
        let mut recs = self.daemon.events.audit_history(None, 1000).unwrap();
        recs.reverse();
        recs.iter().map(|r| format!("{} {} {}", r.method, r.path, r.status)).collect()
    }
}

#[tokio::test]
async fn a_container_is_created_started_inspected_stopped_and_removed_over_http() {
    let api = api().await;
    let created = api.post("/v1/containers", json!({"image": "app:1", "name": "web"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let c = created.json();
    assert_eq!((c["name"].as_str(), c["state"].as_str()), (Some("web"), Some("created")));
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(api.lab.record("web").id, id, "stored");

    let again = api.post("/v1/containers", json!({"image": "app:1", "name": "web"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.error("conflict").contains("already in use"));

    let missing_image = api.post("/v1/containers", json!({"image": "nope:1", "name": "other"})).await;
    assert_eq!(missing_image.status, StatusCode::NOT_FOUND, "{}", missing_image.json());

    let inspected = api.get("/v1/containers/web").await;
    assert_eq!(inspected.status, StatusCode::OK);
    assert_eq!(inspected.json()["id"], id.as_str());
    assert_eq!(api.get(&format!("/v1/containers/{}", &id[..12])).await.json()["name"], "web", "by ID prefix");

    let started = api.post("/v1/containers/web/start", json!(null)).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.json());
    let s = started.json();
    assert_eq!(s["state"], "running");
    assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
    assert_eq!(api.lab.fakes.shims.running(), vec![id.clone()]);

    let refused = api.delete("/v1/containers/web").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "a running container is not removed without force");
    assert!(refused.error("conflict").contains("is running"));

    let stopped = api.post("/v1/containers/web/stop?timeout=1", json!(null)).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.json());
    let s = stopped.json();
    assert_eq!((s["state"].as_str(), s["stopped_by_user"].as_bool()), (Some("exited"), Some(true)), "{s}");
    assert!(api.lab.fakes.runtime.calls().contains(&format!("kill {id} 15")));
    let twice = api.post("/v1/containers/web/stop", json!(null)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.error("conflict").contains("not running"));

    let listed = api.get("/v1/containers?all=true").await.json();
    assert_eq!(listed.as_array().map(|l| l.len()), Some(1), "{listed}");
    assert_eq!(api.get("/v1/containers").await.json(), json!([]), "only running ones by default");

    let removed = api.delete("/v1/containers/web").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(removed.body.is_empty());
    assert!(api.lab.containers.resolve("web").is_err());
    for (method, path) in [
        (Method::GET, "/v1/containers/web"),
        (Method::DELETE, "/v1/containers/web"),
        (Method::POST, "/v1/containers/web/start"),
        (Method::GET, "/v1/containers/web/logs"),
    ] {
        let gone = api.send(method.clone(), path, None).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(gone.error("not_found").contains("web"), "{method} {path}");
    }

    // Every mutating call was audited with the status it got.
    let audited = api.audited();
    for want in [
        "POST /v1/containers 201",
        "POST /v1/containers 409",
        "POST /v1/containers/web/start 200",
        "DELETE /v1/containers/web 409",
        "POST /v1/containers/web/stop 200",
        "DELETE /v1/containers/web 204",
        "DELETE /v1/containers/web 404",
    ] {
        assert!(audited.iter().any(|a| a == want), "{want} in {audited:#?}");
    }
    assert!(!audited.iter().any(|a| a.starts_with("GET /v1/containers ")), "plain reads are not: {audited:#?}");
}

#[tokio::test]
async fn a_bad_body_is_a_one_line_400_naming_the_field() {
    let api = api().await;
    for (body, want) in [
        (r#"{"name": "x"}"#, "missing field `image`"),
        (r#"{"image": "app:1", "imagee": "x"}"#, "unknown field `imagee`"),
        (r#"{"image": "app:1", "restart": "sometimes"}"#, "sometimes"),
        (r#"{"image": "app:1""#, "EOF while parsing"),
        ("", "EOF while parsing"),
        (r#"{"image": 5}"#, "image: invalid type: integer `5`"),
        (r#"{"image": "app:1", "limits": {"memory": []}}"#, "limits.memory: invalid type"),
    ] {
        let a = api.send(Method::POST, "/v1/containers", Some(body)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let e = a.error("invalid");
        assert!(e.starts_with("invalid request body: ") && e.contains(want), "{body}: {e}");
    }
    for (path, body, want) in [
        ("/v1/vips", r#"{"name": "web"}"#, "missing field `port`"),
        ("/v1/vips", r#"{"name": "web", "port": 70000}"#, "70000"),
        ("/v1/networks", r#"{"name": "n", "subnett": "10.0.0.0/24"}"#, "unknown field `subnett`"),
    ] {
        let a = api.send(Method::POST, path, Some(body)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(a.error("invalid").contains(want), "{path} {body}");
    }
    assert!(api.lab.store.list_containers().unwrap().is_empty());
    assert!(api.lab.nets.list_vips().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_route_is_a_404_pointing_at_the_document() {
    let api = api().await;
    for path in ["/v1/nope", "/v2/containers", "/v1/containers/web/frobnicate", "/"] {
        let a = api.get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.error("not_found"), "no such API route; see /v1/openapi.json", "{path}");
    }
    let a = api.send(Method::PUT, "/v1/containers", None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.error("invalid").contains("PUT"), "names the method");
    for path in ["/v1/containers?all=maybe", "/v1/containers/x/logs?tail=all"] {
        let a = api.get(path).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(a.error("invalid").contains("query"), "{path}");
    }
    let doc = api.get("/v1/openapi.json").await;
    assert_eq!((doc.status, doc.content_type.as_deref()), (StatusCode::OK, Some("application/json")));
    assert!(doc.json()["paths"]["/v1/containers"].is_object());
}

fn manifests(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec:\n      containers:\n        - name: web\n          image: app:1\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n  \
         ports: [{{port: 80, targetPort: 8080}}]\n"
    )
}

fn apply_body(replicas: u32, dry_run: bool) -> Value {
    json!({"files": [{"name": "web.yaml", "text": manifests(replicas)}], "dry_run": dry_run})
}

/// The `(kind, namespace/name, action)` of an apply's answer.
fn changes(v: &Value) -> Vec<(String, String, String)> {
    v["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes: {v}"))
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("kind"), format!("{}/{}", s("namespace"), s("name")), s("action"))
        })
        .collect()
}

fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
}

#[tokio::test]
async fn a_dry_run_apply_lists_the_changes_and_stores_nothing() {
    let api = api().await;
    let dry = api.post("/v1/apply", apply_body(2, true)).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.json());
    let want = owned(&[("Deployment", "default/web", "created"), ("Service", "default/web", "created")]);
    assert_eq!(changes(&dry.json()), want);
    for resource in ["deployments", "services"] {
        let list = api.get(&format!("/v1/objects/{resource}")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.json()["items"], json!([]), "{resource}");
    }
    assert_eq!(api.get("/v1/objects/deployments/default/web").await.status, StatusCode::NOT_FOUND);
    assert!(api.lab.nets.services().unwrap().is_empty(), "no service address was taken");

    // Applied for real, then a dry run of a change: reported, not made.
    assert_eq!(changes(&api.post("/v1/apply", apply_body(2, false)).await.json()), want);
    let dry = api.post("/v1/apply", apply_body(5, true)).await.json();
    assert_eq!(
        changes(&dry),
        owned(&[("Deployment", "default/web", "configured"), ("Service", "default/web", "unchanged")])
    );
    let stored = api.get("/v1/objects/deployments/default/web").await.json();
    assert_eq!(stored["spec"]["replicas"], 2, "{stored}");
    assert_eq!(api.lab.nets.services().unwrap().len(), 1, "the real apply programmed the Service");

    // A manifest that cannot be read is refused whole, dry run or not.
    let bad = json!({"files": [{"name": "bad.yaml", "text": "apiVersion: v1\nkind: Nope\nmetadata: {name: x}\n"}],
                     "dry_run": true});
    let a = api.post("/v1/apply", bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["error"].as_str().unwrap().contains("bad.yaml"), "{}", a.json());
    let a = api.post("/v1/apply", json!({"files": [], "dry_run": true, "force": true})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error("invalid").contains("unknown field `force`"));
}

#[tokio::test]
async fn a_rollout_action_with_a_field_it_does_not_take_is_a_400() {
    let api = api().await;
    for kind in ["rollouts", "deployments"] {
        let path = format!("/v1/objects/{kind}/default/web/rollout");
        for (body, want) in [
            (json!({"action": "pause", "to_revision": 2}), "unknown field `to_revision`"),
            (json!({"action": "resume", "full": true}), "unknown field `full`"),
            (json!({"action": "undo", "to_revision": "two"}), "two"),
            (json!({"action": "explode"}), "unknown variant `explode`"),
            (json!({"to_revision": 2}), "missing field `action`"),
        ] {
            let a = api.post(&path, body.clone()).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path} {body}");
            let e = a.error("invalid");
            assert!(e.contains(want), "{path} {body}: {e}");
        }
        // A well-formed action reaches the service: there is no such object.
        let a = api.post(&path, json!({"action": "undo", "to_revision": 2})).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.json());
        assert!(a.error("not_found").contains("web"));
    }
}

#[tokio::test]
async fn logs_are_served_as_json_lines_and_a_bad_query_is_a_400() {
    let api = api().await;
    let req = berth_core::api::ContainerCreateRequest {
        image: "app:1".into(),
        name: Some("web".into()),
        ..Default::default()
    };
    api.lab.containers.create(req).await.unwrap();
    let (_, path) = api.lab.containers.log_file("web").unwrap();
    let mut text = String::new();
    for (i, word) in ["one", "two", "three"].iter().enumerate() {
        let line = berth_shim::logfile::LogLine {
            time: format!("2026-01-01T00:00:0{}Z", i + 1),
            stream: "stdout".into(),
            log: format!("{word}\n"),
        };
        text.push_str(&serde_json::to_string(&line).unwrap());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();

    let a = api.get("/v1/containers/web/logs?tail=2").await;
    assert_eq!((a.status, a.content_type.as_deref()), (StatusCode::OK, Some("application/x-ndjson")));
    let lines: Vec<Value> =
        String::from_utf8(a.body.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            json!({"time": "2026-01-01T00:00:02Z", "stream": "stdout", "log": "two\n"}),
            json!({"time": "2026-01-01T00:00:03Z", "stream": "stdout", "log": "three\n"}),
        ]
    );
    let a = api.get("/v1/containers/web/logs?since=2026-01-01T00:00:03Z").await;
    assert_eq!(String::from_utf8(a.body.to_vec()).unwrap().lines().count(), 1);

    let a = api.get("/v1/containers/web/logs?since=yesterday").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error("invalid").contains("--since \"yesterday\" is not an RFC 3339 time"));
    for query in ["tail=all", "timestamps=true"] {
        let a = api.get(&format!("/v1/containers/web/logs?{query}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
    }
    // Reading a log is audited, with how the stream ended.
    assert!(api.audited().iter().any(|a| a == "GET /v1/containers/web/logs 200"), "{:#?}", api.audited());
}
