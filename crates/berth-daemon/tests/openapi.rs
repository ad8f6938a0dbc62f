//! Keeps `/v1/openapi.json` true: every documented operation is served,
//! every served route is documented, and what GET operations answer has
//! exactly the fields their documented schema names.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_daemon::{Daemon, DaemonConfig, DaemonOptions};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn daemon(dir: &std::path::Path) -> Arc<Daemon> {
    Daemon::open(&DaemonOptions {
        root: dir.join("root"),
        run_root: dir.join("run"),
        socket: dir.join("run/berth.sock"),
        config: DaemonConfig::default(),
    })
    .expect("daemon opens on a temporary root")
}

async fn call(router: &axum::Router, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Body::from(body.unwrap_or("").to_string())).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_served_document_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (router, doc) = berth_daemon::api::router(daemon(dir.path()));
    let (status, served) = call(&router, Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, serde_json::to_value(&doc).unwrap(), "the served document is the one the router was built from");

    let ops = documented(&served);
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/v1/version"),
        ("GET", "/metrics"),
        ("GET", "/v1/system/df"),
        ("GET", "/v1/images"),
        ("GET", "/v1/images/{name}"),
        ("DELETE", "/v1/images/{name}"),
        ("POST", "/v1/images/pull"),
        ("POST", "/v1/images/push"),
        ("POST", "/v1/images/import"),
        ("POST", "/v1/images/export"),
        ("POST", "/v1/images/tag"),
        ("POST", "/v1/images/prune"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/containers"),
        ("POST", "/v1/containers"),
        ("GET", "/v1/containers/{id}"),
        ("DELETE", "/v1/containers/{id}"),
        ("POST", "/v1/containers/{id}/start"),
        ("POST", "/v1/containers/{id}/stop"),
        ("POST", "/v1/containers/{id}/kill"),
        ("POST", "/v1/containers/{id}/wait"),
        ("GET", "/v1/containers/{id}/logs"),
        ("GET", "/v1/containers/{id}/stats"),
        ("GET", "/v1/containers/{id}/top"),
        ("POST", "/v1/containers/{id}/exec"),
        ("POST", "/v1/containers/{id}/exec/tty"),
        ("POST", "/v1/containers/{id}/rename"),
        ("GET", "/v1/networks"),
        ("POST", "/v1/networks"),
        ("GET", "/v1/networks/{name}"),
        ("DELETE", "/v1/networks/{name}"),
        ("POST", "/v1/networks/{name}/connect"),
        ("POST", "/v1/networks/{name}/disconnect"),
        ("GET", "/v1/vips"),
        ("POST", "/v1/vips"),
        ("GET", "/v1/vips/{name}"),
        ("DELETE", "/v1/vips/{name}"),
        ("PUT", "/v1/vips/{name}/backends"),
        ("POST", "/v1/apply"),
        ("POST", "/v1/delete"),
        ("GET", "/v1/objects/{resource}"),
        ("GET", "/v1/objects/{resource}/{namespace}/{name}"),
        ("DELETE", "/v1/objects/{resource}/{namespace}/{name}"),
        ("POST", "/v1/objects/deployments/{namespace}/{name}/scale"),
        ("GET", "/v1/objects/deployments/{namespace}/{name}/revisions"),
        ("POST", "/v1/objects/deployments/{namespace}/{name}/rollout"),
        ("GET", "/v1/objects/rollouts/{namespace}/{name}/revisions"),
        ("POST", "/v1/objects/rollouts/{namespace}/{name}/rollout"),
        ("POST", "/v1/objects/rollouts/{namespace}/{name}/scale"),
        ("GET", "/v1/events"),
        ("GET", "/v1/audit"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(ops, expected, "a route was added or removed: update this list and the README's API section");

    // Every documented operation is served (not a routing 404 or 405).
    for (method, path) in &ops {
        let mut concrete = path
            .replace("{name}", "nonexistent")
            .replace("{id}", "nonexistent")
            .replace("{resource}", "pods")
            .replace("{namespace}", "default");
        if path == "/v1/events" {
            // A stream that would go on forever; bound it.
            concrete.push_str("?until=2000-01-01T00:00:00Z");
        }
        let body = (method == "POST").then_some("{}");
        let (status, body) = call(&router, method.parse().unwrap(), &concrete, body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            assert_ne!(
                body["error"], "no such API route; see /v1/openapi.json",
                "{method} {path} is documented but not routed"
            );
        }
        // Every error is an ErrorBody.
        if status.is_client_error() || status.is_server_error() {
            assert!(body["error"].is_string() && body["kind"].is_string(), "{method} {path}: {body}");
        }
    }
    let (status, _) = call(&router, Method::GET, "/v1/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn schema_fields(doc: &Value, reference: &str) -> BTreeSet<String> {
    let name = reference.rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    let mut out = BTreeSet::new();
    // `allOf` appears for flattened structs.
    let parts: Vec<&Value> = match schema["allOf"].as_array() {
        Some(all) => all.iter().collect(),
        None => vec![schema],
    };
    for p in parts {
        if let Some(r) = p["$ref"].as_str() {
            out.extend(schema_fields(doc, r));
        }
        if let Some(props) = p["properties"].as_object() {
            out.extend(props.keys().cloned());
        }
    }
    out
}

#[tokio::test]
async fn get_answers_have_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (router, doc) = berth_daemon::api::router(daemon(dir.path()));
    let doc = serde_json::to_value(&doc).unwrap();
    for path in ["/v1/version", "/v1/system/df"] {
        let (status, body) = call(&router, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let reference = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} documents a schema reference"));
        let fields: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(fields, schema_fields(&doc, reference), "{path} answers other fields than documented");
    }
    let (status, body) = call(&router, Method::GET, "/v1/images", None).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!([])));
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _) = berth_daemon::api::router(daemon(dir.path()));
    let (status, body) =
        call(&router, Method::POST, "/v1/images/pull", Some(r#"{"reference":"a","plaform":"x"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("plaform"), "{body}");
    let (status, body) = call(&router, Method::POST, "/v1/images/pull", Some(r#"{"reference":"Not Valid"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("invalid image reference"), "{body}");
    let (status, body) = call(&router, Method::GET, "/v1/images/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["kind"], "not_found");
    let (status, _) = call(&router, Method::POST, "/v1/images/import", Some(r#"{"path":"relative/path"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
