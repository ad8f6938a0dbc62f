//! `berth describe`: a readable account of one object and what happened
//! to it, laid out as kubectl's. Pure: the object, the related objects the
//! caller fetched, and the time in; text out.

mod argo;
mod doc;
mod pod;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::age;
use super::get::{endpoints, event_last_seen};
use super::kind::Kind;
use super::value::{array, data_keys, int_at, label_selector, name, namespace, pairs, scalar, str_at};
pub use doc::Doc;

/// What describe shows beside the object itself, fetched by the caller.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// Events about the object; `Err` says why they could not be listed.
    pub events: Option<Result<Vec<Value>, String>>,
    /// A service's Endpoints object, when there is one.
    pub endpoints: Option<Value>,
}

/// The describe text of one object.
pub fn render(kind: Kind, obj: &Value, related: &Related, now: DateTime<Utc>) -> String {
    let mut d = Doc::default();
    match kind {
        Kind::Pod => pod::pod(&mut d, obj),
        Kind::Deployment => deployment(&mut d, obj),
        Kind::Service => service(&mut d, obj, related.endpoints.as_ref()),
        Kind::Endpoints => endpoints_object(&mut d, obj),
        Kind::ConfigMap => config_map(&mut d, obj),
        Kind::Secret => secret(&mut d, obj),
        Kind::Event => event(&mut d, obj),
        Kind::Rollout => argo::rollout(&mut d, obj),
        Kind::AnalysisTemplate => argo::analysis_template(&mut d, obj),
    }
    if let Some(events) = &related.events {
        events_section(&mut d, events, now);
    }
    d.render()
}

/// Name, Namespace, Labels, Annotations.
fn meta(d: &mut Doc, obj: &Value) {
    d.field(0, "Name", name(obj));
    d.field(0, "Namespace", namespace(obj));
    labels(d, 0, "Labels", obj.pointer("/metadata/labels"));
    annotations(d, obj);
}

fn labels(d: &mut Doc, indent: usize, key: &str, map: Option<&Value>) {
    let lines = pairs(map).map(|p| p.split(',').map(String::from).collect()).unwrap_or_default();
    d.list(indent, key, lines);
}

/// kubectl's `Pod Template:` section for a template on its own, as
/// `rollout history --revision` shows one.
pub fn pod_template(template: &Value) -> String {
    let mut d = Doc::default();
    d.text(0, "Pod Template:");
    pod::template(&mut d, template);
    d.render()
}

fn annotations(d: &mut Doc, obj: &Value) {
    d.list(0, "Annotations", annotation_lines(obj.pointer("/metadata/annotations")));
}

/// `key: value` lines, sorted.
fn annotation_lines(map: Option<&Value>) -> Vec<String> {
    let mut lines: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                // Kept for apply's three-way merge; a wall of JSON here.
                .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    lines
}

fn conditions(d: &mut Doc, obj: &Value, with_reason: bool) {
    let conds = array(obj, "/status/conditions");
    if conds.is_empty() {
        return;
    }
    d.text(0, "Conditions:");
    let cell = |c: &Value, f: &str| str_at(c, f).unwrap_or_default().to_string();
    if with_reason {
        let rows = conds.iter().map(|c| vec![cell(c, "/type"), cell(c, "/status"), cell(c, "/reason")]).collect();
        d.table(2, &["Type", "Status", "Reason"], rows);
    } else {
        let rows = conds.iter().map(|c| vec![cell(c, "/type"), cell(c, "/status")]).collect();
        d.table(2, &["Type", "Status"], rows);
    }
}

/// The Events table: oldest first, with kubectl's `5m (x3 over 10m)`.
fn events_section(d: &mut Doc, events: &Result<Vec<Value>, String>, now: DateTime<Utc>) {
    let events = match events {
        Err(why) => return d.field(0, "Events", format!("<cannot list them: {why}>")),
        Ok(e) if e.is_empty() => return d.field(0, "Events", "<none>"),
        Ok(e) => e,
    };
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| event_last_seen(e).and_then(age::parse));
    let rows = sorted
        .into_iter()
        .map(|e| {
            let last = age::since(event_last_seen(e), now);
            let count = int_at(e, "/count").unwrap_or(1);
            let seen = match str_at(e, "/firstTimestamp") {
                Some(first) if count > 1 => format!("{last} (x{count} over {})", age::since(Some(first), now)),
                _ => last,
            };
            let from = str_at(e, "/source/component")
                .or_else(|| str_at(e, "/reportingComponent"))
                .filter(|s| !s.is_empty())
                .unwrap_or("berth");
            vec![
                str_at(e, "/type").unwrap_or_default().to_string(),
                str_at(e, "/reason").unwrap_or_default().to_string(),
                seen,
                from.to_string(),
                str_at(e, "/message").unwrap_or_default().trim().to_string(),
            ]
        })
        .collect();
    d.text(0, "Events:");
    d.table(2, &["Type", "Reason", "Age", "From", "Message"], rows);
}

fn deployment(d: &mut Doc, obj: &Value) {
    d.field(0, "Name", name(obj));
    d.field(0, "Namespace", namespace(obj));
    d.field(0, "CreationTimestamp", str_at(obj, "/metadata/creationTimestamp").map(age::long).unwrap_or_default());
    labels(d, 0, "Labels", obj.pointer("/metadata/labels"));
    annotations(d, obj);
    d.field(0, "Selector", obj.pointer("/spec/selector").and_then(label_selector).unwrap_or_else(|| "<none>".into()));
    let status = |f: &str| int_at(obj, &format!("/status/{f}")).unwrap_or(0);
    d.field(
        0,
        "Replicas",
        format!(
            "{} desired | {} updated | {} total | {} available | {} unavailable",
            int_at(obj, "/spec/replicas").unwrap_or(1),
            status("updatedReplicas"),
            status("replicas"),
            status("availableReplicas"),
            status("unavailableReplicas"),
        ),
    );
    let strategy = str_at(obj, "/spec/strategy/type").unwrap_or("RollingUpdate");
    d.field(0, "StrategyType", strategy);
    d.field(0, "MinReadySeconds", int_at(obj, "/spec/minReadySeconds").unwrap_or(0).to_string());
    if strategy == "RollingUpdate" {
        let knob = |f: &str| scalar(obj.pointer(&format!("/spec/strategy/rollingUpdate/{f}"))).unwrap_or("25%".into());
        d.field(
            0,
            "RollingUpdateStrategy",
            format!("{} max unavailable, {} max surge", knob("maxUnavailable"), knob("maxSurge")),
        );
    }
    d.text(0, "Pod Template:");
    if let Some(template) = obj.pointer("/spec/template") {
        pod::template(d, template);
    }
    conditions(d, obj, true);
}

fn service(d: &mut Doc, obj: &Value, eps: Option<&Value>) {
    meta(d, obj);
    d.field(0, "Selector", pairs(obj.pointer("/spec/selector")).unwrap_or_else(|| "<none>".into()));
    let kind = str_at(obj, "/spec/type").unwrap_or("ClusterIP");
    d.field(0, "Type", kind);
    d.field(0, "IP", str_at(obj, "/spec/clusterIP").filter(|s| !s.is_empty()).unwrap_or("<none>"));
    if let Some(ext) = str_at(obj, "/spec/externalName") {
        d.field(0, "External Name", ext);
    }
    let ips: Vec<&str> = array(obj, "/spec/externalIPs").iter().filter_map(Value::as_str).collect();
    if !ips.is_empty() {
        d.field(0, "External IPs", ips.join(","));
    }
    for p in array(obj, "/spec/ports") {
        let port_name = str_at(p, "/name").filter(|n| !n.is_empty());
        let proto = str_at(p, "/protocol").unwrap_or("TCP");
        let label = port_name.unwrap_or("<unset>");
        d.field(0, "Port", format!("{label}  {}/{proto}", scalar(p.get("port")).unwrap_or_default()));
        let target = scalar(p.get("targetPort")).or_else(|| scalar(p.get("port"))).unwrap_or_default();
        d.field(0, "TargetPort", format!("{target}/{proto}"));
        if let Some(node) = int_at(p, "/nodePort").filter(|n| *n != 0) {
            d.field(0, "NodePort", format!("{label}  {node}/{proto}"));
        }
        let shown = eps.map(|e| endpoints(e, port_name)).unwrap_or_else(|| "<none>".into());
        d.field(0, "Endpoints", shown);
    }
    d.field(0, "Session Affinity", str_at(obj, "/spec/sessionAffinity").unwrap_or("None"));
}

fn endpoints_object(d: &mut Doc, obj: &Value) {
    meta(d, obj);
    d.text(0, "Subsets:");
    for s in array(obj, "/subsets") {
        let ips = |f: &str| {
            let l: Vec<&str> = array(s, f).iter().filter_map(|a| str_at(a, "/ip")).collect();
            if l.is_empty() {
                "<none>".to_string()
            } else {
                l.join(",")
            }
        };
        d.field(2, "Addresses", ips("/addresses"));
        d.field(2, "NotReadyAddresses", ips("/notReadyAddresses"));
        d.text(2, "Ports:");
        let rows = array(s, "/ports")
            .iter()
            .map(|p| {
                vec![
                    str_at(p, "/name").unwrap_or("<unset>").to_string(),
                    int_at(p, "/port").unwrap_or(0).to_string(),
                    str_at(p, "/protocol").unwrap_or("TCP").to_string(),
                ]
            })
            .collect();
        d.table(4, &["Name", "Port", "Protocol"], rows);
        d.blank();
    }
}

fn config_map(d: &mut Doc, obj: &Value) {
    meta(d, obj);
    d.blank();
    d.text(0, "Data");
    d.text(0, "====");
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            d.text(0, format!("{k}:"));
            d.text(0, "----");
            d.text(0, v.as_str().unwrap_or_default());
            d.blank();
        }
    }
    d.blank();
    d.text(0, "BinaryData");
    d.text(0, "====");
    if let Some(data) = obj.get("binaryData").and_then(Value::as_object) {
        for (k, v) in data {
            d.text(0, format!("{k}: {} bytes", decoded_len(v).unwrap_or(0)));
        }
    }
    d.blank();
}

fn secret(d: &mut Doc, obj: &Value) {
    meta(d, obj);
    d.blank();
    d.field(0, "Type", str_at(obj, "/type").unwrap_or("Opaque"));
    d.blank();
    d.text(0, "Data");
    d.text(0, "====");
    // Sizes only: describe never prints a secret's value.
    for key in data_keys(obj) {
        let size = obj.get("data").and_then(|m| m.get(&key)).and_then(decoded_len);
        d.field(0, &key, size.map_or("<hidden>".into(), |n| format!("{n} bytes")));
    }
}

/// Bytes in a base64 value; `None` when it is not one (a hidden value).
fn decoded_len(v: &Value) -> Option<usize> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok().map(|b| b.len())
}

fn event(d: &mut Doc, obj: &Value) {
    meta(d, obj);
    d.field(0, "Involved Object", super::get::involved(obj));
    d.field(0, "Type", str_at(obj, "/type").unwrap_or_default());
    d.field(0, "Reason", str_at(obj, "/reason").unwrap_or_default());
    d.field(0, "Message", str_at(obj, "/message").unwrap_or_default().trim());
    d.field(0, "Count", int_at(obj, "/count").unwrap_or(1).to_string());
    d.field(0, "First Timestamp", str_at(obj, "/firstTimestamp").map(age::long).unwrap_or("<unset>".into()));
    d.field(0, "Last Timestamp", event_last_seen(obj).map(age::long).unwrap_or("<unset>".into()));
    d.field(0, "Source", str_at(obj, "/source/component").or_else(|| str_at(obj, "/reportingComponent")).unwrap_or(""));
}

#[cfg(test)]
mod tests;
