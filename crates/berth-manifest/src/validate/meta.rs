//! `metadata`: names, namespaces, labels and annotations.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta as K8sMeta;

use super::Report;
use crate::model::{ObjectMeta, DEFAULT_NAMESPACE};
use crate::names;
use crate::path::FieldPath;
use crate::selector::Labels;

/// Kubernetes' limit on all annotations of one object together.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Which rule an object's name follows.
#[derive(Clone, Copy)]
pub(super) enum NameRule {
    Subdomain,
    /// Services: their names become DNS labels.
    Dns1035Label,
}

pub(super) fn object_meta(meta: &K8sMeta, rule: NameRule, report: &mut Report<'_>) -> ObjectMeta {
    let path = FieldPath::of(&["metadata"]);
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        report.invalid(&path.field("name"), "the object has no name", "set metadata.name");
    } else {
        let checked = match rule {
            NameRule::Subdomain => names::dns1123_subdomain(&name),
            NameRule::Dns1035Label => names::dns1035_label(&name),
        };
        if let Err(why) = checked {
            report.invalid(&path.field("name"), why, "rename it");
        }
    }
    let namespace = match meta.namespace.as_deref() {
        None | Some("") => DEFAULT_NAMESPACE.to_string(),
        Some(ns) => {
            if let Err(why) = names::dns1123_label(ns) {
                report.invalid(
                    &path.field("namespace"),
                    why,
                    "use a valid namespace name, or leave it out for `default`",
                );
            }
            ns.to_string()
        }
    };
    ObjectMeta {
        namespace,
        name,
        labels: labels(&path.field("labels"), meta.labels.as_ref(), report),
        annotations: annotations(&path.field("annotations"), meta.annotations.as_ref(), report),
    }
}

/// Checks label keys and values as Kubernetes does.
pub(super) fn labels(path: &FieldPath, labels: Option<&BTreeMap<String, String>>, report: &mut Report<'_>) -> Labels {
    let labels = labels.cloned().unwrap_or_default();
    for (key, value) in &labels {
        if let Err(why) = names::qualified_name(key) {
            report.invalid(&path.key(key), format!("the label key is invalid: {why}"), "rename the label");
        }
        if let Err(why) = names::label_value(value) {
            report.invalid(&path.key(key), format!("the label value is invalid: {why}"), "change the value");
        }
    }
    labels
}

pub(super) fn annotations(
    path: &FieldPath,
    annotations: Option<&BTreeMap<String, String>>,
    report: &mut Report<'_>,
) -> BTreeMap<String, String> {
    let annotations = annotations.cloned().unwrap_or_default();
    let mut total = 0;
    for (key, value) in &annotations {
        total += key.len() + value.len();
        if let Err(why) = names::qualified_name(key) {
            report.invalid(&path.key(key), format!("the annotation key is invalid: {why}"), "rename the annotation");
        }
    }
    if total > ANNOTATIONS_MAX_BYTES {
        report.invalid(
            path,
            format!("the annotations take {total} bytes, more than Kubernetes' limit of {ANNOTATIONS_MAX_BYTES}"),
            "move large data into a ConfigMap",
        );
    }
    annotations
}
