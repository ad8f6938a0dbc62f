//! `v1 ConfigMap` and `v1 Secret`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::meta::{object_meta, NameRule};
use super::Report;
use crate::model::{ConfigMapSpec, SecretSpec, SecretType, SecretValue};
use crate::names;
use crate::path::FieldPath;

/// Kubernetes' limit on the data of one ConfigMap or Secret.
const MAX_DATA_BYTES: usize = 1024 * 1024;

pub(super) fn config_map(c: &ConfigMap, report: &mut Report<'_>) -> ConfigMapSpec {
    let meta = object_meta(&c.metadata, NameRule::Subdomain, report);
    let data = c.data.clone().unwrap_or_default();
    let binary_data: BTreeMap<String, Vec<u8>> =
        c.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    keys(&FieldPath::of(&["data"]), data.keys(), report);
    keys(&FieldPath::of(&["binaryData"]), binary_data.keys(), report);
    for key in binary_data.keys().filter(|k| data.contains_key(*k)) {
        report.invalid(
            &FieldPath::of(&["binaryData"]).key(key),
            "the key is also in data",
            "keep each key in one of data and binaryData",
        );
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + binary_data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    too_big(size, report);
    ConfigMapSpec { meta, data, binary_data, immutable: c.immutable.unwrap_or(false) }
}

pub(super) fn secret(s: &Secret, report: &mut Report<'_>) -> SecretSpec {
    let meta = object_meta(&s.metadata, NameRule::Subdomain, report);
    let secret_type = match s.type_.as_deref() {
        None | Some("") | Some("Opaque") => SecretType::Opaque,
        Some("kubernetes.io/tls") => SecretType::Tls,
        Some(other) => {
            report.invalid(
                &FieldPath::of(&["type"]),
                format!("secret type {other:?} is not supported by berth"),
                "use Opaque or kubernetes.io/tls",
            );
            SecretType::Opaque
        }
    };
    let mut data: BTreeMap<String, SecretValue> =
        s.data.iter().flatten().map(|(k, v)| (k.clone(), SecretValue::new(v.0.clone()))).collect();
    keys(&FieldPath::of(&["data"]), data.keys(), report);
    if let Some(plain) = &s.string_data {
        keys(&FieldPath::of(&["stringData"]), plain.keys(), report);
        // Kubernetes merges stringData over data.
        for (k, v) in plain {
            data.insert(k.clone(), SecretValue::new(v.clone().into_bytes()));
        }
    }
    if secret_type == SecretType::Tls {
        for key in ["tls.crt", "tls.key"] {
            if !data.contains_key(key) {
                report.invalid(
                    &FieldPath::of(&["data"]),
                    format!("a kubernetes.io/tls Secret needs the key {key}"),
                    format!("add {key} (base64 under data, or plain under stringData)"),
                );
            }
        }
    }
    too_big(data.iter().map(|(k, v)| k.len() + v.len()).sum(), report);
    SecretSpec { meta, secret_type, data, immutable: s.immutable.unwrap_or(false) }
}

fn keys<'k>(path: &FieldPath, keys: impl Iterator<Item = &'k String>, report: &mut Report<'_>) {
    for key in keys {
        if let Err(why) = names::config_key(key) {
            report.invalid(&path.key(key), why, "rename the key");
        }
    }
}

fn too_big(size: usize, report: &mut Report<'_>) {
    if size > MAX_DATA_BYTES {
        report.invalid(
            &FieldPath::root(),
            format!("the data takes {size} bytes, more than Kubernetes' limit of {MAX_DATA_BYTES}"),
            "split it over several objects",
        );
    }
}
