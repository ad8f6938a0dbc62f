//! Field paths inside a manifest, written the way Kubernetes writes them:
//! `spec.template.spec.containers[0].ports[1].name`, with keys of free-form
//! maps in brackets: `metadata.labels[app.kubernetes.io/name]`.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A field of an object (`spec`).
    Field(String),
    /// An element of a list (`[0]`).
    Index(usize),
    /// A key of a free-form map such as labels or ConfigMap data (`[key]`).
    Key(String),
}

/// A path from a document's root to one of its values. The empty path is
/// the document itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path of object fields, `FieldPath::of(&["spec", "replicas"])`.
    pub fn of(fields: &[&str]) -> Self {
        Self(fields.iter().map(|f| Segment::Field((*f).to_string())).collect())
    }

    /// This path extended by an object field.
    pub fn field(&self, name: &str) -> Self {
        self.with(Segment::Field(name.to_string()))
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    /// This path extended by a key of a free-form map.
    pub fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_string()))
    }

    /// This path extended by one segment.
    pub fn with(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last segment's name, if it is a field.
    pub fn last_field(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Field(name)) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => f.write_str(&shorten(name))?,
                Segment::Field(name) => write!(f, ".{}", shorten(name))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => write!(f, "[{}]", shorten(key))?,
            }
        }
        Ok(())
    }
}

/// Text from the input as a message shows it: cut short past 64
/// characters, so a hostile key or name cannot make every line of an
/// answer megabytes long.
pub fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text.into();
    }
    let head: String = text.chars().take(40).collect();
    format!("{head}…({} bytes)", text.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_shortened() {
        let long = "k".repeat(1000);
        let p = FieldPath::of(&["data"]).key(&long);
        assert_eq!(p.to_string(), format!("data[{}…(1000 bytes)]", "k".repeat(40)));
    }

    #[test]
    fn renders_like_kubernetes() {
        let p = FieldPath::of(&["spec", "template", "spec"]).field("containers").index(0).field("ports").index(2);
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].ports[2]");
        assert_eq!(
            FieldPath::of(&["metadata", "labels"]).key("app.kubernetes.io/name").to_string(),
            "metadata.labels[app.kubernetes.io/name]"
        );
        assert_eq!(FieldPath::root().to_string(), "(document)");
        assert_eq!(FieldPath::of(&["a"]).index(1).index(2).to_string(), "a[1][2]");
    }
}
