//! A YAML stream read into position-carrying trees, one per document.
//!
//! Built on `saphyr-parser` events rather than a ready-made loader so that
//! every node keeps its line and column, duplicate keys are rejected (as
//! Kubernetes' strict decoding does), merge keys (`<<`) work, and plain
//! scalars resolve the way Kubernetes' own YAML reader (go-yaml v2, YAML 1.1)
//! resolves them: unquoted `yes`/`no`/`on`/`off` are booleans and `0644` is
//! octal. A manifest that means one thing to `kubectl` means the same here.
//! Keys always keep their source text.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::path::{FieldPath, Segment};

/// How much one input may build. Every bound is checked before the
/// allocation it guards: an alias is charged the full size of what it
/// names before that is copied, and a list or mapping is refused before it
/// nests one level too deep. [`Limits::BERTH`] are berth's; smaller ones
/// make tests fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Values (scalars, keys, lists and mappings) after aliases are expanded.
    pub nodes: usize,
    /// Bytes of scalar text (keys and values) after aliases are expanded;
    /// an anchored value counts once more, for the copy kept for its aliases.
    pub bytes: usize,
    /// Lists and mappings inside one another.
    pub depth: usize,
}

/// Values per input (a "billion laughs" guard together with the bytes).
/// A Kubernetes object holds hundreds to a few thousand values; each costs
/// a few hundred bytes across the tree, its JSON and its typed form
/// (measured: 1,000,000 tiny values peaked the daemon near 300 MiB), so
/// this bounds one parse near 60 MiB.
pub const MAX_NODES: usize = 200_000;
/// Bytes of text per input once aliases are expanded: ten times what the
/// Kubernetes API server takes in one request (3 MiB; etcd stores at most
/// 1.5 MiB per object), and small enough that reading, decoding and
/// validating an input at the bound peaks near 4 times this in memory
/// (measured: about 110 MiB of daemon RSS).
pub const MAX_EXPANDED_BYTES: usize = 32 << 20;
/// Nesting depth: Kubernetes objects nest about 15 levels; serde_json and
/// serde_yaml stop at 128, so whatever is read here can be stored as JSON
/// and read back. Every walker of the tree (conversion, validation, drop)
/// recurses at most this deep.
pub const MAX_DEPTH: usize = 100;

impl Limits {
    pub const BERTH: Limits = Limits { nodes: MAX_NODES, bytes: MAX_EXPANDED_BYTES, depth: MAX_DEPTH };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::BERTH
    }
}

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

/// A YAML syntax error, or an input past [`Limits`]. Parsing stops at the
/// first one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {document}: invalid YAML at line {line}, column {column}: {reason}")]
pub struct YamlError {
    pub document: usize,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// Reads every document of `text`, skipping the empty ones (`---` alone,
/// comments only), within berth's [`Limits`].
pub fn parse_stream(text: &str) -> Result<Vec<YamlDocument>, YamlError> {
    parse_stream_with(text, Limits::BERTH)
}

/// [`parse_stream`] within other limits.
pub fn parse_stream_with(text: &str, limits: Limits) -> Result<Vec<YamlDocument>, YamlError> {
    let mut builder = Builder { limits, ..Builder::default() };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => builder.on_event(event, span)?,
            Err(e) => {
                let reason = match e.info() {
                    // The scanner's own bound: 255 flow levels.
                    "recursion limit exceeded" => too_deep(limits.depth),
                    other => other.to_string(),
                };
                return Err(YamlError {
                    document: builder.document.max(1),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    reason,
                });
            }
        }
    }
    Ok(builder.documents)
}

/// What a finished node costs: values and text bytes in it, and how many
/// lists and mappings deep it goes (0 for a scalar).
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
    height: usize,
}

impl Cost {
    fn add(&mut self, child: Cost) {
        self.nodes += child.nodes;
        self.bytes += child.bytes;
        self.height = self.height.max(child.height);
    }
}

enum Frame {
    Seq {
        start: Span,
        anchor: usize,
        items: Vec<Node>,
        cost: Cost,
    },
    Map {
        start: Span,
        anchor: usize,
        entries: Vec<(String, Node)>,
        /// The keys of `entries`, so a mapping of n keys is checked for
        /// duplicates in O(n), not O(n²).
        keys: HashSet<String>,
        key: Option<(String, Span)>,
        merges: Vec<Node>,
        cost: Cost,
    },
}

#[derive(Default)]
struct Builder {
    limits: Limits,
    document: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, Cost)>,
    /// Charged so far, over the whole stream.
    nodes: usize,
    bytes: usize,
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
                let cost = Cost { nodes: 1, bytes: text.len(), height: 0 };
                self.charge(cost, span)?;
                let node = self.scalar(&text, style, tag.as_deref(), span)?;
                self.complete(node, cost, anchor, span)?;
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(&id).map(|(_, c)| *c).ok_or_else(|| self.error(span, "unknown alias"))?;
                self.nest(cost.height, span)?;
                // Charged in full before the copy is made.
                self.charge(cost, span)?;
                let node = self.anchors.get(&id).map(|(n, _)| n.clone()).unwrap_or_else(|| node(Value::Null, span));
                self.complete(node, cost, 0, span)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.nest(1, span)?;
                self.stack.push(Frame::Seq { start: span, anchor, items: Vec::new(), cost: Cost::default() })
            }
            Event::MappingStart(anchor, _) => {
                self.nest(1, span)?;
                self.stack.push(Frame::Map {
                    start: span,
                    anchor,
                    entries: Vec::new(),
                    keys: HashSet::new(),
                    key: None,
                    merges: Vec::new(),
                    cost: Cost::default(),
                })
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { start, anchor, items, cost }) = self.stack.pop() {
                    let cost = self.collection(cost, start)?;
                    self.complete(node(Value::Seq(items), start), cost, anchor, start)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { start, anchor, mut entries, merges, cost, .. }) = self.stack.pop() {
                    for source in merges {
                        merge_into(&mut entries, source, |s| self.error(s, MERGE_SHAPE))?;
                    }
                    let cost = self.collection(cost, start)?;
                    self.complete(node(Value::Map(entries), start), cost, anchor, start)?;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Refuses a node `height` levels deep where the stack already is.
    fn nest(&self, height: usize, span: Span) -> Result<(), YamlError> {
        let depth = self.stack.len() + height;
        if depth > self.limits.depth {
            return Err(self.error(span, too_deep(self.limits.depth)));
        }
        Ok(())
    }

    /// Counts a list or mapping itself, its children being charged already.
    fn collection(&mut self, children: Cost, span: Span) -> Result<Cost, YamlError> {
        self.charge(Cost { nodes: 1, bytes: 0, height: 0 }, span)?;
        Ok(Cost { nodes: children.nodes + 1, bytes: children.bytes, height: children.height + 1 })
    }

    fn charge(&mut self, cost: Cost, span: Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(cost.nodes);
        self.bytes = self.bytes.saturating_add(cost.bytes);
        if self.nodes > self.limits.nodes {
            return Err(self.error(
                span,
                format!(
                    "more than {} values after expanding aliases; berth reads at most that many per file",
                    self.limits.nodes
                ),
            ));
        }
        if self.bytes > self.limits.bytes {
            return Err(self.error(
                span,
                format!(
                    "more than {} of text after expanding aliases; berth reads at most that much per file",
                    human_bytes(self.limits.bytes)
                ),
            ));
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
                        // The text itself is not repeated: it may be a secret.
                        return Err(self.error(span, format!("the value is not a valid !!{}", tag.suffix)));
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
    fn complete(&mut self, node: Node, cost: Cost, anchor: usize, span: Span) -> Result<(), YamlError> {
        if anchor > 0 {
            // The copy kept for aliases is memory too.
            self.charge(Cost { height: 0, ..cost }, span)?;
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        let document = self.document.max(1);
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.documents.push(YamlDocument { index: document, root: node });
                }
            }
            Some(Frame::Seq { items, cost: total, .. }) => {
                total.add(cost);
                items.push(node)
            }
            Some(Frame::Map { entries, keys, key, merges, cost: total, .. }) => {
                total.add(cost);
                match key.take() {
                    None => {
                        let text = match node.value {
                            Value::Str(s) => s,
                            Value::Seq(_) | Value::Map(_) => {
                                return Err(
                                    self.error(span, "a mapping key must be a plain value, not a list or mapping")
                                )
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
                        if keys.contains(&k) {
                            let line = entries.iter().find(|(existing, _)| *existing == k).map_or(0, |(_, n)| n.line);
                            return Err(self.error(
                                key_span,
                                format!(
                                    "duplicate key {} (first given on line {line}); give each key once",
                                    quoted_excerpt(&k)
                                ),
                            ));
                        }
                        keys.insert(k.clone());
                        entries.push((k, node));
                    }
                }
            }
        }
        Ok(())
    }
}

fn too_deep(depth: usize) -> String {
    format!("lists and mappings are nested more than {depth} levels deep; berth reads at most {depth} (Kubernetes objects need about 15)")
}

/// `32 MiB`, `1000 bytes`.
fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && (n >> 20) << 20 == n {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// Text from the input, for a message: quoted, and cut short when long so
/// an error never repeats a large (or secret) value.
pub fn quoted_excerpt(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head:?}… ({} bytes)", text.len())
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
    let mut keys: HashSet<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    for map in sources {
        for (k, v) in map {
            if keys.insert(k.clone()) {
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
