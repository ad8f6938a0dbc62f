//! From decoded Kubernetes objects to berth's desired state.
//!
//! Two passes per document, both collecting every problem rather than
//! stopping at the first: the field walk (`fields.rs`) checks the document as written against
//! the allow-list in [`crate::schema`]; the per-kind converters check values
//! as Kubernetes validation does (names, labels, selectors, ports, probes,
//! quantities, references inside the object) while building the
//! [`crate::model`] value with defaults applied.

mod analysis;
mod config;
mod container;
mod deployment;
mod fields;
mod meta;
mod pod;
mod probe;
mod references;
mod rollout;
mod service;

pub use analysis::parse_duration;
pub use references::check_references;

use std::collections::BTreeMap;

use crate::error::{DocumentRef, ManifestError, ManifestErrors, MAX_PROBLEMS};
use crate::model::Object;
use crate::parse::{Document, Manifest};
use crate::path::{FieldPath, Segment};
use crate::yaml::{Node, Value};

/// Collects the problems of one document.
pub(crate) struct Report<'a> {
    source: &'a DocumentRef,
    node: &'a Node,
    errors: Vec<ManifestError>,
    /// Problems past [`MAX_PROBLEMS`]: counted, not located or kept.
    more: usize,
    warnings: Vec<Warning>,
}

impl<'a> Report<'a> {
    fn new(source: &'a DocumentRef, node: &'a Node) -> Self {
        Report { source, node, errors: Vec::new(), more: 0, warnings: Vec::new() }
    }

    /// Records a field that is kept but changes nothing on one host.
    fn warn(&mut self, path: FieldPath, why: &'static str) {
        if self.warnings.len() < MAX_PROBLEMS {
            let line = self.node.locate(&path).line;
            self.warnings.push(Warning { doc: self.source.clone(), line, path, why });
        }
    }

    /// Whether there is room for one more problem; counts it if not.
    fn room(&mut self) -> bool {
        if self.errors.len() < MAX_PROBLEMS {
            return true;
        }
        self.more += 1;
        false
    }

    /// Records `<doc>: <path>: <problem>; <fix>`.
    fn invalid(&mut self, path: &FieldPath, problem: impl Into<String>, fix: impl Into<String>) {
        if !self.room() {
            return;
        }
        self.errors.push(ManifestError::Invalid {
            doc: self.source.clone(),
            line: self.node.locate(path).line,
            path: path.clone(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn push(&mut self, error: ManifestError) {
        if self.room() {
            self.errors.push(error);
        }
    }

    /// Whether the document declares anything at `path` (a value that is
    /// not null, `[]` or `{}`), i.e. whether the field walk has looked at
    /// what is there.
    fn declares(&self, path: &FieldPath) -> bool {
        let mut node = self.node;
        for segment in path.segments() {
            let next = match (segment, &node.value) {
                (Segment::Field(k) | Segment::Key(k), Value::Map(_)) => node.get(k),
                (Segment::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        !node.is_empty_value()
    }

    fn line(&self, path: &FieldPath) -> usize {
        self.node.locate(path).line
    }

    fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks one decoded document and builds its desired state.
pub fn document(doc: &Document) -> Result<Object, Vec<ManifestError>> {
    document_warned(doc).map(|(object, _)| object)
}

/// [`document`], with the warnings about fields it keeps that change
/// nothing on one host.
pub fn document_warned(doc: &Document) -> Result<(Object, Vec<Warning>), Vec<ManifestError>> {
    let mut report = Report::new(&doc.source, &doc.node);
    fields::check(&doc.node, doc.manifest.schema(), &doc.unknown_fields, &mut report);
    let object = match &doc.manifest {
        Manifest::Deployment(d) => deployment::deployment(d, &mut report).map(Object::Deployment),
        Manifest::Service(s) => service::service(s, &mut report).map(Object::Service),
        Manifest::ConfigMap(c) => Some(Object::ConfigMap(config::config_map(c, &mut report))),
        Manifest::Secret(s) => Some(Object::Secret(config::secret(s, &mut report))),
        Manifest::Rollout(r) => rollout::rollout(r, &mut report).map(Object::Rollout),
        Manifest::AnalysisTemplate(a) => analysis::analysis_template(a, &mut report).map(Object::AnalysisTemplate),
    };
    match object {
        Some(object) if report.ok() => Ok((object, report.warnings)),
        _ => {
            let mut errors = report.errors;
            // Stable: errors on one line keep the order they were found in.
            errors.sort_by_key(ManifestError::line);
            if report.more > 0 {
                errors.push(ManifestError::More { doc: Some(doc.source.clone()), count: report.more });
            }
            Err(errors)
        }
    }
}

/// Parses, checks and normalises a whole input: every object, or every
/// problem found in it. Two documents declaring the same object are an
/// error. Pure; the same text always gives the same answer. References
/// between objects (a Rollout's AnalysisTemplates) are not checked here,
/// since they may have been applied before: see [`check_references`].
pub fn load(text: &str) -> Result<Vec<Object>, ManifestErrors> {
    Ok(load_documents(text)?.into_iter().map(|(object, _)| object).collect())
}

/// [`load`], keeping each object's document as written (as JSON, with
/// `v1 List` items spread out), which is what a store keeps and what
/// `get -o yaml` shows back.
pub fn load_documents(text: &str) -> Result<Documents, ManifestErrors> {
    load_documents_warned(text).map(|(objects, _)| objects)
}

/// A field Berth accepts and keeps but that changes nothing on one host
/// (`deployment/web: spec.template.spec.nodeSelector has no effect on one
/// host (one host: every pod runs on it); kept as written`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub doc: DocumentRef,
    /// Where the field is (1-based; 0 when unknown).
    pub line: usize,
    pub path: FieldPath,
    pub why: &'static str,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} has no effect on one host ({}); kept as written", self.doc, self.path, self.why)
    }
}

/// Objects with their documents as written (JSON).
pub type Documents = Vec<(Object, serde_json::Value)>;

/// [`load_documents`], with the [`Warning`]s of every object.
pub fn load_documents_warned(text: &str) -> Result<(Documents, Vec<Warning>), ManifestErrors> {
    let mut warnings = Vec::new();
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<crate::model::ObjectKey, DocumentRef> = BTreeMap::new();
    for doc in crate::parse::parse_each(text)? {
        let doc = match doc {
            Ok(doc) => doc,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match document_warned(&doc) {
            Ok((object, mut warned)) => {
                warnings.append(&mut warned);
                let key = object.key();
                if let Some(first) = seen.get(&key) {
                    errors.push(ManifestError::Duplicate {
                        doc: doc.source.clone(),
                        line: doc.node.line,
                        object: key.to_string(),
                        first: first.clone(),
                    });
                } else {
                    seen.insert(key, doc.source.clone());
                    objects.push((object, doc.node.to_json()));
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok((objects, warnings))
    } else {
        Err(ManifestErrors::capped(errors))
    }
}

/// A non-negative `i32`/`i64` field as `u32`, or an error.
fn non_negative(report: &mut Report<'_>, path: &FieldPath, value: Option<i64>, default: u32, min: i64) -> u32 {
    match value {
        None => default,
        Some(v) if v >= min && v <= i64::from(u32::MAX) => v as u32,
        Some(v) => {
            report.invalid(path, format!("must be {min} or more, got {v}"), format!("set it to {min} or more"));
            default
        }
    }
}

#[cfg(test)]
mod tests;
