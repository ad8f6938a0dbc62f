//! `berth rollout` against the fake daemon: the paths and bodies each
//! subcommand sends, the polls of `status --watch`, and exit codes. The
//! printed words are unit-tested beside the code.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{route, FakeDaemon, Route};
use serde_json::{json, Value};

const WEB: &str = "/v1/objects/deployments/default/web";

/// A deployment of 2 replicas: `updated` of them on the newest revision,
/// `available` of those available.
fn web(updated: i64, available: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default", "generation": 3},
           "spec": {"replicas": 2, "paused": false},
           "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": updated,
                      "readyReplicas": available, "availableReplicas": available,
                      "unavailableReplicas": 2 - available,
                      "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}})
}

fn with_progress(mut d: Value, reason: &str, message: &str) -> Value {
    d["status"]["conditions"] =
        json!([{"type": "Progressing", "status": "False", "reason": reason, "message": message}]);
    d
}

/// Answers GETs of `path` with `answers` in turn, the last one from then
/// on; counts them.
fn polls(path: &'static str, answers: Vec<Value>) -> (Route, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let route: Route = Box::new(move |m, p| {
        (m == "GET" && p == path).then(|| {
            let i = seen.fetch_add(1, Ordering::SeqCst);
            (200, answers[i.min(answers.len() - 1)].to_string())
        })
    });
    (route, count)
}

#[tokio::test]
async fn status_once_reports_and_exits_by_the_outcome() {
    let paused = {
        let mut d = web(1, 1);
        d["spec"]["paused"] = json!(true);
        d
    };
    for (object, code) in [
        (web(2, 2), 0),
        // Under way or paused: reported, not an error (as kubectl).
        (web(1, 0), 0),
        (paused, 0),
        (with_progress(web(1, 0), "ProgressDeadlineExceeded", ""), 1),
        (with_progress(web(2, 2), "RolledBack", "revision 3 failed; rolled back to revision 2"), 1),
    ] {
        let d = FakeDaemon::start(vec![route("GET", WEB, 200, object.clone())]);
        assert_eq!(d.run(&["rollout", "status", "deploy/web", "--watch=false"]).await, code, "{object}");
        assert_eq!(d.paths(), [format!("GET {WEB}")]);
    }
}

#[tokio::test]
async fn status_of_a_missing_deployment_or_in_another_namespace() {
    let d = FakeDaemon::start(vec![route("GET", "/v1/objects/deployments/shop/web", 200, web(2, 2))]);
    assert_eq!(d.run(&["rollout", "status", "deployment", "web", "-n", "shop"]).await, 0);
    assert_eq!(d.run(&["rollout", "status", "deployment/gone", "-n", "shop"]).await, 1);
    assert_eq!(d.paths(), ["GET /v1/objects/deployments/shop/web", "GET /v1/objects/deployments/shop/gone"]);
}

#[tokio::test]
async fn status_watch_polls_until_the_rollout_is_done() {
    let (answers, count) = polls(WEB, vec![web(0, 0), web(1, 0), web(2, 1), web(2, 2), web(0, 0)]);
    let d = FakeDaemon::start(vec![answers]);
    let started = Instant::now();
    assert_eq!(d.run(&["rollout", "status", "deploy/web"]).await, 0);
    // Four looks, 500 ms apart; the fifth answer is never asked for.
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
    assert!(d.paths().iter().all(|p| p == &format!("GET {WEB}")), "{:?}", d.paths());
}

#[tokio::test]
async fn status_watch_ends_at_a_rollback_by_berth() {
    let rolled_back = with_progress(web(2, 2), "RolledBack", "revision 3 failed; rolled back to revision 2");
    let (answers, count) = polls(WEB, vec![web(1, 0), rolled_back]);
    let d = FakeDaemon::start(vec![answers]);
    assert_eq!(d.run(&["rollout", "status", "deploy/web", "--watch", "--timeout", "30s"]).await, 1);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn status_watch_times_out() {
    let (answers, count) = polls(WEB, vec![web(1, 0)]);
    let d = FakeDaemon::start(vec![answers]);
    let started = Instant::now();
    assert_eq!(d.run(&["rollout", "status", "deploy/web", "--timeout", "1200ms"]).await, 1);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1200) && took < Duration::from_secs(5), "{took:?}");
    // At 0, 500 and 1000 ms (fewer if this machine is slow to answer).
    let looks = count.load(Ordering::SeqCst);
    assert!((2..=3).contains(&looks), "{looks}");
}

fn revisions() -> Value {
    let template = |image: &str| {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}})
    };
    json!({"revisions": [
        {"revision": 1, "hash": "5d8f7", "change_cause": null, "created": "2026-03-01T10:00:00Z",
         "images": ["nginx:1.26"], "current": false, "template": template("nginx:1.26")},
        {"revision": 2, "hash": "6c9a1", "change_cause": "berth apply -f web.yaml", "created": "2026-03-01T11:00:00Z",
         "images": ["nginx:1.27"], "current": true, "template": template("nginx:1.27")}]})
}

#[tokio::test]
async fn history_lists_and_shows_revisions() {
    let path = "/v1/objects/deployments/shop/web/revisions";
    let d = FakeDaemon::start(vec![route("GET", path, 200, revisions())]);
    assert_eq!(d.run(&["rollout", "history", "deploy/web", "-n", "shop"]).await, 0);
    assert_eq!(d.run(&["rollout", "history", "deploy", "web", "-n", "shop", "--revision", "2"]).await, 0);
    assert_eq!(d.run(&["rollout", "history", "deploy/web", "-n", "shop", "-o", "json"]).await, 0);
    assert_eq!(d.run(&["rollout", "history", "deploy/web", "-n", "shop", "--revision", "1", "-o", "yaml"]).await, 0);
    // An unknown revision, and a deployment the daemon does not have.
    assert_eq!(d.run(&["rollout", "history", "deploy/web", "-n", "shop", "--revision", "9"]).await, 1);
    assert_eq!(d.run(&["rollout", "history", "deploy/gone", "-n", "shop"]).await, 1);
    let mut want = vec![format!("GET {path}"); 5];
    want.push("GET /v1/objects/deployments/shop/gone/revisions".into());
    assert_eq!(d.paths(), want);
}

#[tokio::test]
async fn pause_resume_restart_and_undo_post_their_action() {
    let path = "/v1/objects/deployments/default/web/rollout";
    let d = FakeDaemon::start(vec![route("POST", path, 200, web(2, 2))]);
    for args in [
        &["rollout", "pause", "deploy/web"][..],
        &["rollout", "resume", "deployment", "web"],
        &["rollout", "restart", "deployments/web"],
        &["rollout", "undo", "deploy/web"],
        &["rollout", "undo", "deploy/web", "--to-revision", "1"],
        &["rollout", "undo", "deploy/web", "--to-revision=0"],
    ] {
        assert_eq!(d.run(args).await, 0, "{args:?}");
    }
    let seen = d.seen();
    assert!(seen.iter().all(|s| s.method == "POST" && s.path == path), "{seen:?}");
    let bodies: Vec<Value> = seen.into_iter().map(|s| s.body.unwrap()).collect();
    assert_eq!(
        bodies,
        [
            json!({"action": "pause"}),
            json!({"action": "resume"}),
            json!({"action": "restart"}),
            json!({"action": "undo"}),
            json!({"action": "undo", "to_revision": 1}),
            // As kubectl, 0 is the previous revision.
            json!({"action": "undo"}),
        ]
    );
}

#[tokio::test]
async fn refusals_by_the_daemon_exit_1() {
    let path = "/v1/objects/deployments/shop/web/rollout";
    let conflict = json!({"error": "deployment web is already paused", "kind": "conflict"});
    let bad = json!({"error": "revision 7 not found; deployment web has revisions 1-3", "kind": "invalid"});
    let d = FakeDaemon::start(vec![
        Box::new(move |m, p| (m == "POST" && p == path).then(|| (409, conflict.to_string()))),
        route("POST", "/v1/objects/deployments/default/web/rollout", 400, bad),
    ]);
    assert_eq!(d.run(&["rollout", "pause", "deploy/web", "-n", "shop"]).await, 1);
    assert_eq!(d.run(&["rollout", "undo", "deploy/web", "--to-revision", "7"]).await, 1);
    assert_eq!(d.run(&["rollout", "restart", "deploy/gone"]).await, 1);
    assert_eq!(
        d.paths(),
        [
            "POST /v1/objects/deployments/shop/web/rollout",
            "POST /v1/objects/deployments/default/web/rollout",
            "POST /v1/objects/deployments/default/gone/rollout",
        ]
    );
}

#[tokio::test]
async fn only_deployments_have_rollouts() {
    let d = FakeDaemon::start(vec![]);
    for args in [
        &["rollout", "status", "pod/web"][..],
        &["rollout", "history", "svc", "web"],
        &["rollout", "pause", "statefulset/web"],
        &["rollout", "undo", "web"],
        &["rollout", "restart", "deploy/web", "extra"],
    ] {
        assert_eq!(d.run(args).await, 2, "{args:?}");
    }
    assert!(d.seen().is_empty());
}
