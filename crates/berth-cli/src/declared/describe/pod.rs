//! Describing pods, and the pod template inside a deployment: containers
//! with their state, probes, environment and mounts.

use serde_json::Value;

use super::{annotation_lines, annotations, conditions, labels, Doc};
use crate::declared::age;
use crate::declared::value::{array, int_at, name, namespace, scalar, str_at};

pub(super) fn pod(d: &mut Doc, obj: &Value) {
    d.field(0, "Name", name(obj));
    d.field(0, "Namespace", namespace(obj));
    d.field(0, "Node", str_at(obj, "/spec/nodeName").or_else(|| str_at(obj, "/status/hostIP")).unwrap_or("<none>"));
    if let Some(t) = str_at(obj, "/status/startTime") {
        d.field(0, "Start Time", age::long(t));
    }
    labels(d, 0, "Labels", obj.pointer("/metadata/labels"));
    annotations(d, obj);
    match str_at(obj, "/metadata/deletionTimestamp") {
        Some(t) => {
            d.field(0, "Status", format!("Terminating (since {})", age::long(t)));
            if let Some(grace) = int_at(obj, "/metadata/deletionGracePeriodSeconds") {
                d.field(0, "Termination Grace Period", format!("{grace}s"));
            }
        }
        None => d.field(0, "Status", str_at(obj, "/status/phase").unwrap_or("Unknown")),
    }
    for (key, field) in [("Reason", "/status/reason"), ("Message", "/status/message")] {
        if let Some(v) = str_at(obj, field).filter(|v| !v.is_empty()) {
            d.field(0, key, v);
        }
    }
    d.field(0, "IP", str_at(obj, "/status/podIP").filter(|s| !s.is_empty()).unwrap_or("<none>"));
    let owner = array(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o["controller"].as_bool() == Some(true))
        .or(array(obj, "/metadata/ownerReferences").first());
    if let Some(o) = owner {
        d.field(
            0,
            "Controlled By",
            format!("{}/{}", str_at(o, "/kind").unwrap_or_default(), str_at(o, "/name").unwrap_or_default()),
        );
    }
    let inits = array(obj, "/spec/initContainers");
    if !inits.is_empty() {
        d.text(0, "Init Containers:");
        for c in inits {
            container(d, 2, c, status_of(obj, "/status/initContainerStatuses", c));
        }
    }
    d.text(0, "Containers:");
    for c in array(obj, "/spec/containers") {
        container(d, 2, c, status_of(obj, "/status/containerStatuses", c));
    }
    conditions(d, obj, false);
    volumes(d, 0, obj.pointer("/spec").unwrap_or(&Value::Null));
}

/// A deployment's pod template: labels, annotations, containers (no
/// status), volumes.
pub(super) fn template(d: &mut Doc, template: &Value) {
    labels(d, 2, "Labels", template.pointer("/metadata/labels"));
    // As kubectl: shown only when there are some.
    let notes = annotation_lines(template.pointer("/metadata/annotations"));
    if !notes.is_empty() {
        d.list(2, "Annotations", notes);
    }
    let inits = array(template, "/spec/initContainers");
    if !inits.is_empty() {
        d.text(2, "Init Containers:");
        for c in inits {
            container(d, 3, c, None);
        }
    }
    d.text(2, "Containers:");
    for c in array(template, "/spec/containers") {
        container(d, 3, c, None);
    }
    volumes(d, 2, template.pointer("/spec").unwrap_or(&Value::Null));
}

fn status_of<'a>(pod: &'a Value, pointer: &str, spec: &Value) -> Option<&'a Value> {
    array(pod, pointer).iter().find(|s| s["name"] == spec["name"])
}

fn container(d: &mut Doc, indent: usize, c: &Value, status: Option<&Value>) {
    let at = indent + 2;
    d.text(indent, format!("{}:", str_at(c, "/name").unwrap_or_default()));
    if let Some(s) = status {
        d.field(at, "Container ID", str_at(s, "/containerID").unwrap_or_default());
    }
    d.field(at, "Image", str_at(c, "/image").unwrap_or_default());
    if let Some(id) = status.and_then(|s| str_at(s, "/imageID")).filter(|i| !i.is_empty()) {
        d.field(at, "Image ID", id);
    }
    let ports: Vec<String> = array(c, "/ports")
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                scalar(p.get("containerPort")).unwrap_or_default(),
                str_at(p, "/protocol").unwrap_or("TCP")
            )
        })
        .collect();
    match ports.len() {
        0 => d.field(at, "Port", "<none>"),
        1 => d.field(at, "Port", &ports[0]),
        _ => d.field(at, "Ports", ports.join(", ")),
    }
    for (key, field) in [("Command", "/command"), ("Args", "/args")] {
        let items: Vec<String> = array(c, field).iter().filter_map(|a| a.as_str().map(String::from)).collect();
        if !items.is_empty() {
            d.list(at, key, items);
        }
    }
    if let Some(s) = status {
        state(d, at, "State", s.get("state"));
        if s.get("lastState").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            state(d, at, "Last State", s.get("lastState"));
        }
        d.field(at, "Ready", if s["ready"].as_bool() == Some(true) { "True" } else { "False" });
        d.field(at, "Restart Count", int_at(s, "/restartCount").unwrap_or(0).to_string());
    }
    for (key, field) in [("Limits", "/resources/limits"), ("Requests", "/resources/requests")] {
        if let Some(m) = c.pointer(field).and_then(Value::as_object).filter(|m| !m.is_empty()) {
            d.field(at, key, "");
            for (res, q) in m {
                d.field(at + 2, res, scalar(Some(q)).unwrap_or_default());
            }
        }
    }
    for (key, field) in [("Liveness", "/livenessProbe"), ("Readiness", "/readinessProbe"), ("Startup", "/startupProbe")]
    {
        if let Some(p) = c.pointer(field) {
            d.field(at, key, probe(p));
        }
    }
    environment(d, at, c);
    let mounts: Vec<String> = array(c, "/volumeMounts")
        .iter()
        .map(|m| {
            let mode = if m["readOnly"].as_bool() == Some(true) { "ro" } else { "rw" };
            let sub = str_at(m, "/subPath").map(|p| format!(",path={p:?}")).unwrap_or_default();
            format!(
                "{} from {} ({mode}{sub})",
                str_at(m, "/mountPath").unwrap_or_default(),
                str_at(m, "/name").unwrap_or_default()
            )
        })
        .collect();
    d.list(at, "Mounts", mounts);
}

/// `Running` with `Started:`, `Waiting` with `Reason:`, `Terminated` with
/// reason, exit code and times.
fn state(d: &mut Doc, at: usize, key: &str, state: Option<&Value>) {
    let Some(state) = state.and_then(Value::as_object) else { return d.field(at, key, "<unknown>") };
    let sub = at + 2;
    if let Some(r) = state.get("running") {
        d.field(at, key, "Running");
        if let Some(t) = str_at(r, "/startedAt") {
            d.field(sub, "Started", age::long(t));
        }
    } else if let Some(w) = state.get("waiting") {
        d.field(at, key, "Waiting");
        for (k, f) in [("Reason", "/reason"), ("Message", "/message")] {
            if let Some(v) = str_at(w, f).filter(|v| !v.is_empty()) {
                d.field(sub, k, v);
            }
        }
    } else if let Some(t) = state.get("terminated") {
        d.field(at, key, "Terminated");
        for (k, f) in [("Reason", "/reason"), ("Message", "/message")] {
            if let Some(v) = str_at(t, f).filter(|v| !v.is_empty()) {
                d.field(sub, k, v.trim());
            }
        }
        d.field(sub, "Exit Code", int_at(t, "/exitCode").unwrap_or(0).to_string());
        if let Some(sig) = int_at(t, "/signal").filter(|s| *s != 0) {
            d.field(sub, "Signal", sig.to_string());
        }
        for (k, f) in [("Started", "/startedAt"), ("Finished", "/finishedAt")] {
            if let Some(v) = str_at(t, f) {
                d.field(sub, k, age::long(v));
            }
        }
    } else {
        d.field(at, key, "<unknown>");
    }
}

/// kubectl's one-line probe summary:
/// `http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`.
pub(super) fn probe(p: &Value) -> String {
    let how = if let Some(h) = p.get("httpGet") {
        let scheme = str_at(h, "/scheme").unwrap_or("HTTP").to_ascii_lowercase();
        let host = str_at(h, "/host").unwrap_or_default();
        let port = scalar(h.get("port")).unwrap_or_default();
        let host_port = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        format!("http-get {scheme}://{host_port}{}", str_at(h, "/path").unwrap_or_default())
    } else if let Some(t) = p.get("tcpSocket") {
        format!("tcp-socket {}:{}", str_at(t, "/host").unwrap_or_default(), scalar(t.get("port")).unwrap_or_default())
    } else if let Some(e) = p.get("exec") {
        let cmd: Vec<&str> = array(e, "/command").iter().filter_map(Value::as_str).collect();
        format!("exec [{}]", cmd.join(" "))
    } else if let Some(g) = p.get("grpc") {
        let service = str_at(g, "/service").filter(|s| !s.is_empty()).unwrap_or("<service>");
        format!("grpc <pod>:{} {service}", scalar(g.get("port")).unwrap_or_default())
    } else {
        "unknown".into()
    };
    let n = |f: &str, default: i64| int_at(p, f).unwrap_or(default);
    format!(
        "{how} delay={}s timeout={}s period={}s #success={} #failure={}",
        n("/initialDelaySeconds", 0),
        n("/timeoutSeconds", 1),
        n("/periodSeconds", 10),
        n("/successThreshold", 1),
        n("/failureThreshold", 3),
    )
}

fn environment(d: &mut Doc, at: usize, c: &Value) {
    let from = array(c, "/envFrom");
    if !from.is_empty() {
        d.field(at, "Environment Variables from", "");
        for f in from {
            let (src, kind) = match (f.get("configMapRef"), f.get("secretRef")) {
                (Some(cm), _) => (cm, "ConfigMap"),
                (_, Some(s)) => (s, "Secret"),
                _ => continue,
            };
            let prefix = str_at(f, "/prefix").map(|p| format!(" with prefix '{p}'")).unwrap_or_default();
            let optional = src["optional"].as_bool().unwrap_or(false);
            d.field(at + 2, str_at(src, "/name").unwrap_or_default(), format!("{kind}{prefix}  Optional: {optional}"));
        }
    }
    let env = array(c, "/env");
    if env.is_empty() {
        return d.field(at, "Environment", "<none>");
    }
    d.field(at, "Environment", "");
    for e in env {
        let key = str_at(e, "/name").unwrap_or_default();
        let value = if let Some(from) = e.get("valueFrom") {
            let key_ref = |r: &Value, what: &str| {
                format!(
                    "<set to the key '{}' {what} '{}'>  Optional: {}",
                    str_at(r, "/key").unwrap_or_default(),
                    str_at(r, "/name").unwrap_or_default(),
                    r["optional"].as_bool().unwrap_or(false)
                )
            };
            if let Some(r) = from.get("configMapKeyRef") {
                key_ref(r, "of config map")
            } else if let Some(r) = from.get("secretKeyRef") {
                key_ref(r, "in secret")
            } else if let Some(r) = from.get("fieldRef") {
                format!(
                    "({}:{})",
                    str_at(r, "/apiVersion").unwrap_or("v1"),
                    str_at(r, "/fieldPath").unwrap_or_default()
                )
            } else if let Some(r) = from.get("resourceFieldRef") {
                format!(
                    "{} ({})",
                    str_at(r, "/resource").unwrap_or_default(),
                    str_at(r, "/containerName").unwrap_or("this container")
                )
            } else {
                "<unknown source>".into()
            }
        } else {
            str_at(e, "/value").unwrap_or_default().to_string()
        };
        d.field(at + 2, key, value);
    }
}

fn volumes(d: &mut Doc, indent: usize, spec: &Value) {
    let vols = array(spec, "/volumes");
    if vols.is_empty() {
        return d.field(indent, "Volumes", "<none>");
    }
    d.text(indent, "Volumes:");
    for v in vols {
        d.text(indent + 2, format!("{}:", str_at(v, "/name").unwrap_or_default()));
        let source = v.as_object().and_then(|m| m.iter().find(|(k, _)| *k != "name"));
        let Some((kind, src)) = source else { continue };
        let at = indent + 4;
        match kind.as_str() {
            "configMap" => {
                d.field(at, "Type", "ConfigMap (a volume populated by a ConfigMap)");
                d.field(at, "Name", str_at(src, "/name").unwrap_or_default());
            }
            "secret" => {
                d.field(at, "Type", "Secret (a volume populated by a Secret)");
                d.field(at, "SecretName", str_at(src, "/secretName").unwrap_or_default());
            }
            "emptyDir" => {
                d.field(at, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
                d.field(at, "Medium", str_at(src, "/medium").unwrap_or_default());
            }
            "hostPath" => {
                d.field(at, "Type", "HostPath (bare host directory volume)");
                d.field(at, "Path", str_at(src, "/path").unwrap_or_default());
            }
            other => d.field(at, "Type", other),
        }
    }
}
