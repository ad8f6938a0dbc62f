//! The declared verbs against a fake daemon on a unix socket: which
//! requests they send (paths, query parameters, bodies) and which exit
//! codes they end with. No root, no real daemon.

mod common;

use common::{list, route, FakeDaemon};
use serde_json::{json, Value};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn web_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "web", "ready": true, "restartCount": 0, "containerID": format!("berth://{ID}"),
                "state": {"running": {"startedAt": "2026-03-01T11:00:00Z"}}}]}})
}

#[tokio::test]
async fn get_lists_with_the_documented_query() {
    let d = FakeDaemon::start(vec![
        route("GET", "/v1/objects/pods?namespace=default&selector=app%3Dweb", 200, list(vec![web_pod("web-a")])),
        route("GET", "/v1/objects/deployments?all_namespaces=true", 200, list(vec![])),
    ]);
    assert_eq!(d.run(&["get", "pods", "-l", "app=web"]).await, 0);
    assert_eq!(d.run(&["get", "deploy", "-A", "-o", "json"]).await, 0);
    assert_eq!(
        d.paths(),
        [
            "GET /v1/objects/pods?namespace=default&selector=app%3Dweb",
            "GET /v1/objects/deployments?all_namespaces=true"
        ]
    );
}

#[tokio::test]
async fn get_by_name_and_a_missing_name() {
    let d = FakeDaemon::start(vec![route("GET", "/v1/objects/pods/shop/web-a", 200, web_pod("web-a"))]);
    assert_eq!(d.run(&["get", "pod/web-a", "-n", "shop", "-o", "yaml"]).await, 0);
    assert_eq!(d.run(&["get", "po", "nope", "-n", "shop"]).await, 1);
    assert_eq!(d.paths(), ["GET /v1/objects/pods/shop/web-a", "GET /v1/objects/pods/shop/nope"]);
}

#[tokio::test]
async fn an_unknown_type_is_a_usage_error_before_any_request() {
    let d = FakeDaemon::start(vec![]);
    assert_eq!(d.run(&["get", "foo"]).await, 2);
    assert!(d.seen().is_empty());
}

#[tokio::test]
async fn apply_sends_every_file_once() {
    let dir = std::env::temp_dir().join(format!("berth-cli-apply-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.yaml"), "kind: Service\n").unwrap();
    std::fs::write(dir.join("a.yml"), "kind: Deployment\n").unwrap();
    let changes = json!({"changes": [
        {"kind": "Deployment", "namespace": "default", "name": "web", "action": "created"},
        {"kind": "Service", "namespace": "default", "name": "web", "action": "unchanged"}]});
    let d = FakeDaemon::start(vec![route("POST", "/v1/apply", 200, changes)]);
    assert_eq!(d.run(&["apply", "-f", dir.to_str().unwrap(), "--dry-run=server"]).await, 0);
    let seen = d.seen();
    assert_eq!(seen.len(), 1);
    let body = seen[0].body.as_ref().unwrap();
    assert_eq!(body["dry_run"], true);
    let names: Vec<&str> = body["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(names[0].ends_with("a.yml") && names[1].ends_with("b.yaml"), "{names:?}");
    assert_eq!(body["files"][0]["text"], "kind: Deployment\n");

    // An unreadable file: nothing is sent.
    assert_eq!(d.run(&["apply", "-f", dir.join("missing.yaml").to_str().unwrap()]).await, 1);
    assert_eq!(d.seen().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn delete_scale_and_their_paths() {
    let deleted = json!({"changes": [{"kind": "Deployment", "namespace": "shop", "name": "web", "action": "deleted"}]});
    let d = FakeDaemon::start(vec![
        route("DELETE", "/v1/objects/deployments/shop/web", 200, deleted),
        route("POST", "/v1/objects/deployments/default/web/scale", 200, json!({"kind": "Deployment"})),
    ]);
    assert_eq!(d.run(&["delete", "deploy/web", "-n", "shop"]).await, 0);
    assert_eq!(d.run(&["delete", "svc", "gone", "-n", "shop", "--ignore-not-found"]).await, 0);
    assert_eq!(d.run(&["delete", "svc", "gone", "-n", "shop"]).await, 1);
    assert_eq!(d.run(&["scale", "deployment", "web", "--replicas", "3"]).await, 0);
    assert_eq!(d.run(&["scale", "svc/web", "--replicas", "3"]).await, 2);
    let seen = d.seen();
    assert_eq!(
        d.paths(),
        [
            "DELETE /v1/objects/deployments/shop/web",
            "DELETE /v1/objects/services/shop/gone",
            "DELETE /v1/objects/services/shop/gone",
            "POST /v1/objects/deployments/default/web/scale"
        ]
    );
    assert_eq!(seen[3].body, Some(json!({"replicas": 3})));
}

#[tokio::test]
async fn logs_of_a_deployment_reads_one_of_its_pods() {
    let dep = json!({"kind": "Deployment", "metadata": {"name": "web"},
                     "spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
    let d = FakeDaemon::start(vec![
        route("GET", "/v1/objects/deployments/default/web", 200, dep),
        route(
            "GET",
            "/v1/objects/pods?namespace=default&selector=app%3Dweb%2Ctier%3Dfront",
            200,
            list(vec![web_pod("web-b"), web_pod("web-a")]),
        ),
        Box::new(|m, p| {
            (m == "GET" && p.starts_with(&format!("/v1/containers/{ID}/logs"))).then(|| (200, String::new()))
        }),
    ]);
    assert_eq!(d.run(&["logs", "deploy/web", "--tail", "5"]).await, 0);
    assert_eq!(
        d.paths(),
        [
            "GET /v1/objects/deployments/default/web".to_string(),
            "GET /v1/objects/pods?namespace=default&selector=app%3Dweb%2Ctier%3Dfront".to_string(),
            format!("GET /v1/containers/{ID}/logs?follow=false&tail=5"),
        ]
    );
}

#[tokio::test]
async fn plain_container_names_go_straight_to_the_container() {
    let d = FakeDaemon::start(vec![Box::new(|m, p| {
        (m == "GET" && p.starts_with("/v1/containers/web/logs")).then(|| (200, String::new()))
    })]);
    assert_eq!(d.run(&["logs", "web"]).await, 0);
    assert_eq!(d.paths(), ["GET /v1/containers/web/logs?follow=false"]);
    assert_eq!(d.run(&["logs", "web", "--namespace", "shop"]).await, 2);
    assert_eq!(d.seen().len(), 1);
}
