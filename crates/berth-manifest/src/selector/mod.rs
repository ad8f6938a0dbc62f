//! Label selectors with Kubernetes semantics: requirements ANDed together,
//! each `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`
//! or `!key`. A selector has one canonical string form (requirements sorted
//! by key, values sorted), which [`Selector::parse`] reads back.

mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names;

pub use parse::SyntaxError;

/// Labels of an object: key to value.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One condition on one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("label key {key:?} is invalid: {reason}")]
    Key { key: String, reason: String },
    #[error("value {value:?} for label {key:?} is invalid: {reason}")]
    Value { key: String, value: String, reason: String },
    #[error("{operator} on label {key:?} {reason}")]
    Arity { key: String, operator: &'static str, reason: &'static str },
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
}

impl Operator {
    fn word(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
        }
    }
}

impl Requirement {
    /// Checks the key, the values and their number for the operator, as
    /// Kubernetes does: one value for `=`/`!=`, at least one for
    /// `in`/`notin`, none for exists and does-not-exist.
    pub fn try_new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        names::qualified_name(&key).map_err(|reason| SelectorError::Key { key: key.clone(), reason })?;
        let values: BTreeSet<String> = values.into_iter().collect();
        for value in &values {
            names::label_value(value).map_err(|reason| SelectorError::Value {
                key: key.clone(),
                value: value.clone(),
                reason,
            })?;
        }
        let arity = |reason| SelectorError::Arity { key: key.clone(), operator: operator.word(), reason };
        match operator {
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err(arity("needs exactly one value"))
            }
            Operator::In | Operator::NotIn if values.is_empty() => return Err(arity("needs at least one value")),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => return Err(arity("takes no values")),
            _ => {}
        }
        Ok(Requirement { key, operator, values })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A lone empty value is written "(,)" so that it does not read back
        // as the (invalid) empty list "()".
        let list = || match self.values.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [""] if matches!(self.operator, Operator::In | Operator::NotIn) => ",".to_string(),
            values => values.join(","),
        };
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, list()),
            Operator::NotEquals => write!(f, "{}!={}", self.key, list()),
            Operator::In => write!(f, "{} in ({})", self.key, list()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, list()),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// Requirements that must all hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Sorts and de-duplicates, so equal selectors have equal forms.
    pub fn new(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort();
        requirements.dedup();
        Selector { requirements }
    }

    /// `key=value` for every label.
    pub fn from_labels(labels: &Labels) -> Result<Self, SelectorError> {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement::try_new(k.clone(), Operator::Equals, [v.clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector::new(requirements))
    }

    /// Parses kubectl's `-l` syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`
    /// (also `a==b`); whitespace between tokens is ignored.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        parse::parse(input)
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl From<Selector> for String {
    fn from(s: Selector) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Selector {
    type Error = SelectorError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Selector::parse(&s)
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

#[cfg(test)]
mod tests;
