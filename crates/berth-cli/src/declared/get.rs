//! `berth get`'s tables: one row per object, columns as kubectl prints
//! them. Pure: objects and the time in, header and rows out.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::kind::Kind;
use super::value::{array, data_count, int_at, label_selector, name, namespace, pairs, scalar, str_at};
use super::{age, pod};

/// How the table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// `-o wide`: the extra columns.
    pub wide: bool,
    /// `-A`: a NAMESPACE column first.
    pub namespaces: bool,
    /// Several types in one `get`: names as `pod/web-abc`, as kubectl.
    pub kind_prefix: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// The table for objects of one kind.
pub fn table(kind: Kind, items: &[Value], layout: Layout, now: DateTime<Utc>) -> Table {
    let mut items: Vec<&Value> = items.iter().collect();
    if kind == Kind::Event {
        // Oldest first, the newest last, nearest the prompt.
        items.sort_by_key(|e| event_last_seen(e).and_then(age::parse));
    }
    let (mut header, wide_header): (Vec<&'static str>, Vec<&'static str>) = match kind {
        Kind::Pod => (vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"], vec!["IP", "NODE"]),
        Kind::Deployment => {
            (vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], vec!["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        Kind::Service => (vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], vec!["SELECTOR"]),
        Kind::Endpoints => (vec!["NAME", "ENDPOINTS", "AGE"], vec![]),
        Kind::ConfigMap => (vec!["NAME", "DATA", "AGE"], vec![]),
        Kind::Secret => (vec!["NAME", "TYPE", "DATA", "AGE"], vec![]),
        Kind::Event => (vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], vec!["FIRST SEEN", "COUNT"]),
        // Argo's printer columns, then where the rollout stands.
        Kind::Rollout => (
            vec!["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"],
            vec!["STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "ACTIVE"],
        ),
        Kind::AnalysisTemplate => (vec!["NAME", "METRICS", "AGE"], vec!["PROVIDERS"]),
    };
    if layout.wide {
        header.extend(wide_header);
    }
    if layout.namespaces {
        header.insert(0, "NAMESPACE");
    }
    let rows = items
        .into_iter()
        .map(|obj| {
            let mut row = row(kind, obj, layout, now);
            if layout.kind_prefix && kind != Kind::Event {
                row[0] = format!("{}/{}", kind.qualified(), row[0]);
            }
            if layout.namespaces {
                row.insert(0, namespace(obj).to_string());
            }
            row
        })
        .collect();
    Table { header, rows }
}

fn row(kind: Kind, obj: &Value, layout: Layout, now: DateTime<Utc>) -> Vec<String> {
    let created = || age::since(str_at(obj, "/metadata/creationTimestamp"), now);
    let n = name(obj).to_string();
    let mut row = match kind {
        Kind::Pod => vec![n, pod::ready(obj), pod::status(obj), pod::restarts(obj, now), created()],
        Kind::Deployment => {
            let status = |f: &str| int_at(obj, &format!("/status/{f}")).unwrap_or(0);
            let desired = int_at(obj, "/spec/replicas").unwrap_or(1);
            vec![
                n,
                format!("{}/{desired}", status("readyReplicas")),
                status("updatedReplicas").to_string(),
                status("availableReplicas").to_string(),
                created(),
            ]
        }
        Kind::Service => vec![
            n,
            str_at(obj, "/spec/type").unwrap_or("ClusterIP").to_string(),
            str_at(obj, "/spec/clusterIP").filter(|ip| !ip.is_empty()).unwrap_or("<none>").to_string(),
            external_ip(obj),
            service_ports(obj),
            created(),
        ],
        Kind::Endpoints => vec![n, endpoints(obj, None), created()],
        Kind::ConfigMap => vec![n, data_count(obj).to_string(), created()],
        Kind::Secret => {
            vec![n, str_at(obj, "/type").unwrap_or("Opaque").to_string(), data_count(obj).to_string(), created()]
        }
        Kind::Rollout => {
            let status = |f: &str| int_at(obj, &format!("/status/{f}")).unwrap_or(0);
            vec![
                n,
                int_at(obj, "/spec/replicas").unwrap_or(1).to_string(),
                status("replicas").to_string(),
                status("updatedReplicas").to_string(),
                status("availableReplicas").to_string(),
                created(),
            ]
        }
        Kind::AnalysisTemplate => vec![n, array(obj, "/spec/metrics").len().to_string(), created()],
        Kind::Event => vec![
            age::since(event_last_seen(obj), now),
            str_at(obj, "/type").unwrap_or_default().to_string(),
            str_at(obj, "/reason").unwrap_or_default().to_string(),
            involved(obj),
            str_at(obj, "/message").unwrap_or_default().trim().to_string(),
        ],
    };
    if layout.wide {
        match kind {
            Kind::Pod => row.extend([
                str_at(obj, "/status/podIP").filter(|s| !s.is_empty()).unwrap_or("<none>").to_string(),
                str_at(obj, "/spec/nodeName")
                    .or_else(|| str_at(obj, "/status/hostIP"))
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
                    .to_string(),
            ]),
            Kind::Deployment => {
                let containers = array(obj, "/spec/template/spec/containers");
                let field = |f: &str| containers.iter().filter_map(|c| str_at(c, f)).collect::<Vec<_>>().join(",");
                row.extend([
                    field("/name"),
                    field("/image"),
                    obj.pointer("/spec/selector").and_then(label_selector).unwrap_or_else(|| "<none>".into()),
                ]);
            }
            Kind::Service => row.push(pairs(obj.pointer("/spec/selector")).unwrap_or_else(|| "<none>".into())),
            Kind::Event => row.extend([
                age::since(str_at(obj, "/firstTimestamp").or_else(|| event_last_seen(obj)), now),
                int_at(obj, "/count").unwrap_or(1).to_string(),
            ]),
            Kind::Rollout => row.extend(rollout_wide(obj)),
            Kind::AnalysisTemplate => {
                let mut providers: Vec<String> = array(obj, "/spec/metrics")
                    .iter()
                    .filter_map(|m| m.get("provider")?.as_object()?.keys().next().cloned())
                    .collect();
                providers.sort();
                providers.dedup();
                row.push(if providers.is_empty() { "<none>".into() } else { providers.join(",") });
            }
            Kind::Endpoints | Kind::ConfigMap | Kind::Secret => {}
        }
    }
    row
}

/// A rollout's STRATEGY, STATUS, STEP, SET-WEIGHT and ACTIVE columns.
fn rollout_wide(obj: &Value) -> [String; 5] {
    let canary = obj.pointer("/spec/strategy/canary").is_some();
    let dash = || "-".to_string();
    let phase = str_at(obj, "/status/phase").unwrap_or("Progressing").to_string();
    if canary {
        let steps = array(obj, "/spec/strategy/canary/steps").len();
        let step = match int_at(obj, "/status/currentStepIndex") {
            Some(i) => format!("{i}/{steps}"),
            None => dash(),
        };
        let weight = int_at(obj, "/status/canary/weights/canary/weight").map(|w| w.to_string()).unwrap_or_else(dash);
        ["Canary".into(), phase, step, weight, dash()]
    } else {
        let active = str_at(obj, "/status/blueGreen/activeSelector").map(String::from).unwrap_or_else(dash);
        ["BlueGreen".into(), phase, dash(), dash(), active]
    }
}

/// When an event was last seen: `lastTimestamp`, else the newer
/// `eventTime`, else `firstTimestamp`.
pub fn event_last_seen(e: &Value) -> Option<&str> {
    str_at(e, "/lastTimestamp").or_else(|| str_at(e, "/eventTime")).or_else(|| str_at(e, "/firstTimestamp"))
}

/// An event's object as `pod/web-abc`.
pub fn involved(e: &Value) -> String {
    let kind = str_at(e, "/involvedObject/kind").unwrap_or_default().to_ascii_lowercase();
    format!("{kind}/{}", str_at(e, "/involvedObject/name").unwrap_or_default())
}

/// `80/TCP,443:30443/TCP`; `<none>` without ports.
pub fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = array(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = scalar(p.get("port")).unwrap_or_default();
            let proto = str_at(p, "/protocol").unwrap_or("TCP");
            match int_at(p, "/nodePort").filter(|n| *n != 0) {
                Some(node) => format!("{port}:{node}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn external_ip(svc: &Value) -> String {
    let mut ips: Vec<&str> = array(svc, "/spec/externalIPs").iter().filter_map(Value::as_str).collect();
    match str_at(svc, "/spec/type") {
        Some("ExternalName") => return str_at(svc, "/spec/externalName").unwrap_or("<none>").to_string(),
        Some("LoadBalancer") => {
            ips.extend(
                array(svc, "/status/loadBalancer/ingress")
                    .iter()
                    .filter_map(|i| str_at(i, "/ip").or_else(|| str_at(i, "/hostname"))),
            );
            if ips.is_empty() {
                return "<pending>".into();
            }
        }
        _ => {}
    }
    if ips.is_empty() {
        "<none>".into()
    } else {
        ips.join(",")
    }
}

/// The ready addresses of an Endpoints object as `ip:port,...`, only for
/// the named port when one is given; past three, `a,b,c + 2 more...`.
pub fn endpoints(ep: &Value, port_name: Option<&str>) -> String {
    const SHOWN: usize = 3;
    let mut list = Vec::new();
    for subset in array(ep, "/subsets") {
        let ips = array(subset, "/addresses").iter().filter_map(|a| str_at(a, "/ip"));
        let ports = array(subset, "/ports");
        if ports.is_empty() {
            list.extend(ips.map(String::from));
            continue;
        }
        for p in ports.iter().filter(|p| port_name.is_none_or(|want| str_at(p, "/name").unwrap_or_default() == want)) {
            let port = int_at(p, "/port").unwrap_or(0);
            for ip in ips.clone() {
                list.push(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") });
            }
        }
    }
    match list.len() {
        0 => "<none>".into(),
        n if n > SHOWN => format!("{} + {} more...", list[..SHOWN].join(","), n - SHOWN),
        _ => list.join(","),
    }
}

/// `-o name`: `pod/web-abc`, `deployment.apps/web`.
pub fn name_line(kind: Kind, obj: &Value) -> String {
    format!("{}/{}", kind.qualified(), name(obj))
}

/// Objects as the Kubernetes `List` kubectl prints for `-o json|yaml`.
pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

#[cfg(test)]
mod tests;
