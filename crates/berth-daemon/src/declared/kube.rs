//! Objects in their Kubernetes API form, for `get -o json|yaml` and the
//! CLI's tables: the document as applied plus a `status` as Kubernetes
//! reports it (pod phase, conditions, container states; Deployment
//! replica counts).

use berth_core::container::ContainerState;
use std::collections::BTreeMap;

use berth_manifest::model::{DeploymentSpec, ServiceSpec};
use berth_store::ContainerRecord;
use serde_json::{json, Value};

use super::plan;
use super::records::{PodRecord, StoredObject};
use crate::networks::ServiceNet;

fn metadata(stored: &StoredObject) -> Value {
    let mut m = stored.manifest["metadata"].clone();
    if !m.is_object() {
        m = json!({});
    }
    if m.get("namespace").is_none() {
        m["namespace"] = json!("default");
    }
    m["uid"] = json!(stored.uid);
    m["creationTimestamp"] = json!(stored.created);
    m["generation"] = json!(stored.generation);
    m["resourceVersion"] = json!(stored.generation.to_string());
    m
}

/// An object as stored, with its metadata filled in.
pub fn stored(stored: &StoredObject) -> Value {
    let mut o = stored.manifest.clone();
    o["metadata"] = metadata(stored);
    o
}

/// A Secret; its values only when asked (`--show-secrets`), else only the
/// keys (in an annotation, so `get secrets` can count them).
pub fn secret(s: &StoredObject, show: bool) -> Value {
    let mut o = stored(s);
    let mut keys: Vec<String> = Vec::new();
    if let Ok(berth_manifest::Object::Secret(spec)) = s.object() {
        keys = spec.data.keys().cloned().collect();
        if show {
            use base64::Engine as _;
            let data: serde_json::Map<String, Value> = spec
                .data
                .iter()
                .map(|(k, v)| (k.clone(), json!(base64::engine::general_purpose::STANDARD.encode(v.expose()))))
                .collect();
            o["data"] = Value::Object(data);
        }
        o["type"] = json!(spec.secret_type.as_str());
    }
    if !show {
        if let Some(map) = o.as_object_mut() {
            map.remove("data");
            map.remove("stringData");
        }
        o["metadata"]["annotations"]["berth.dev/data-keys"] = json!(keys.join(","));
    }
    o
}

pub fn deployment(
    d: &DeploymentSpec,
    s: &StoredObject,
    pods: &[PodRecord],
    state: Option<&super::revisions::DeploymentState>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut o = stored(s);
    let hash = d.template.hash().to_string();
    let mine: Vec<&PodRecord> = pods
        .iter()
        .filter(|p| p.namespace == d.meta.namespace && p.owner.as_deref() == Some(d.meta.name.as_str()))
        .collect();
    let live: Vec<&&PodRecord> = mine.iter().filter(|p| p.deleting.is_none()).collect();
    let updated = live.iter().filter(|p| p.hash == hash).count();
    let ready = live.iter().filter(|p| p.ready).count();
    let available = live
        .iter()
        .filter(|p| super::revisions::available(p.ready, p.ready_since.as_deref(), d.min_ready, now))
        .count();
    let replicas = d.replicas as usize;
    let default_state = super::revisions::DeploymentState::default();
    let state = state.unwrap_or(&default_state);
    // Complete once the reconciler has seen it so (and made it the revision
    // a rollback returns to), so `rollout status` never runs ahead of it.
    let complete = updated == replicas
        && live.len() == replicas
        && available >= replicas
        && mine.len() == live.len()
        && state.stable.as_deref() == Some(hash.as_str());
    let revision = state.current().map(|r| r.revision).unwrap_or(0);
    let (status, reason, message) = if let Some(rb) = &state.rolled_back {
        ("False", "RolledBack", format!("Rolled back to revision {}: {}", rb.to_revision, rb.reason))
    } else if state.deadline_exceeded {
        ("False", "ProgressDeadlineExceeded", format!("Revision {revision} has timed out progressing."))
    } else if d.paused {
        ("Unknown", "DeploymentPaused", "Deployment is paused".to_string())
    } else if complete {
        ("True", "NewReplicaSetAvailable", format!("Revision {revision} ({hash}) has successfully progressed."))
    } else if updated == 0 {
        ("True", "NewReplicaSetCreated", format!("Created revision {revision} ({hash})."))
    } else {
        ("True", "ReplicaSetUpdated", format!("Revision {revision} ({hash}) is progressing."))
    };
    o["spec"]["replicas"] = json!(d.replicas);
    if revision > 0 {
        o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(revision.to_string());
    }
    o["status"] = json!({
        "observedGeneration": state.observed_generation,
        "replicas": live.len(),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": replicas.saturating_sub(available),
        "conditions": [
            {
                "type": "Available",
                "status": if available >= replicas { "True" } else { "False" },
                "reason": if available >= replicas { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                "message": if available >= replicas { "Deployment has minimum availability.".to_string() } else { format!("{available} of {replicas} replicas are available.") },
            },
            {"type": "Progressing", "status": status, "reason": reason, "message": message},
        ],
    });
    o
}

pub fn service(s: &StoredObject, net: Option<&ServiceNet>) -> Value {
    let mut o = stored(s);
    match net.and_then(|n| n.ip) {
        Some(ip) => {
            o["spec"]["clusterIP"] = json!(ip.to_string());
            o["spec"]["clusterIPs"] = json!([ip.to_string()]);
        }
        None if o["spec"]["clusterIP"] == "None" => {}
        None => o["spec"]["clusterIP"] = json!("<pending>"),
    }
    if o["spec"].get("type").is_none() {
        o["spec"]["type"] = json!("ClusterIP");
    }
    if let Some(ports) = o["spec"]["ports"].as_array_mut() {
        for p in ports {
            let assigned = net.and_then(|n| {
                n.ports.iter().find(|q| Some(u64::from(q.port)) == p["port"].as_u64()).and_then(|q| q.node_port)
            });
            if let Some(np) = assigned {
                p["nodePort"] = json!(np);
            }
            if p.get("protocol").is_none() {
                p["protocol"] = json!("TCP");
            }
            if p.get("targetPort").is_none() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
    o["status"] = json!({"loadBalancer": {}});
    o
}

/// `route`: which revisions a rollout's Service sends to (`All` for any
/// other Service).
pub fn endpoints(svc: &ServiceSpec, s: &StoredObject, pods: &[PodRecord], route: &plan::Route<'_>) -> Value {
    let matched: Vec<&PodRecord> = pods
        .iter()
        .filter(|p| {
            p.namespace == svc.meta.namespace
                && !svc.selector.is_empty()
                && svc.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                && route.admits(&p.hash)
        })
        .collect();
    let address = |p: &PodRecord| {
        json!({
            "ip": p.ip,
            "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name, "uid": p.uid},
        })
    };
    let ready: Vec<Value> =
        matched.iter().filter(|p| p.ready && p.deleting.is_none() && p.ip.is_some()).map(|p| address(p)).collect();
    let not_ready: Vec<Value> =
        matched.iter().filter(|p| !(p.ready && p.deleting.is_none()) && p.ip.is_some()).map(|p| address(p)).collect();
    // Named target ports resolve per pod; the first matched pod's answer
    // stands for the subset, as all pods of one template agree.
    let ports: Vec<Value> = svc
        .ports
        .iter()
        .filter_map(|p| {
            let port = match matched.first() {
                Some(pod) => plan::target_port(&p.target_port, p.protocol, &pod.template)?,
                None => match &p.target_port {
                    berth_manifest::model::TargetPort::Number(n) => *n,
                    berth_manifest::model::TargetPort::Name(_) => return None,
                },
            };
            let mut v = json!({"port": port, "protocol": protocol(p.protocol)});
            if let Some(n) = &p.name {
                v["name"] = json!(n);
            }
            Some(v)
        })
        .collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let subsets = if ready.is_empty() && not_ready.is_empty() { json!([]) } else { json!([subset]) };
    let meta = metadata(s);
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": svc.meta.name,
            "namespace": svc.meta.namespace,
            "labels": meta["labels"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "subsets": subsets,
    })
}

fn protocol(p: berth_manifest::model::Protocol) -> &'static str {
    match p {
        berth_manifest::model::Protocol::Tcp => "TCP",
        berth_manifest::model::Protocol::Udp => "UDP",
    }
}

/// A pod with its status as Kubernetes reports it.
pub fn pod(p: &PodRecord, containers: &BTreeMap<String, ContainerRecord>) -> Value {
    let status_of = |name: &str, image: &str| -> Value {
        let st = p.containers.get(name).cloned().unwrap_or_default();
        let rec = containers.get(name);
        let state = match (rec, &st.waiting) {
            (Some(r), _) if r.state == ContainerState::Running => {
                json!({"running": {"startedAt": r.started_at}})
            }
            (_, Some((reason, message))) => {
                let mut w = json!({"reason": reason});
                if !message.is_empty() {
                    w["message"] = json!(message);
                }
                json!({ "waiting": w })
            }
            (Some(r), None) if r.finished_at.is_some() => json!({"terminated": {
                "exitCode": r.exit_code.unwrap_or(0),
                "reason": if r.oom_killed { "OOMKilled" } else if r.exit_code == Some(0) { "Completed" } else { "Error" },
                "startedAt": r.started_at,
                "finishedAt": r.finished_at,
                "containerID": format!("berth://{}", r.id),
            }}),
            _ => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        let last = match &st.last_exit {
            Some(l) if !st.completed => json!({"terminated": {
                "exitCode": l.exit_code,
                "reason": l.reason,
                "startedAt": l.started_at,
                "finishedAt": l.finished_at,
            }}),
            _ => json!({}),
        };
        let mut v = json!({
            "name": name,
            "image": image,
            "imageID": rec.map(|r| r.image_digest.to_string()).unwrap_or_default(),
            "ready": st.ready,
            "started": st.started || rec.is_some_and(|r| r.state == ContainerState::Running),
            "restartCount": st.restarts,
            "state": state,
            "lastState": last,
        });
        if let Some(id) = &st.id {
            v["containerID"] = json!(format!("berth://{id}"));
        }
        v
    };
    let init: Vec<Value> =
        p.template.init_containers.iter().map(|c| status_of(&c.name, &c.image.to_string())).collect();
    let main: Vec<Value> = p.template.containers.iter().map(|c| status_of(&c.name, &c.image.to_string())).collect();
    let init_done = p.template.init_containers.iter().all(|c| p.containers.get(&c.name).is_some_and(|s| s.completed));
    let all_running = p
        .template
        .containers
        .iter()
        .all(|c| containers.get(&c.name).is_some_and(|r| r.state == ContainerState::Running));
    let phase = if all_running && init_done { "Running" } else { "Pending" };
    let ready = if p.ready && p.deleting.is_none() { "True" } else { "False" };
    let since = p.ready_since.clone().or_else(|| Some(p.created.clone()));
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": since});
    let mut meta = json!({
        "name": p.name,
        "namespace": p.namespace,
        "uid": p.uid,
        "labels": p.labels,
        "creationTimestamp": p.created,
    });
    if !p.template.annotations.is_empty() {
        meta["annotations"] = json!(p.template.annotations);
    }
    if let Some(owner) = &p.owner {
        meta["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "controller": true}]);
    }
    if let Some(d) = &p.deleting {
        meta["deletionTimestamp"] = json!(d);
        meta["deletionGracePeriodSeconds"] = json!(p.template.termination_grace_period.as_secs());
    }
    let mut spec = p.spec.clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["nodeName"] = json!(hostname());
    let mut status = json!({
        "phase": phase,
        "conditions": [
            cond("PodScheduled", "True"),
            cond("Initialized", if init_done { "True" } else { "False" }),
            cond("ContainersReady", ready),
            cond("Ready", ready),
        ],
        "hostIP": "127.0.0.1",
        "startTime": p.started,
        "containerStatuses": main,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    if let Some(ip) = &p.ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status})
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Kubernetes Events from berth's event log: those about pods,
/// Deployments and Services, identical ones folded into one with a count.
pub fn events(
    history: &[berth_core::api::Event],
    in_scope: impl Fn(&str) -> bool,
    involved: Option<&str>,
) -> Vec<Value> {
    let mut folded: Vec<(String, Value)> = Vec::new();
    for e in history {
        let kind = match e.kind.as_str() {
            "pod" => "Pod",
            "deployment" => "Deployment",
            "service" => "Service",
            "rollout" => "Rollout",
            _ => continue,
        };
        let namespace = e.attributes.get("namespace").cloned().unwrap_or_else(|| "default".into());
        if !in_scope(&namespace) {
            continue;
        }
        if let Some(inv) = involved {
            if inv != format!("{kind}/{}", e.name) {
                continue;
            }
        }
        let message = e.attributes.get("message").cloned().unwrap_or_default();
        let key = format!("{kind}/{namespace}/{}/{}/{message}", e.name, e.action);
        if let Some((_, v)) = folded.iter_mut().find(|(k, _)| *k == key) {
            v["count"] = json!(v["count"].as_u64().unwrap_or(1) + 1);
            v["lastTimestamp"] = json!(e.time);
            continue;
        }
        folded.push((
            key,
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": format!("{}.{}", e.name, e.seq), "namespace": namespace, "creationTimestamp": e.time},
                "involvedObject": {"kind": kind, "namespace": namespace, "name": e.name},
                "reason": e.action,
                "message": message,
                "type": e.attributes.get("type").cloned().unwrap_or_else(|| "Normal".into()),
                "count": 1,
                "firstTimestamp": e.time,
                "lastTimestamp": e.time,
                "source": {"component": "berth"},
            }),
        ));
    }
    folded.into_iter().map(|(_, v)| v).collect()
}
