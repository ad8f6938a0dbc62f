//! Where a deployment's rollout stands, read from the object alone, in
//! the words kubectl uses. Pure: the watch loop in [`super`] polls and
//! prints.

use serde_json::Value;

use crate::declared::value::{array, int_at, name, str_at};

/// A rollout's state as `berth rollout status` reports it; each carries
/// the line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still rolling out: keep watching.
    Waiting(String),
    /// Every replica runs the newest revision and is available (exit 0).
    Done(String),
    /// The rollout cannot finish by itself (exit 1).
    Failed(String),
    /// Not finished, and paused: nothing moves until it is resumed.
    Paused(String),
}

impl Status {
    pub fn message(&self) -> &str {
        match self {
            Status::Waiting(m) | Status::Done(m) | Status::Failed(m) | Status::Paused(m) => m,
        }
    }
}

/// The `Progressing` condition's reason when the progress deadline passed.
const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// Berth's own: the new revision failed and berth went back to an earlier
/// one; the condition's message says why and to which.
const ROLLED_BACK: &str = "RolledBack";

/// A Deployment's or an Argo Rollout's status, by the object's kind.
pub fn of(obj: &Value) -> Status {
    if str_at(obj, "/kind") == Some("Rollout") {
        rollout(obj)
    } else {
        status(obj)
    }
}

/// Reads an Argo Rollout: aborted (exit 1), healthy with every replica
/// of the newest revision available (done), paused (for a promote, a
/// person after an inconclusive analysis, or `rollout pause`), or on its
/// way, with the daemon's own words for where it stands.
pub fn rollout(ro: &Value) -> Status {
    let ro_name = name(ro);
    if int_at(ro, "/metadata/generation").unwrap_or(0) > int_at(ro, "/status/observedGeneration").unwrap_or(0) {
        return Status::Waiting("Waiting for rollout spec update to be observed...".into());
    }
    let message = str_at(ro, "/status/message").filter(|m| !m.is_empty()).unwrap_or("no details yet");
    let phase = str_at(ro, "/status/phase").unwrap_or("Progressing");
    if ro.pointer("/status/abort").and_then(Value::as_bool) == Some(true) || phase == "Degraded" {
        return Status::Failed(format!("rollout {ro_name:?} was aborted: {message}"));
    }
    let count = |f: &str| int_at(ro, &format!("/status/{f}")).unwrap_or(0);
    let desired = int_at(ro, "/spec/replicas").unwrap_or(1);
    match phase {
        "Healthy" if count("updatedReplicas") >= desired && count("availableReplicas") >= desired => {
            Status::Done(format!("rollout {ro_name:?} successfully rolled out"))
        }
        "Healthy" => Status::Waiting(format!(
            "Waiting for rollout {ro_name:?} to finish: {} of {desired} updated replicas are available...",
            count("availableReplicas").min(count("updatedReplicas"))
        )),
        "Paused" => Status::Paused(format!("Paused: {message}")),
        _ => Status::Waiting(format!("Progressing: {message}")),
    }
}

/// Reads a Deployment as kubectl's status viewer does: first whether the
/// controller has seen the latest spec, then failure conditions, then
/// replica counts from the newest to the oldest concern.
pub fn status(deploy: &Value) -> Status {
    let dep = name(deploy);
    let progress = progress_of(deploy);
    let waiting = if int_at(deploy, "/metadata/generation").unwrap_or(0)
        > int_at(deploy, "/status/observedGeneration").unwrap_or(0)
    {
        Some("Waiting for deployment spec update to be observed...".to_string())
    } else {
        match progress.and_then(|c| str_at(c, "/reason")) {
            Some(DEADLINE_EXCEEDED) => {
                return Status::Failed(format!("deployment {dep:?} exceeded its progress deadline"));
            }
            Some(ROLLED_BACK) => {
                let why = progress.and_then(|c| str_at(c, "/message")).map(str::trim).filter(|m| !m.is_empty());
                return Status::Failed(format!(
                    "deployment {dep:?} rollout failed and was rolled back: {}",
                    why.unwrap_or("no reason given")
                ));
            }
            _ => replicas_pending(deploy),
        }
    };
    match waiting {
        None => Status::Done(format!("deployment {dep:?} successfully rolled out")),
        Some(_) if deploy.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) => {
            Status::Paused(format!("deployment {dep:?} is paused"))
        }
        Some(m) => Status::Waiting(m),
    }
}

fn progress_of(deploy: &Value) -> Option<&Value> {
    array(deploy, "/status/conditions").iter().find(|c| str_at(c, "/type") == Some("Progressing"))
}

/// What the rollout still waits for, by the replica counts; `None` when
/// nothing.
fn replicas_pending(deploy: &Value) -> Option<String> {
    let dep = name(deploy);
    let count = |f: &str| int_at(deploy, &format!("/status/{f}")).unwrap_or(0);
    let (total, updated, available) = (count("replicas"), count("updatedReplicas"), count("availableReplicas"));
    let prefix = format!("Waiting for deployment {dep:?} rollout to finish");
    // As kubectl: an unset spec.replicas skips this check.
    if let Some(desired) = int_at(deploy, "/spec/replicas").filter(|d| updated < *d) {
        return Some(format!("{prefix}: {updated} out of {desired} new replicas have been updated..."));
    }
    if total > updated {
        return Some(format!("{prefix}: {} old replicas are pending termination...", total - updated));
    }
    if available < updated {
        return Some(format!("{prefix}: {available} of {updated} updated replicas are available..."));
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn argo_rollouts_read_by_phase() {
        use serde_json::json;
        let ro = |phase: &str, abort: bool, updated: i64| {
            json!({"kind": "Rollout", "metadata": {"name": "web", "generation": 2},
                   "spec": {"replicas": 2},
                   "status": {"observedGeneration": 2, "phase": phase, "abort": abort, "message": "step 1/3",
                              "updatedReplicas": updated, "availableReplicas": 2}})
        };
        assert_eq!(
            super::of(&ro("Healthy", false, 2)),
            super::Status::Done("rollout \"web\" successfully rolled out".into())
        );
        assert_eq!(
            super::of(&ro("Healthy", false, 1)),
            super::Status::Waiting(
                "Waiting for rollout \"web\" to finish: 1 of 2 updated replicas are available...".into()
            )
        );
        assert_eq!(super::of(&ro("Paused", false, 1)), super::Status::Paused("Paused: step 1/3".into()));
        assert_eq!(super::of(&ro("Progressing", false, 1)), super::Status::Waiting("Progressing: step 1/3".into()));
        assert_eq!(
            super::of(&ro("Degraded", true, 1)),
            super::Status::Failed("rollout \"web\" was aborted: step 1/3".into())
        );
        let mut unseen = ro("Healthy", false, 2);
        unseen["metadata"]["generation"] = json!(3);
        assert!(matches!(super::of(&unseen), super::Status::Waiting(m) if m.contains("observed")));
        assert!(matches!(super::of(&json!({"kind": "Rollout", "metadata": {"name": "x"}})), super::Status::Waiting(_)));
    }

    use serde_json::json;

    use super::*;

    /// A deployment of 3 replicas, all updated and available, its latest
    /// spec observed; tests change what they need.
    fn settled() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 4},
            "spec": {"replicas": 3, "paused": false},
            "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                       "availableReplicas": 3, "unavailableReplicas": 0,
                       "conditions": [
                           {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        })
    }

    fn progressing(reason: &str, status: &str, message: &str) -> Value {
        json!([{"type": "Available", "status": "True"},
               {"type": "Progressing", "status": status, "reason": reason, "message": message}])
    }

    #[test]
    fn complete() {
        assert_eq!(status(&settled()), Status::Done("deployment \"web\" successfully rolled out".into()));
    }

    #[test]
    fn an_unobserved_spec_comes_first() {
        let mut d = settled();
        d["metadata"]["generation"] = json!(5);
        // Even a stale failure waits for the controller to look again.
        d["status"]["conditions"] = progressing("ProgressDeadlineExceeded", "False", "");
        assert_eq!(status(&d), Status::Waiting("Waiting for deployment spec update to be observed...".into()));
        d["status"] = json!({});
        assert_eq!(status(&d), Status::Waiting("Waiting for deployment spec update to be observed...".into()));
    }

    #[test]
    fn a_passed_progress_deadline_fails() {
        let mut d = settled();
        d["status"]["updatedReplicas"] = json!(1);
        d["status"]["conditions"] =
            progressing("ProgressDeadlineExceeded", "False", "ReplicaSet \"web-5d8f7\" has timed out progressing.");
        assert_eq!(status(&d), Status::Failed("deployment \"web\" exceeded its progress deadline".into()));
    }

    #[test]
    fn a_rollback_by_berth_fails_with_its_reason() {
        let mut d = settled();
        d["status"]["conditions"] = progressing(
            "RolledBack",
            "False",
            "revision 3 failed (container web: CrashLoopBackOff); rolled back to revision 2",
        );
        assert_eq!(
            status(&d),
            Status::Failed(
                "deployment \"web\" rollout failed and was rolled back: revision 3 failed \
                 (container web: CrashLoopBackOff); rolled back to revision 2"
                    .into()
            )
        );
        d["status"]["conditions"][1]["message"] = json!("");
        assert_eq!(status(&d).message(), "deployment \"web\" rollout failed and was rolled back: no reason given");
    }

    #[test]
    fn new_replicas_still_being_updated() {
        let mut d = settled();
        d["status"]["updatedReplicas"] = json!(1);
        d["status"]["replicas"] = json!(4);
        d["status"]["conditions"] = progressing("ReplicaSetUpdated", "True", "");
        assert_eq!(
            status(&d),
            Status::Waiting(
                "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...".into()
            )
        );
        d["status"]["conditions"] = progressing("NewReplicaSetCreated", "True", "");
        d["status"]["updatedReplicas"] = json!(0);
        assert_eq!(
            status(&d).message(),
            "Waiting for deployment \"web\" rollout to finish: 0 out of 3 new replicas have been updated..."
        );
    }

    #[test]
    fn old_replicas_pending_termination() {
        let mut d = settled();
        d["status"]["replicas"] = json!(5);
        assert_eq!(
            status(&d),
            Status::Waiting(
                "Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending termination...".into()
            )
        );
    }

    #[test]
    fn updated_replicas_not_yet_available() {
        let mut d = settled();
        d["status"]["availableReplicas"] = json!(1);
        d["status"]["unavailableReplicas"] = json!(2);
        assert_eq!(
            status(&d),
            Status::Waiting(
                "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...".into()
            )
        );
    }

    #[test]
    fn without_spec_replicas_the_desired_count_is_not_checked() {
        let mut d = settled();
        d["spec"] = json!({});
        d["status"]["updatedReplicas"] = json!(0);
        d["status"]["replicas"] = json!(0);
        d["status"]["availableReplicas"] = json!(0);
        assert!(matches!(status(&d), Status::Done(_)));
    }

    #[test]
    fn paused_when_not_complete() {
        let mut d = settled();
        d["spec"]["paused"] = json!(true);
        d["status"]["updatedReplicas"] = json!(1);
        d["status"]["conditions"] = progressing("DeploymentPaused", "Unknown", "Deployment is paused");
        assert_eq!(status(&d), Status::Paused("deployment \"web\" is paused".into()));
        // A paused deployment whose last rollout finished is complete.
        assert!(matches!(status(&settled_and_paused()), Status::Done(_)));
        // Failure outranks pausing.
        d["status"]["conditions"] = progressing("ProgressDeadlineExceeded", "False", "");
        assert!(matches!(status(&d), Status::Failed(_)));
    }

    fn settled_and_paused() -> Value {
        let mut d = settled();
        d["spec"]["paused"] = json!(true);
        d
    }

    #[test]
    fn a_scale_down_in_progress_waits_for_old_replicas() {
        // spec 2, 3 running, all updated: the third is terminating.
        let mut d = settled();
        d["spec"]["replicas"] = json!(2);
        d["status"]["updatedReplicas"] = json!(2);
        assert_eq!(
            status(&d).message(),
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
        );
    }
}
