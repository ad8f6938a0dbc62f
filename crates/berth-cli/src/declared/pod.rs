//! What kubectl shows of a pod in one row: READY, STATUS and RESTARTS,
//! computed from the Pod object the daemon serves.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::age;
use super::value::{array, str_at};

/// `ready/total` containers; a container counts as ready when it is both
/// running and ready.
pub fn ready(pod: &Value) -> String {
    let total = array(pod, "/spec/containers").len();
    let ready = array(pod, "/status/containerStatuses")
        .iter()
        .filter(|c| c["ready"].as_bool() == Some(true) && c.pointer("/state/running").is_some())
        .count();
    format!("{ready}/{total}")
}

/// The STATUS column, as kubectl computes it: `Terminating` while being
/// deleted; while init containers run, `Init:N/M` or `Init:` and the
/// reason one of them is stuck on; otherwise the reason of the first
/// container that is waiting or terminated (`CrashLoopBackOff`,
/// `Completed`, ...), else the pod's phase.
pub fn status(pod: &Value) -> String {
    let mut reason = str_at(pod, "/status/reason").or_else(|| str_at(pod, "/status/phase")).unwrap_or("Unknown");
    let mut owned: Option<String> = None;

    let init_total = array(pod, "/spec/initContainers").len();
    let mut initializing = false;
    for (i, c) in array(pod, "/status/initContainerStatuses").iter().enumerate() {
        if c.pointer("/state/terminated/exitCode").and_then(Value::as_i64) == Some(0) {
            continue;
        }
        initializing = true;
        owned = Some(if let Some(t) = c.pointer("/state/terminated") {
            match str_at(t, "/reason").filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match t["signal"].as_i64().filter(|s| *s != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!("Init:ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
                },
            }
        } else {
            match str_at(c, "/state/waiting/reason").filter(|r| !r.is_empty() && *r != "PodInitializing") {
                Some(r) => format!("Init:{r}"),
                None => format!("Init:{i}/{init_total}"),
            }
        });
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        let containers = array(pod, "/status/containerStatuses");
        // The first container (in order) that is waiting or has stopped
        // decides; running ones say nothing.
        if let Some(r) = containers.iter().find_map(container_reason) {
            owned = Some(r);
        }
        let any_running =
            containers.iter().any(|c| c["ready"].as_bool() == Some(true) && c.pointer("/state/running").is_some());
        // A pod with one finished and one running container still runs.
        if owned.as_deref() == Some("Completed") && any_running {
            owned = Some(if condition_true(pod, "Ready") { "Running" } else { "NotReady" }.into());
        }
    }
    if let Some(o) = owned.as_deref() {
        reason = o;
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return if str_at(pod, "/status/reason") == Some("NodeLost") { "Unknown" } else { "Terminating" }.into();
    }
    reason.to_string()
}

/// Why one container is not simply running, if it is not.
fn container_reason(c: &Value) -> Option<String> {
    if let Some(r) = str_at(c, "/state/waiting/reason").filter(|r| !r.is_empty()) {
        return Some(r.to_string());
    }
    let t = c.pointer("/state/terminated")?;
    if let Some(r) = str_at(t, "/reason").filter(|r| !r.is_empty()) {
        return Some(r.to_string());
    }
    Some(match t["signal"].as_i64().filter(|s| *s != 0) {
        Some(sig) => format!("Signal:{sig}"),
        None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
    })
}

/// Whether the pod has a condition of this type with status `True`.
pub fn condition_true(pod: &Value, kind: &str) -> bool {
    array(pod, "/status/conditions").iter().any(|c| c["type"] == kind && c["status"] == "True")
}

/// The RESTARTS column: the sum over containers, and how long ago the
/// latest restart was (`3 (5m ago)`), from `lastState.terminated.finishedAt`.
pub fn restarts(pod: &Value, now: DateTime<Utc>) -> String {
    let inits = array(pod, "/status/initContainerStatuses");
    let initializing = !condition_true(pod, "Initialized")
        && inits.iter().any(|c| c.pointer("/state/terminated/exitCode").and_then(Value::as_i64) != Some(0));
    // As kubectl: while initialising, the init containers count; after,
    // the app containers.
    let counted = if initializing { inits } else { array(pod, "/status/containerStatuses") };
    let total: i64 = counted.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
    let last =
        counted.iter().filter_map(|c| str_at(c, "/lastState/terminated/finishedAt")).filter_map(age::parse).max();
    match last {
        Some(t) if total > 0 => format!("{total} ({} ago)", age::human((now - t).num_seconds())),
        _ => total.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        age::parse("2026-03-01T12:00:00Z").unwrap()
    }

    fn pod(containers: &[&str], statuses: Value) -> Value {
        let specs: Vec<Value> = containers.iter().map(|n| json!({"name": n, "image": "nginx:1.27"})).collect();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-5d8f7-abcde", "namespace": "default", "creationTimestamp": "2026-03-01T11:00:00Z"},
            "spec": {"containers": specs},
            "status": {"phase": "Running", "containerStatuses": statuses,
                       "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]}
        })
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts,
               "containerID": format!("berth://{}", "a".repeat(64)),
               "state": {"running": {"startedAt": "2026-03-01T11:00:05Z"}}})
    }

    #[test]
    fn running_pod() {
        let p = pod(&["web"], json!([running("web", true, 0)]));
        assert_eq!(status(&p), "Running");
        assert_eq!(ready(&p), "1/1");
        assert_eq!(restarts(&p, now()), "0");
    }

    #[test]
    fn crash_loop_with_restarts_and_when() {
        let p = pod(
            &["web", "sidecar"],
            json!([
                {"name": "web", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-03-01T11:55:00Z"}}},
                running("sidecar", true, 1),
            ]),
        );
        assert_eq!(status(&p), "CrashLoopBackOff");
        assert_eq!(ready(&p), "1/2");
        assert_eq!(restarts(&p, now()), "5 (5m ago)");
    }

    #[test]
    fn first_stuck_container_decides() {
        let p = pod(
            &["a", "b"],
            json!([
                {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CreateContainerConfigError"}}},
            ]),
        );
        assert_eq!(status(&p), "ImagePullBackOff");
    }

    #[test]
    fn container_creating() {
        let mut p = pod(
            &["web"],
            json!([{"name": "web", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]),
        );
        p["status"]["phase"] = json!("Pending");
        assert_eq!(status(&p), "ContainerCreating");
        assert_eq!(ready(&p), "0/1");
    }

    #[test]
    fn pending_without_statuses_shows_the_phase() {
        let mut p = pod(&["web"], json!([]));
        p["status"] = json!({"phase": "Pending"});
        assert_eq!(status(&p), "Pending");
        assert_eq!(ready(&p), "0/1");
        assert_eq!(restarts(&p, now()), "0");
    }

    #[test]
    fn completed_and_error_and_oom() {
        for (reason, code, want) in
            [("Completed", 0, "Completed"), ("Error", 1, "Error"), ("OOMKilled", 137, "OOMKilled")]
        {
            let mut p = pod(
                &["job"],
                json!([{"name": "job", "ready": false, "restartCount": 0,
                        "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": "2026-03-01T11:59:00Z"}}}]),
            );
            p["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
            assert_eq!(status(&p), want);
        }
        let p = pod(&["job"], json!([{"name": "job", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]));
        assert_eq!(status(&p), "Signal:9");
        let p = pod(&["job"], json!([{"name": "job", "state": {"terminated": {"exitCode": 3}}}]));
        assert_eq!(status(&p), "ExitCode:3");
    }

    #[test]
    fn completed_beside_a_running_container_is_running() {
        let p = pod(
            &["once", "web"],
            json!([
                {"name": "once", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                running("web", true, 0),
            ]),
        );
        assert_eq!(status(&p), "Running");
    }

    fn initializing(init: Value) -> Value {
        json!({
            "metadata": {"name": "web-1"},
            "spec": {"initContainers": [{"name": "migrate"}, {"name": "warm"}], "containers": [{"name": "web"}]},
            "status": {"phase": "Pending",
                       "conditions": [{"type": "Initialized", "status": "False"}],
                       "initContainerStatuses": init,
                       "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                                              "state": {"waiting": {"reason": "PodInitializing"}}}]}
        })
    }

    #[test]
    fn init_progress() {
        let p = initializing(json!([
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-03-01T11:59:00Z"}}},
            {"name": "warm", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
        ]));
        assert_eq!(status(&p), "Init:0/2");
        let p = initializing(json!([
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "warm", "ready": false, "restartCount": 0, "state": {"running": {}}},
        ]));
        assert_eq!(status(&p), "Init:1/2");
    }

    #[test]
    fn init_failures() {
        let p = initializing(json!([
            {"name": "migrate", "ready": false, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-03-01T11:59:30Z"}}},
        ]));
        assert_eq!(status(&p), "Init:CrashLoopBackOff");
        assert_eq!(restarts(&p, now()), "3 (30s ago)");
        let p = initializing(json!([{"name": "migrate", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]));
        assert_eq!(status(&p), "Init:Error");
        let p = initializing(json!([{"name": "migrate", "state": {"terminated": {"exitCode": 2}}}]));
        assert_eq!(status(&p), "Init:ExitCode:2");
    }

    #[test]
    fn terminating_wins() {
        let mut p = pod(&["web"], json!([running("web", true, 0)]));
        p["metadata"]["deletionTimestamp"] = json!("2026-03-01T11:59:50Z");
        assert_eq!(status(&p), "Terminating");
    }
}
