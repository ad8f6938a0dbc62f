//! Pod templates and their volumes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1 as k8s;

use super::container::{container, Role};
use super::{meta, non_negative, Report};
use crate::model::{KeyToPath, Medium, PodTemplate, ProjectedKeys, Volume, VolumeSource};
use crate::names;
use crate::path::FieldPath;
use crate::quantity::Quantity;

const DEFAULT_GRACE_SECONDS: u32 = 30;
const DEFAULT_MODE: u32 = 0o644;
const MAX_MODE: i32 = 0o777;

pub(super) fn template(path: &FieldPath, t: &k8s::PodTemplateSpec, report: &mut Report<'_>) -> Option<PodTemplate> {
    let meta_path = path.field("metadata");
    let labels = meta::labels(&meta_path.field("labels"), t.metadata.as_ref().and_then(|m| m.labels.as_ref()), report);
    let annotations = meta::annotations(
        &meta_path.field("annotations"),
        t.metadata.as_ref().and_then(|m| m.annotations.as_ref()),
        report,
    );
    let spec_path = path.field("spec");
    let Some(spec) = &t.spec else {
        report.invalid(&spec_path, "the pod template has no spec", "add spec.containers");
        return None;
    };
    if let Some(policy) = spec.restart_policy.as_deref().filter(|p| *p != "Always") {
        report.invalid(
            &spec_path.field("restartPolicy"),
            format!("{policy:?} is not allowed: a Deployment's pods always restart"),
            "remove restartPolicy or set it to Always",
        );
    }
    let grace = non_negative(
        report,
        &spec_path.field("terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
        DEFAULT_GRACE_SECONDS,
        0,
    );
    if let Some(hostname) = &spec.hostname {
        if let Err(why) = names::dns1123_label(hostname) {
            report.invalid(&spec_path.field("hostname"), why, "use a DNS label or leave hostname out");
        }
    }
    let volumes = volumes(&spec_path.field("volumes"), spec.volumes.as_deref().unwrap_or_default(), report);

    let mut seen: BTreeMap<String, FieldPath> = BTreeMap::new();
    let mut all_ok = true;
    let mut build = |field: &str, list: &[k8s::Container], role: Role, report: &mut Report<'_>| {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let at = spec_path.field(field).index(i);
            if let Some(first) = seen.get(c.name.as_str()) {
                report.invalid(
                    &at.field("name"),
                    format!("{:?} is already the name of {first}", c.name),
                    "give every container and init container of the pod its own name",
                );
            } else {
                seen.insert(c.name.clone(), at.clone());
            }
            match container(&at, c, role, &volumes, grace, report) {
                Some(c) => out.push(c),
                None => all_ok = false,
            }
        }
        out
    };
    let init_containers =
        build("initContainers", spec.init_containers.as_deref().unwrap_or_default(), Role::Init, report);
    let containers = build("containers", &spec.containers, Role::Main, report);
    if spec.containers.is_empty() {
        report.invalid(&spec_path.field("containers"), "the pod has no containers", "declare at least one container");
    }
    all_ok.then(|| PodTemplate {
        labels,
        annotations,
        init_containers,
        containers,
        volumes,
        termination_grace_period: Duration::from_secs(grace.into()),
        hostname: spec.hostname.clone(),
        host_users: spec.host_users.unwrap_or(true),
    })
}

fn volumes(path: &FieldPath, list: &[k8s::Volume], report: &mut Report<'_>) -> Vec<Volume> {
    let mut out: Vec<Volume> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let at = path.index(i);
        if let Err(why) = names::dns1123_label(&v.name) {
            report.invalid(&at.field("name"), why, "rename the volume");
        }
        if out.iter().any(|existing| existing.name == v.name) {
            report.invalid(
                &at.field("name"),
                format!("another volume is also named {:?}", v.name),
                "give each volume its own name",
            );
        }
        let given: Vec<&str> = [
            v.config_map.as_ref().map(|_| "configMap"),
            v.secret.as_ref().map(|_| "secret"),
            v.empty_dir.as_ref().map(|_| "emptyDir"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            report.invalid(
                &at,
                format!("a volume has one source, this one names {}", given.join(" and ")),
                "split it into one volume per source",
            );
        }
        let source = if let Some(cm) = &v.config_map {
            let at = at.field("configMap");
            reference_name(&at.field("name"), Some(&cm.name), "ConfigMap", report);
            VolumeSource::ConfigMap(projected(&at, &cm.name, cm.items.as_deref(), cm.default_mode, cm.optional, report))
        } else if let Some(s) = &v.secret {
            let at = at.field("secret");
            let name = s.secret_name.clone().unwrap_or_default();
            reference_name(&at.field("secretName"), Some(&name), "Secret", report);
            VolumeSource::Secret(projected(&at, &name, s.items.as_deref(), s.default_mode, s.optional, report))
        } else {
            // Kubernetes defaults a volume without a source to emptyDir.
            let e = v.empty_dir.clone().unwrap_or_default();
            let at = at.field("emptyDir");
            let medium = match e.medium.as_deref() {
                None | Some("") => Medium::Disk,
                Some("Memory") => Medium::Memory,
                Some(other) => {
                    report.invalid(
                        &at.field("medium"),
                        format!("{other:?} is not a medium berth offers"),
                        "use \"\" (disk) or Memory",
                    );
                    Medium::Disk
                }
            };
            let size_limit_bytes = e.size_limit.as_ref().and_then(|q| bytes(&at.field("sizeLimit"), &q.0, report));
            VolumeSource::EmptyDir { medium, size_limit_bytes }
        };
        out.push(Volume { name: v.name.clone(), source });
    }
    out
}

fn projected(
    path: &FieldPath,
    name: &str,
    items: Option<&[k8s::KeyToPath]>,
    default_mode: Option<i32>,
    optional: Option<bool>,
    report: &mut Report<'_>,
) -> ProjectedKeys {
    let items = items
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = path.field("items").index(i);
            if let Err(why) = names::config_key(&item.key) {
                report.invalid(&at.field("key"), why, "name a key of the object");
            }
            if let Err(why) = names::relative_path(&item.path) {
                report.invalid(&at.field("path"), why, "give a path inside the volume, like conf/app.yaml");
            }
            KeyToPath {
                key: item.key.clone(),
                path: item.path.clone(),
                mode: item.mode.map(|m| mode(&at.field("mode"), m, report)),
            }
        })
        .collect();
    ProjectedKeys {
        name: name.to_string(),
        items,
        default_mode: default_mode.map_or(DEFAULT_MODE, |m| mode(&path.field("defaultMode"), m, report)),
        optional: optional.unwrap_or(false),
    }
}

fn mode(path: &FieldPath, m: i32, report: &mut Report<'_>) -> u32 {
    if (0..=MAX_MODE).contains(&m) {
        m as u32
    } else {
        report.invalid(path, format!("{m} is not a file mode"), "use 0 to 0777 (octal, e.g. 0644, or decimal 420)");
        DEFAULT_MODE
    }
}

/// The name of a ConfigMap or Secret referred to from a pod.
pub(super) fn reference_name(path: &FieldPath, name: Option<&str>, kind: &str, report: &mut Report<'_>) {
    match name {
        None | Some("") => report.invalid(path, format!("no {kind} is named"), format!("name the {kind}")),
        Some(name) => {
            if let Err(why) = names::dns1123_subdomain(name) {
                report.invalid(path, why, format!("name an existing {kind}"));
            }
        }
    }
}

/// A byte quantity, rounded up.
pub(super) fn bytes(path: &FieldPath, text: &str, report: &mut Report<'_>) -> Option<u64> {
    match Quantity::parse(text) {
        Ok(q) if !q.is_negative() => u64::try_from(q.units()).ok(),
        Ok(_) => {
            report.invalid(path, format!("{text} is negative"), "give a size of 0 or more");
            None
        }
        Err(e) => {
            report.invalid(path, e.to_string(), "write bytes with an optional suffix, e.g. 128Mi, 1G or 1e9");
            None
        }
    }
}
