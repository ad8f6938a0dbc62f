//! A YAML stream read into position-carrying trees, one per document.
//!
//! Built on `saphyr-parser` events rather than a ready-made loader so that
//! every node keeps its line and column, duplicate keys are rejected (as
//! Kubernetes' strict decoding does), merge keys (`<<`) work, and plain
//! scalars resolve the way Kubernetes' own YAML reader (go-yaml v2, YAML 1.1)
//! resolves them: unquoted `yes`/`no`/`on`/`off` are booleans and `0644` is
//! octal. A manifest that means one thing to `kubectl` means the same here.
//! Keys always keep their source text.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::path::{FieldPath, Segment};

/// Aliases are expanded; this bounds how much (a "billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

/// A value with the position where it starts (line and column from 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
    /// The source text of a plain scalar that resolved to something other
    /// than a string (`yes`, `0644`, `~`), for error hints.
    pub plain: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// One document of a stream; `index` counts every document from 1, empty
/// ones included, so it matches what a person counts between `---` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDocument {
    pub index: usize,
    pub root: Node,
}

/// A YAML syntax error. Parsing stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {document}: invalid YAML at line {line}, column {column}: {reason}")]
pub struct YamlError {
    pub document: usize,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// Reads every document of `text`, skipping the empty ones (`---` alone,
/// comments only).
pub fn parse_stream(text: &str) -> Result<Vec<YamlDocument>, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => builder.on_event(event, span)?,
            Err(e) => {
                return Err(YamlError {
                    document: builder.document.max(1),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    reason: e.info().to_string(),
                })
            }
        }
    }
    Ok(builder.documents)
}

enum Frame {
    Seq { start: Span, anchor: usize, items: Vec<Node> },
    Map { start: Span, anchor: usize, entries: Vec<(String, Node)>, key: Option<(String, Span)>, merges: Vec<Node> },
}

#[derive(Default)]
struct Builder {
    document: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    documents: Vec<YamlDocument>,
}

impl Builder {
    fn error(&self, span: Span, reason: impl Into<String>) -> YamlError {
        YamlError {
            document: self.document.max(1),
            line: span.start.line(),
            column: span.start.col() + 1,
            reason: reason.into(),
        }
    }

    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart(_) => {
                self.document += 1;
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(&text, style, tag.as_deref(), span)?;
                self.complete(node, anchor, span)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| self.error(span, "unknown alias"))?;
                self.count(&node, span)?;
                self.complete(node, 0, span)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { start: span, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { start: span, anchor, entries: Vec::new(), key: None, merges: Vec::new() })
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { start, anchor, items }) = self.stack.pop() {
                    self.complete(node(Value::Seq(items), start), anchor, start)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { start, anchor, mut entries, merges, .. }) = self.stack.pop() {
                    for source in merges {
                        merge_into(&mut entries, source, |s| self.error(s, MERGE_SHAPE))?;
                    }
                    self.complete(node(Value::Map(entries), start), anchor, start)?;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn count(&mut self, node: &Node, span: Span) -> Result<(), YamlError> {
        self.nodes += size(node);
        if self.nodes > MAX_NODES {
            return Err(self.error(span, format!("more than {MAX_NODES} values after expanding aliases")));
        }
        Ok(())
    }

    fn scalar(&self, text: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Result<Node, YamlError> {
        let plain = style == ScalarStyle::Plain;
        let value = match tag {
            Some(tag) if tag.is_yaml_core_schema() => match tag.suffix.as_str() {
                "str" | "binary" => Value::Str(text.to_string()),
                "null" | "bool" | "int" | "float" => {
                    let value = resolve(text).map_err(|r| self.error(span, r))?;
                    let matches = matches!(
                        (tag.suffix.as_str(), &value),
                        ("null", Value::Null)
                            | ("bool", Value::Bool(_))
                            | ("int", Value::Int(_))
                            | ("float", Value::Float(_))
                    ) || (tag.suffix == "float" && matches!(value, Value::Int(_)));
                    if !matches {
                        return Err(self.error(span, format!("{text:?} is not a valid !!{}", tag.suffix)));
                    }
                    match value {
                        Value::Int(i) if tag.suffix == "float" => Value::Float(i as f64),
                        v => v,
                    }
                }
                other => return Err(self.error(span, format!("the YAML tag !!{other} is not supported here"))),
            },
            Some(tag) => return Err(self.error(span, format!("the YAML tag {tag} is not supported; remove it"))),
            None if plain => resolve(text).map_err(|r| self.error(span, r))?,
            None => Value::Str(text.to_string()),
        };
        let mut n = node(value, span);
        if plain && !matches!(n.value, Value::Str(_)) {
            n.plain = Some(text.to_string());
        }
        Ok(n)
    }

    /// Attaches a finished node to its parent (or ends the document).
    fn complete(&mut self, node: Node, anchor: usize, span: Span) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(span, format!("more than {MAX_NODES} values after expanding aliases")));
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let document = self.document.max(1);
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.documents.push(YamlDocument { index: document, root: node });
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, merges, .. }) => match key.take() {
                None => {
                    let text = match node.value {
                        Value::Str(s) => s,
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(self.error(span, "a mapping key must be a plain value, not a list or mapping"))
                        }
                        _ => node.plain.unwrap_or_default(),
                    };
                    *key = Some((text, span));
                }
                Some((k, key_span)) if k == "<<" => {
                    if !matches!(node.value, Value::Map(_) | Value::Seq(_)) {
                        return Err(self.error(key_span, MERGE_SHAPE));
                    }
                    merges.push(node);
                }
                Some((k, key_span)) => {
                    if let Some((_, first)) = entries.iter().find(|(existing, _)| *existing == k) {
                        let line = first.line;
                        return Err(self.error(
                            key_span,
                            format!("duplicate key {k:?} (first given on line {line}); give each key once"),
                        ));
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

const MERGE_SHAPE: &str = "a merge key (<<) needs a mapping or a list of mappings";

/// Adds the keys of a merge source that the mapping does not set itself;
/// in a list of sources the earlier ones win, as YAML 1.1 specifies.
fn merge_into(
    entries: &mut Vec<(String, Node)>,
    source: Node,
    error: impl Fn(Span) -> YamlError,
) -> Result<(), YamlError> {
    let sources = match source.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.value {
                    Value::Map(m) => maps.push(m),
                    _ => return Err(error(span_at(item.line, item.column))),
                }
            }
            maps
        }
        _ => return Err(error(span_at(source.line, source.column))),
    };
    for map in sources {
        for (k, v) in map {
            if !entries.iter().any(|(existing, _)| *existing == k) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

fn span_at(line: usize, column: usize) -> Span {
    let m = saphyr_parser::Marker::new(0, line, column.saturating_sub(1));
    Span::new(m, m)
}

fn node(value: Value, span: Span) -> Node {
    Node { value, line: span.start.line(), column: span.start.col() + 1, plain: None }
}

fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| size(v)).sum(),
        _ => 0,
    }
}

/// Resolves a plain scalar as go-yaml v2 does (YAML 1.1 flavour).
fn resolve(text: &str) -> Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false))
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN"
        | ".NAN" => return Err(format!("{text} cannot be represented in a manifest; quote it if it is meant as text")),
        _ => {}
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Ok(Value::Str(text.to_string()));
    }
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = parse_int(&cleaned) {
        return Ok(Value::Int(i));
    }
    if is_float(&cleaned) {
        if let Ok(f) = cleaned.parse::<f64>() {
            if f.is_finite() {
                return Ok(Value::Float(f));
            }
        }
    }
    Ok(Value::Str(text.to_string()))
}

fn parse_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

impl Node {
    /// The value as JSON, the form the Kubernetes types are decoded from.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// The value of a field of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of a field, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key).map(|n| &n.value) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The deepest node on `path` (the node itself when nothing matches), to
    /// tell a person which line an error is about.
    pub fn locate(&self, path: &FieldPath) -> &Node {
        let mut current = self;
        for segment in path.segments() {
            let next = match (segment, &current.value) {
                (Segment::Field(k) | Segment::Key(k), Value::Map(_)) => current.get(k),
                (Segment::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => current = n,
                None => break,
            }
        }
        current
    }

    /// True for values that declare nothing: null, `[]`, and mappings
    /// whose values all declare nothing (`{}`, `{loadBalancer: {}}`).
    pub fn is_empty_value(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Seq(items) => items.is_empty(),
            Value::Map(entries) => entries.iter().all(|(_, v)| v.is_empty_value()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
