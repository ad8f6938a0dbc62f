//! Errors a person sees when a manifest is refused.
//!
//! Every message reads `<document>: <field.path>: <what is wrong>; <what to
//! do>`, where the document is `deployment/web` once the kind and name are
//! known and `document 3` (counted from 1 in the stream) before. Each error
//! also knows the line it is about ([`ManifestError::line`]) so a caller that
//! knows the file name can prefix `app.yaml:14:`.

use std::fmt;

use crate::model::ObjectKey;
use crate::path::{shorten, FieldPath};
use crate::yaml::YamlError;

/// Which document of a stream an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentRef {
    /// Position in the YAML stream, from 1, empty documents included.
    pub index: usize,
    /// Position inside a `v1 List` document's `items`, from 0.
    pub item: Option<usize>,
    /// The `kind`, once known.
    pub kind: Option<String>,
    /// `metadata.name`, once known.
    pub name: Option<String>,
}

impl DocumentRef {
    /// Where the document is, without its name: `document 2` or
    /// `document 2 items[0]`.
    pub fn position(&self) -> String {
        match self.item {
            Some(item) => format!("document {} items[{item}]", self.index),
            None => format!("document {}", self.index),
        }
    }
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) if !name.is_empty() => {
                write!(f, "{}/{}", shorten(&kind.to_ascii_lowercase()), shorten(name))
            }
            _ => {
                write!(f, "document {}", self.index)?;
                if let Some(item) = self.item {
                    write!(f, " items[{item}]")?;
                }
                if let Some(kind) = &self.kind {
                    write!(f, " ({})", shorten(kind))?;
                }
                Ok(())
            }
        }
    }
}

/// One reason a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Yaml(#[from] YamlError),

    #[error("{doc}: {reason}; {fix}")]
    NotAnObject { doc: DocumentRef, line: usize, reason: String, fix: String },

    #[error("{doc}: {what} is not a kind berth reads; berth reads {supported}")]
    UnsupportedKind { doc: DocumentRef, line: usize, what: String, supported: String },

    #[error("{doc}: {path}: {reason}; {fix}")]
    Decode { doc: DocumentRef, line: usize, path: FieldPath, reason: String, fix: String },

    #[error("{doc}: {path} is not a field of {type_name}; {hint}")]
    UnknownField { doc: DocumentRef, line: usize, path: FieldPath, type_name: String, hint: String },

    #[error("{doc}: {path} is not supported by berth; {hint}")]
    Unsupported { doc: DocumentRef, line: usize, path: FieldPath, hint: String },

    #[error("{doc}: {path}: {problem}; {fix}")]
    Invalid { doc: DocumentRef, line: usize, path: FieldPath, problem: String, fix: String },

    #[error("{object}: declared twice, in {} and {}; declare each object once", .first.position(), .doc.position())]
    Duplicate { doc: DocumentRef, line: usize, object: String, first: DocumentRef },

    /// An object names another that is missing or does not fit it, found by
    /// [`crate::validate::check_references`] over loaded objects (so
    /// without a line).
    #[error("{object}: {path}: {problem}; {fix}")]
    Reference { object: ObjectKey, path: FieldPath, problem: String, fix: String },

    /// Stands for the problems past [`MAX_PROBLEMS`], which are counted
    /// but neither located nor shown: a hostile input cannot make the
    /// answer (or the work of building it) grow with its size.
    #[error("{}{count} more problems not shown; fix the ones above and try again", .doc.as_ref().map(|d| format!("{d}: ")).unwrap_or_default())]
    More { doc: Option<DocumentRef>, count: usize },
}

/// The most problems reported for one document, and for one input.
pub const MAX_PROBLEMS: usize = 100;

impl ManifestError {
    /// The line of the input this error is about (from 1); 0 for
    /// [`ManifestError::Reference`], which is about loaded objects.
    pub fn line(&self) -> usize {
        match self {
            ManifestError::Yaml(e) => e.line,
            ManifestError::NotAnObject { line, .. }
            | ManifestError::UnsupportedKind { line, .. }
            | ManifestError::Decode { line, .. }
            | ManifestError::UnknownField { line, .. }
            | ManifestError::Unsupported { line, .. }
            | ManifestError::Invalid { line, .. }
            | ManifestError::Duplicate { line, .. } => *line,
            ManifestError::Reference { .. } | ManifestError::More { .. } => 0,
        }
    }

    /// The field the error is about, if it is about one.
    pub fn path(&self) -> Option<&FieldPath> {
        match self {
            ManifestError::Decode { path, .. }
            | ManifestError::UnknownField { path, .. }
            | ManifestError::Unsupported { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::Reference { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Everything wrong with one input, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl ManifestErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ManifestError> {
        self.0.iter()
    }

    /// The messages, one per error.
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl ManifestErrors {
    /// At most [`MAX_PROBLEMS`] errors, the rest summed up in one.
    pub fn capped(mut errors: Vec<ManifestError>) -> Self {
        if errors.len() > MAX_PROBLEMS {
            let dropped: Vec<_> = errors.drain(MAX_PROBLEMS..).collect();
            if let [more @ ManifestError::More { .. }] = &dropped[..] {
                errors.push(more.clone());
            } else {
                let count = dropped
                    .iter()
                    .map(|e| match e {
                        ManifestError::More { count, .. } => *count,
                        _ => 1,
                    })
                    .sum();
                errors.push(ManifestError::More { doc: None, count });
            }
        }
        ManifestErrors(errors)
    }
}

impl From<ManifestError> for ManifestErrors {
    fn from(e: ManifestError) -> Self {
        ManifestErrors(vec![e])
    }
}

fn lines(errors: &[ManifestError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_named_by_kind_and_name_when_known() {
        let mut d = DocumentRef { index: 3, ..Default::default() };
        assert_eq!(d.to_string(), "document 3");
        d.kind = Some("ConfigMap".into());
        assert_eq!(d.to_string(), "document 3 (ConfigMap)");
        d.item = Some(1);
        assert_eq!(d.to_string(), "document 3 items[1] (ConfigMap)");
        d.name = Some("settings".into());
        assert_eq!(d.to_string(), "configmap/settings");
    }
}
