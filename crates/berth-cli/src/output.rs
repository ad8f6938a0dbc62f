//! Printing: aligned tables for people, JSON or YAML for scripts.

use std::io::Write;

use serde::Serialize;

use crate::args::Output;
use crate::client::{CliError, Result};

/// Prints rows as a left-aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    print_lines(&format_table(header, rows));
}

/// Lays rows out under a header: columns left-aligned, three spaces
/// apart, trailing blanks trimmed. Pure, so renderers can be tested.
pub fn format_table<H: AsRef<str>>(header: &[H], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.as_ref().chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let s: Vec<String> =
            cells
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.to_string()
                    } else {
                        format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))
                    }
                })
                .collect();
        s.join("   ").trim_end().to_string()
    };
    let mut out = vec![line(header.iter().map(|h| h.as_ref()).collect())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out
}

/// Prints lines to stdout; a closed pipe (`| head`) is not an error worth
/// a panic.
pub fn print_lines<S: AsRef<str>>(lines: &[S]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        if writeln!(out, "{}", l.as_ref()).is_err() {
            return;
        }
    }
}

/// Prints a value as JSON or YAML; returns false for table formats.
pub fn structured<T: Serialize>(value: &T, output: Output) -> Result<bool> {
    match output {
        Output::Json => {
            let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?;
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            Ok(true)
        }
        Output::Yaml => {
            let v = serde_json::to_value(value).map_err(|e| CliError::Other(e.to_string()))?;
            let _ = write!(std::io::stdout().lock(), "{}", to_yaml(&v, 0));
            Ok(true)
        }
        Output::Table | Output::Wide => Ok(false),
    }
}

/// A small YAML emitter for JSON values (block style, strings quoted when
/// they could be misread).
fn to_yaml(v: &serde_json::Value, indent: usize) -> String {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if m.is_empty() => "{}\n".into(),
        Value::Array(a) if a.is_empty() => "[]\n".into(),
        Value::Object(m) => {
            let mut s = String::new();
            for (k, val) in m {
                match val {
                    Value::Object(o) if !o.is_empty() => {
                        s.push_str(&format!("{pad}{k}:\n{}", to_yaml(val, indent + 2)))
                    }
                    Value::Array(a) if !a.is_empty() => s.push_str(&format!("{pad}{k}:\n{}", to_yaml(val, indent))),
                    _ => s.push_str(&format!("{pad}{k}: {}", to_yaml(val, 0))),
                }
            }
            s
        }
        Value::Array(a) => {
            let mut s = String::new();
            for val in a {
                match val {
                    Value::Object(o) if !o.is_empty() => {
                        let inner = to_yaml(val, indent + 2);
                        s.push_str(&format!("{pad}- {}", inner.trim_start()));
                    }
                    _ => s.push_str(&format!("{pad}- {}", to_yaml(val, 0))),
                }
            }
            s
        }
        Value::String(st) => format!("{}\n", serde_json::to_string(st).unwrap_or_default()),
        Value::Null => "null\n".into(),
        other => format!("{other}\n"),
    }
}

/// `2026-01-01T00:00:00Z` → "3 days ago".
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) else { return "N/A".into() };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 30 => (s / 86_400, "day"),
        s if s < 86_400 * 365 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_of_nested_values() {
        let v = serde_json::json!({"a": 1, "b": ["x", {"c": true}], "d": {}});
        assert_eq!(to_yaml(&v, 0), "a: 1\nb:\n- \"x\"\n- c: true\nd: {}\n");
    }
}
