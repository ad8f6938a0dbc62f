//! The field walk: every key of the document must be in the allow-list of
//! its type. Keys outside it are a typo ("is not a field of Container") when
//! the Kubernetes type did not know them while decoding, otherwise a field
//! berth does not support. Values that declare nothing (null, `{}`, `[]`)
//! pass.

use std::collections::BTreeSet;

use super::Report;
use crate::error::ManifestError;
use crate::path::FieldPath;
use crate::schema::{self, Shape, TypeSchema};
use crate::yaml::{Node, Value};

pub(super) fn check(node: &Node, schema: &'static TypeSchema, unknown: &BTreeSet<FieldPath>, report: &mut Report<'_>) {
    walk(node, schema, &FieldPath::root(), unknown, report);
}

fn walk(
    node: &Node,
    schema: &'static TypeSchema,
    path: &FieldPath,
    unknown: &BTreeSet<FieldPath>,
    report: &mut Report<'_>,
) {
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (key, child) in entries {
        let child_path = path.field(key);
        match schema.field(key) {
            Some(spec) => match (spec.shape, &child.value) {
                (Shape::Ignored, _) if !child.is_empty_value() => report.warn(child_path, spec.note),
                (Shape::Object(t), Value::Map(_)) => walk(child, t, &child_path, unknown, report),
                (Shape::List(t), Value::Seq(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, t, &child_path.index(i), unknown, report);
                    }
                }
                _ => {}
            },
            None if child.is_empty_value() => {}
            None if unknown.contains(&child_path) => {
                let hint = match suggestion(key, schema) {
                    Some(s) => format!("did you mean {s}?"),
                    None if schema.fields.is_empty() => format!("{} takes no fields; write {{}}", schema.name),
                    None => format!(
                        "check the spelling; {} fields berth reads: {}",
                        schema.name,
                        schema.field_names().join(", ")
                    ),
                };
                report.push(ManifestError::UnknownField {
                    doc: report.source.clone(),
                    line: child.line,
                    path: child_path,
                    type_name: schema.name.to_string(),
                    hint,
                });
            }
            None => report.push(ManifestError::Unsupported {
                doc: report.source.clone(),
                line: child.line,
                path: child_path,
                hint: match schema::unsupported_hint(schema, key) {
                    Some(hint) => hint.to_string(),
                    None => {
                        format!("remove it; {} fields berth reads: {}", schema.name, schema.field_names().join(", "))
                    }
                },
            }),
        }
    }
}

/// The supported field closest to a misspelt one, if it is close.
fn suggestion(key: &str, schema: &TypeSchema) -> Option<&'static str> {
    // No field name is this long; the distance of a huge key costs its
    // length times every field's.
    if key.len() > 64 {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    schema
        .fields
        .iter()
        .map(|f| (distance(&lower, &f.name.to_ascii_lowercase()), f.name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_field_names() {
        assert_eq!(suggestion("imagePullPolice", &schema::CONTAINER), Some("imagePullPolicy"));
        assert_eq!(suggestion("contianers", &schema::POD_SPEC), Some("containers"));
        assert_eq!(suggestion("Replicas", &schema::DEPLOYMENT_SPEC), Some("replicas"));
        assert_eq!(suggestion("zzzz", &schema::CONTAINER), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
