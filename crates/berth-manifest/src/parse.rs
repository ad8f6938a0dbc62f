//! From text to typed Kubernetes objects: the YAML stream is split into
//! documents (empty ones skipped, `v1 List` items spread out), each document
//! is routed by `apiVersion` + `kind` and decoded into its `k8s-openapi`
//! type. Decoding records every field the Kubernetes type does not know, so
//! the field check can tell a typo from a field berth does not support.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use serde::de::DeserializeOwned;

use crate::argo::{AnalysisTemplate, Rollout};
use crate::error::{DocumentRef, ManifestError, ManifestErrors, MAX_PROBLEMS};
use crate::path::FieldPath;
use crate::schema::{self, TypeSchema};
use crate::yaml::{self, Node, Value};

/// What berth reads, for messages.
pub const SUPPORTED_KINDS: &str = "apps/v1 Deployment, v1 Service, v1 ConfigMap, v1 Secret, argoproj.io/v1alpha1 Rollout and argoproj.io/v1alpha1 AnalysisTemplate (also inside a v1 List)";

/// The apiVersion of Argo Rollouts' kinds.
pub const ARGO_API_VERSION: &str = "argoproj.io/v1alpha1";

/// A document decoded into its Kubernetes type.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    Rollout(Box<Rollout>),
    AnalysisTemplate(Box<AnalysisTemplate>),
}

/// One object of the input, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: DocumentRef,
    /// The document as written, with positions.
    pub node: Node,
    pub manifest: Manifest,
    /// Fields the Kubernetes type does not know (typos, or fields of newer
    /// Kubernetes versions).
    pub unknown_fields: BTreeSet<FieldPath>,
}

impl Manifest {
    pub fn schema(&self) -> &'static TypeSchema {
        match self {
            Manifest::Deployment(_) => &schema::DEPLOYMENT,
            Manifest::Service(_) => &schema::SERVICE,
            Manifest::ConfigMap(_) => &schema::CONFIG_MAP,
            Manifest::Secret(_) => &schema::SECRET,
            Manifest::Rollout(_) => &schema::ROLLOUT,
            Manifest::AnalysisTemplate(_) => &schema::ANALYSIS_TEMPLATE,
        }
    }
}

/// Splits and decodes a multi-document YAML stream. Reports every document
/// that cannot be decoded, or the first YAML syntax error (after which
/// nothing more of the stream can be read).
pub fn parse(text: &str) -> Result<Vec<Document>, ManifestErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for result in parse_each(text)? {
        match result {
            Ok(d) => out.push(d),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ManifestErrors::capped(errors))
    }
}

/// Each document decoded on its own, so one bad document does not hide
/// the problems of the others. Fails as a whole only on a YAML syntax error.
/// Past [`MAX_PROBLEMS`] failed documents the rest are only counted, in
/// one [`ManifestError::More`] at the end.
pub fn parse_each(text: &str) -> Result<Vec<Result<Document, ManifestError>>, ManifestError> {
    let documents = yaml::parse_stream(text)?;
    let mut out = Vec::new();
    let (mut failed, mut more) = (0, 0);
    let mut add = |result: Result<Document, ManifestError>, out: &mut Vec<_>| {
        if result.is_err() {
            failed += 1;
            if failed > MAX_PROBLEMS {
                more += 1;
                return;
            }
        }
        out.push(result);
    };
    for doc in documents {
        let mut errors = Vec::new();
        let items = spread_list(doc.index, doc.root, &mut errors);
        for e in errors {
            add(Err(e), &mut out);
        }
        for (item, node) in items {
            add(decode_document(doc.index, item, node), &mut out);
        }
    }
    if more > 0 {
        out.push(Err(ManifestError::More { doc: None, count: more }));
    }
    Ok(out)
}

/// A `v1 List` becomes its items; anything else stays one document.
fn spread_list(index: usize, root: Node, errors: &mut Vec<ManifestError>) -> Vec<(Option<usize>, Node)> {
    if root.get_str("kind") != Some("List") {
        return vec![(None, root)];
    }
    let source = DocumentRef { index, kind: Some("List".into()), ..Default::default() };
    let mut bad = |path: &str, reason: &str, fix: &str| {
        let path = FieldPath::of(&[path]);
        errors.push(ManifestError::Invalid {
            doc: source.clone(),
            line: root.locate(&path).line,
            path,
            problem: reason.into(),
            fix: fix.into(),
        });
    };
    if root.get_str("apiVersion") != Some("v1") {
        bad("apiVersion", "a List must have apiVersion v1", "set apiVersion: v1");
        return vec![];
    }
    if let Value::Map(entries) = &root.value {
        for (key, value) in entries {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "items" | "metadata") && !value.is_empty_value() {
                bad(key, "is not a field of a List", "a List holds only apiVersion, kind, metadata and items");
            }
        }
    }
    match root.get("items").map(|n| &n.value) {
        Some(Value::Seq(items)) => {
            let items: Vec<_> = items.iter().cloned().enumerate().map(|(i, n)| (Some(i), n)).collect();
            for (i, item) in &items {
                if item.get_str("kind") == Some("List") {
                    bad("items", &format!("items[{}] is a List inside a List", i.unwrap_or(0)), "flatten the lists");
                }
            }
            items.into_iter().filter(|(_, n)| n.get_str("kind") != Some("List")).collect()
        }
        None => vec![],
        Some(_) => {
            bad("items", "must be a list of objects", "write items as a YAML list");
            vec![]
        }
    }
}

fn decode_document(index: usize, item: Option<usize>, node: Node) -> Result<Document, ManifestError> {
    let mut source = DocumentRef { index, item, kind: None, name: None };
    let shape = match &node.value {
        Value::Map(_) => None,
        Value::Seq(_) => Some("a list"),
        _ => Some("a single value"),
    };
    if let Some(shape) = shape {
        return Err(ManifestError::NotAnObject {
            doc: source,
            line: node.line,
            reason: format!("a manifest must be a mapping with apiVersion and kind, this is {shape}"),
            fix: "write an object such as `apiVersion: v1` / `kind: Service` / ...".into(),
        });
    }
    source.kind = node.get_str("kind").map(str::to_string);
    source.name = node.get("metadata").and_then(|m| m.get_str("name")).map(str::to_string);
    let api_version = node.get_str("apiVersion");
    let Some(kind) = node.get_str("kind") else {
        return Err(ManifestError::NotAnObject {
            doc: source,
            line: node.line,
            reason: "kind is missing".into(),
            fix: "add kind: Deployment, Service, ConfigMap, Secret, Rollout or AnalysisTemplate".into(),
        });
    };
    let expected = match kind {
        "Deployment" => Some("apps/v1"),
        "Service" | "ConfigMap" | "Secret" => Some("v1"),
        "Rollout" | "AnalysisTemplate" => Some(ARGO_API_VERSION),
        _ => None,
    };
    let Some(api_version) = api_version else {
        return Err(ManifestError::NotAnObject {
            doc: source,
            line: node.line,
            reason: "apiVersion is missing".into(),
            fix: match expected {
                Some(v) => format!("add apiVersion: {v}"),
                None => format!("add apiVersion; berth reads {SUPPORTED_KINDS}"),
            },
        });
    };
    let line = node.get("kind").map_or(node.line, |n| n.line);
    let manifest_and_unknown = match (api_version, kind) {
        ("apps/v1", "Deployment") => decode::<Deployment>(&node, &schema::DEPLOYMENT, &source)
            .map(|(d, u)| (Manifest::Deployment(Box::new(d)), u)),
        ("v1", "Service") => {
            decode::<Service>(&node, &schema::SERVICE, &source).map(|(s, u)| (Manifest::Service(Box::new(s)), u))
        }
        ("v1", "ConfigMap") => {
            decode::<ConfigMap>(&node, &schema::CONFIG_MAP, &source).map(|(c, u)| (Manifest::ConfigMap(Box::new(c)), u))
        }
        ("v1", "Secret") => {
            decode::<Secret>(&node, &schema::SECRET, &source).map(|(s, u)| (Manifest::Secret(Box::new(s)), u))
        }
        (ARGO_API_VERSION, "Rollout") => {
            decode::<Rollout>(&node, &schema::ROLLOUT, &source).map(|(r, u)| (Manifest::Rollout(Box::new(r)), u))
        }
        (ARGO_API_VERSION, "AnalysisTemplate") => {
            decode::<AnalysisTemplate>(&node, &schema::ANALYSIS_TEMPLATE, &source)
                .map(|(a, u)| (Manifest::AnalysisTemplate(Box::new(a)), u))
        }
        (v, k) => {
            let what = match expected {
                Some(e) => format!("{k} in apiVersion {v} (use apiVersion {e})"),
                None => format!("{v} {k}"),
            };
            return Err(ManifestError::UnsupportedKind { doc: source, line, what, supported: SUPPORTED_KINDS.into() });
        }
    };
    let (manifest, unknown_fields) = manifest_and_unknown?;
    Ok(Document { source, node, manifest, unknown_fields })
}

fn decode<T: DeserializeOwned>(
    node: &Node,
    schema: &'static TypeSchema,
    source: &DocumentRef,
) -> Result<(T, BTreeSet<FieldPath>), ManifestError> {
    let mut unknown = BTreeSet::new();
    let result = {
        let mut record = |path: serde_ignored::Path<'_>| {
            unknown.insert(ignored_path(&path));
        };
        let de = serde_ignored::Deserializer::new(node.to_json(), &mut record);
        serde_path_to_error::deserialize::<_, T>(de)
    };
    match result {
        Ok(value) => Ok((value, unknown)),
        Err(e) => {
            let mut path = FieldPath::root();
            for segment in e.path().iter() {
                path = match segment {
                    serde_path_to_error::Segment::Seq { index } => path.index(*index),
                    serde_path_to_error::Segment::Map { key } => path.field(key),
                    serde_path_to_error::Segment::Enum { variant } => path.field(variant),
                    serde_path_to_error::Segment::Unknown => path,
                };
            }
            let path = schema::refine(schema, &path);
            let at = node.locate(&path);
            let secret = std::ptr::eq(schema, &schema::SECRET);
            let mut reason = e.into_inner().to_string();
            if is_base64_field(&path) && !reason.starts_with("invalid type") {
                reason = if secret {
                    // base64's own message names the offending byte.
                    "the value is not valid base64".to_string()
                } else {
                    format!("the value is not valid base64 ({})", reason.trim_end_matches('.'))
                };
            }
            let mut fix = decode_fix(&reason, at, &path);
            if secret {
                (reason, fix) = redact_secret(node, reason, fix);
            }
            Err(ManifestError::Decode { doc: source.clone(), line: at.line, path, reason, fix })
        }
    }
}

fn decode_fix(reason: &str, at: &Node, path: &FieldPath) -> String {
    if reason.starts_with("missing field") {
        return "add it".into();
    }
    if is_base64_field(path) && !reason.starts_with("invalid type") {
        return "encode it with base64, or put the plain text under stringData (Secret) or data (ConfigMap)".into();
    }
    match (&at.plain, &at.value) {
        (Some(text), Value::Bool(_)) => {
            format!("quote it (\"{text}\"): unquoted, YAML reads yes/no/on/off/true/false as booleans")
        }
        (Some(text), Value::Int(_) | Value::Float(_)) if reason.contains("string") => {
            format!("quote it (\"{text}\"): unquoted, YAML reads it as a number")
        }
        _ => "give a value of the type Kubernetes expects here".into(),
    }
}

/// A Secret's values never appear in an error: serde's quote of the value
/// it could not take (`invalid type: string "hunter2", expected ...`) is cut
/// to its kind wherever it is, the fix does not repeat the text, and a
/// message that still holds a value of `data` or `stringData` is replaced
/// whole.
fn redact_secret(node: &Node, reason: String, fix: String) -> (String, String) {
    let mut reason = without_quoted_value(&reason);
    let mut fix = fix;
    if fix.starts_with("quote it (") {
        fix = match fix.split_once("): ") {
            Some((_, why)) => format!("quote it: {why}"),
            None => "quote it".into(),
        };
    }
    let mut values = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(n) = node.get(field) {
            scalar_texts(n, &mut values);
        }
    }
    let leaks = |text: &str| {
        values.iter().any(|v| {
            let escaped = format!("{v:?}");
            text.contains(v.as_str()) || text.contains(&escaped[1..escaped.len() - 1])
        })
    };
    if leaks(&reason) {
        reason =
            "the value cannot be decoded as Kubernetes expects (not shown: Secret values are never repeated)".into();
    }
    if leaks(&fix) {
        fix = "give a value of the type Kubernetes expects here".into();
    }
    (reason, fix)
}

/// `invalid type: string "x", expected y` → `invalid type: string, expected y`.
fn without_quoted_value(reason: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((unexpected, expected)) = reason.strip_prefix(prefix).and_then(|r| r.split_once(", expected ")) {
            let kind = unexpected.split(['`', '"']).next().unwrap_or_default().trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    reason.to_string()
}

/// Every scalar value under `node` (not its keys) long enough to tell
/// apart from the words of a message.
fn scalar_texts(node: &Node, out: &mut Vec<String>) {
    const SHORTEST: usize = 4;
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|n| scalar_texts(n, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, n)| scalar_texts(n, out)),
        Value::Str(s) if s.len() >= SHORTEST => out.push(s.clone()),
        Value::Int(i) if i.to_string().len() >= SHORTEST => out.push(i.to_string()),
        _ => {}
    }
    if let Some(plain) = node.plain.as_ref().filter(|p| p.len() >= SHORTEST) {
        out.push(plain.clone());
    }
}

/// Secret `data` and ConfigMap `binaryData` values are base64 in the
/// manifest (a ConfigMap's `data` holds strings, so never fails this way).
fn is_base64_field(path: &FieldPath) -> bool {
    matches!(path.segments().first(), Some(crate::path::Segment::Field(f)) if f == "data" || f == "binaryData")
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> FieldPath {
    match path {
        serde_ignored::Path::Root => FieldPath::root(),
        serde_ignored::Path::Seq { parent, index } => ignored_path(parent).index(*index),
        serde_ignored::Path::Map { parent, key } => ignored_path(parent).field(key),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

#[cfg(test)]
mod tests;
