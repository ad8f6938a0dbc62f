//! `logs` and `exec` aimed at `pod/NAME` or `deploy/NAME` instead of a
//! container: which pod, which of its containers, and that container's id.
//! Pure: the objects come in, the choice (and what to tell the user about
//! it) goes out.

use serde_json::Value;

use super::kind::Kind;
use super::value::{array, label_selector, name, pairs, str_at};
use crate::client::{CliError, Result};

/// What a `logs` or `exec` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A container's name or id, as before declared services existed.
    Container(String),
    Pod(String),
    Deployment(String),
    Service(String),
    Rollout(String),
}

/// `web` → a container; `pod/web-abc`, `po/...`, `deploy/web`,
/// `deployment/web`, `svc/web` → the object.
pub fn parse_target(arg: &str) -> Result<Target> {
    let Some((kind, obj)) = arg.split_once('/') else { return Ok(Target::Container(arg.to_string())) };
    let usage = || {
        CliError::Usage(format!(
            "{arg:?}: give a container, pod/NAME, deploy/NAME, rollout/NAME or svc/NAME (a pod of it is picked)"
        ))
    };
    if obj.is_empty() || obj.contains('/') {
        return Err(usage());
    }
    match Kind::parse(kind).ok_or_else(usage)? {
        Kind::Pod => Ok(Target::Pod(obj.into())),
        Kind::Deployment => Ok(Target::Deployment(obj.into())),
        Kind::Service => Ok(Target::Service(obj.into())),
        Kind::Rollout => Ok(Target::Rollout(obj.into())),
        Kind::Endpoints | Kind::ConfigMap | Kind::Secret | Kind::Event | Kind::AnalysisTemplate => Err(usage()),
    }
}

/// The label selector (`-l` syntax) that finds a deployment's or a
/// service's pods.
pub fn pod_selector(kind: Kind, obj: &Value) -> Result<String> {
    let selector = match kind {
        Kind::Service => pairs(obj.pointer("/spec/selector")),
        _ => obj.pointer("/spec/selector").and_then(label_selector),
    };
    selector.ok_or_else(|| {
        CliError::Other(format!(
            "{}/{} has no selector, so no pods to pick from; name a pod with pod/NAME",
            kind.qualified(),
            name(obj)
        ))
    })
}

/// Picks one pod of several, as kubectl does: by name, the first that runs
/// and is not being deleted, else the first. The note is for stderr when
/// there was a choice.
pub fn pick_pod<'a>(owner: &str, pods: &'a [Value]) -> Result<(&'a Value, Option<String>)> {
    let mut sorted: Vec<&Value> = pods.iter().collect();
    sorted.sort_by_key(|p| name(p));
    let alive = |p: &Value| {
        str_at(p, "/status/phase") == Some("Running")
            && p.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null)
    };
    let chosen = sorted
        .iter()
        .copied()
        .find(|p| alive(p))
        .or(sorted.first().copied())
        .ok_or_else(|| CliError::Other(format!("{owner} has no pods yet; see 'berth describe {owner}'")))?;
    let note = (pods.len() > 1).then(|| format!("Found {} pods, using pod/{}", pods.len(), name(chosen)));
    Ok((chosen, note))
}

/// The container picked in a pod, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub container: String,
    /// The runtime's container id (`containerID` without `berth://`).
    pub id: String,
    pub note: Option<String>,
}

/// Picks the container `-c` names, else the pod's default one (the
/// `kubectl.kubernetes.io/default-container` annotation, else the first),
/// and finds its id in the pod's status.
pub fn pick_container(pod: &Value, wanted: Option<&str>) -> Result<Picked> {
    let pod_name = name(pod);
    let names =
        |pointer: &str| -> Vec<&str> { array(pod, pointer).iter().filter_map(|c| str_at(c, "/name")).collect() };
    let (apps, inits) = (names("/spec/containers"), names("/spec/initContainers"));
    let all = || {
        apps.iter()
            .map(|n| n.to_string())
            .chain(inits.iter().map(|n| format!("{n} (init)")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (container, note) = match wanted {
        Some(w) if apps.contains(&w) || inits.contains(&w) => (w, None),
        Some(w) => {
            return Err(CliError::Other(format!("container {w:?} is not valid for pod {pod_name}; valid: {}", all())))
        }
        None => {
            let annotated = str_at(pod, "/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .filter(|a| apps.contains(a));
            let Some(first) = annotated.or(apps.first().copied()) else {
                return Err(CliError::Other(format!("pod {pod_name} has no containers")));
            };
            let note = (annotated.is_none() && apps.len() > 1)
                .then(|| format!("Defaulted container {first:?} out of: {}", all()));
            (first, note)
        }
    };
    let status = array(pod, "/status/containerStatuses")
        .iter()
        .chain(array(pod, "/status/initContainerStatuses"))
        .find(|s| str_at(s, "/name") == Some(container));
    let id = status
        .and_then(|s| str_at(s, "/containerID"))
        .map(|id| id.strip_prefix("berth://").unwrap_or(id))
        .filter(|id| !id.is_empty());
    let Some(id) = id else {
        let why = status
            .and_then(|s| str_at(s, "/state/waiting/reason"))
            .map(|r| match status.and_then(|s| str_at(s, "/state/waiting/message")).filter(|m| !m.is_empty()) {
                Some(m) => format!("{r}: {m}"),
                None => r.to_string(),
            })
            .unwrap_or_else(|| super::pod::status(pod));
        return Err(CliError::Other(format!(
            "container {container:?} in pod {pod_name} is not running yet ({why}); see 'berth describe pod/{pod_name}'"
        )));
    };
    Ok(Picked { container: container.to_string(), id: id.to_string(), note })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pod(name: &str, phase: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"initContainers": [{"name": "migrate"}], "containers": [{"name": "web"}, {"name": "log"}]},
            "status": {"phase": phase,
                       "initContainerStatuses": [{"name": "migrate", "containerID": format!("berth://{}", "f".repeat(64)),
                                                  "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                       "containerStatuses": [
                           {"name": "web", "ready": true, "containerID": format!("berth://{ID}"), "state": {"running": {}}},
                           {"name": "log", "ready": false, "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}}]}
        })
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("web").unwrap(), Target::Container("web".into()));
        assert_eq!(parse_target("pod/web-abc").unwrap(), Target::Pod("web-abc".into()));
        assert_eq!(parse_target("po/web-abc").unwrap(), Target::Pod("web-abc".into()));
        assert_eq!(parse_target("deploy/web").unwrap(), Target::Deployment("web".into()));
        assert_eq!(parse_target("deployment/web").unwrap(), Target::Deployment("web".into()));
        assert_eq!(parse_target("ro/web").unwrap(), Target::Rollout("web".into()));
        assert_eq!(parse_target("svc/web").unwrap(), Target::Service("web".into()));
        for bad in ["cm/app", "foo/x", "pod/", "pod/a/b"] {
            assert!(parse_target(bad).unwrap_err().to_string().contains("give a container, pod/NAME"), "{bad}");
        }
    }

    #[test]
    fn default_container_with_a_note_when_there_are_several() {
        let p = pick_container(&pod("web-abc", "Running"), None).unwrap();
        assert_eq!(p.container, "web");
        assert_eq!(p.id, ID);
        assert_eq!(p.note.as_deref(), Some("Defaulted container \"web\" out of: web, log, migrate (init)"));
    }

    #[test]
    fn a_single_container_needs_no_note() {
        let mut v = pod("web-abc", "Running");
        v["spec"]["containers"] = json!([{"name": "web"}]);
        assert_eq!(pick_container(&v, None).unwrap().note, None);
    }

    #[test]
    fn the_default_container_annotation_is_honoured() {
        let mut v = pod("web-abc", "Running");
        v["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/default-container": "log"});
        let e = pick_container(&v, None).unwrap_err().to_string();
        assert!(
            e.contains("container \"log\" in pod web-abc is not running yet (ErrImagePull: manifest unknown)"),
            "{e}"
        );
    }

    #[test]
    fn named_containers_including_init_ones() {
        assert_eq!(pick_container(&pod("p", "Running"), Some("migrate")).unwrap().id, "f".repeat(64));
        let e = pick_container(&pod("p", "Running"), Some("nope")).unwrap_err();
        assert_eq!(e.to_string(), "container \"nope\" is not valid for pod p; valid: web, log, migrate (init)");
    }

    #[test]
    fn a_container_without_an_id_is_not_running_yet() {
        let mut v = pod("p", "Pending");
        v["status"]["containerStatuses"] = json!([]);
        let e = pick_container(&v, Some("web")).unwrap_err().to_string();
        assert!(e.starts_with("container \"web\" in pod p is not running yet (Pending)"), "{e}");
    }

    #[test]
    fn picking_a_pod_prefers_running_ones_by_name() {
        let mut gone = pod("web-a", "Running");
        gone["metadata"]["deletionTimestamp"] = json!("2026-03-01T11:00:00Z");
        let pods = [pod("web-c", "Running"), pod("web-b", "Pending"), gone, pod("web-d", "Running")];
        let (p, note) = pick_pod("deployment.apps/web", &pods).unwrap();
        assert_eq!(name(p), "web-c");
        assert_eq!(note.as_deref(), Some("Found 4 pods, using pod/web-c"));
        let (p, note) = pick_pod("deployment.apps/web", &pods[1..2]).unwrap();
        assert_eq!((name(p), note), ("web-b", None));
        assert!(pick_pod("deployment.apps/web", &[]).unwrap_err().to_string().contains("has no pods yet"));
    }

    #[test]
    fn selectors_of_owners() {
        let dep =
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web", "tier": "a"}}}});
        assert_eq!(pod_selector(Kind::Deployment, &dep).unwrap(), "app=web,tier=a");
        let svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}});
        assert_eq!(pod_selector(Kind::Service, &svc).unwrap(), "app=web");
        assert!(pod_selector(Kind::Service, &json!({"spec": {}})).is_err());
    }
}
