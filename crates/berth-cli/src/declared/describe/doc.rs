//! The text layout `describe` prints: `Key:  value` fields whose values
//! line up within a block, headings, and small tables.

use crate::output::format_table;

#[derive(Debug, Clone)]
enum Line {
    /// `Key:` and its value lines, at an indent.
    Field { indent: usize, key: String, value: Vec<String> },
    /// A line as is; it ends the block of fields above it.
    Text(String),
}

/// A describe text being built. Consecutive fields form a block whose
/// values start in one column, as kubectl's tab-aligned output.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    lines: Vec<Line>,
}

impl Doc {
    /// `Key:  value`; a value with several lines continues under its first.
    pub fn field(&mut self, indent: usize, key: &str, value: impl AsRef<str>) {
        let value = value.as_ref().lines().map(String::from).collect();
        self.lines.push(Line::Field { indent, key: key.to_string(), value });
    }

    /// `Key:  a` then `b`, `c` under it; `Key:  <none>` for none.
    pub fn list(&mut self, indent: usize, key: &str, values: Vec<String>) {
        if values.is_empty() {
            self.field(indent, key, "<none>");
        } else {
            self.lines.push(Line::Field { indent, key: key.to_string(), value: values });
        }
    }

    /// A heading or other text line.
    pub fn text(&mut self, indent: usize, text: impl AsRef<str>) {
        self.lines.push(Line::Text(format!("{}{}", " ".repeat(indent), text.as_ref())));
    }

    pub fn blank(&mut self) {
        self.lines.push(Line::Text(String::new()));
    }

    /// A table under a heading, with a dashed rule under its header as
    /// kubectl's describe draws it.
    pub fn table(&mut self, indent: usize, header: &[&str], rows: Vec<Vec<String>>) {
        let mut all = vec![header.iter().map(|h| "-".repeat(h.len())).collect::<Vec<_>>()];
        all.extend(rows);
        for line in format_table(header, &all) {
            self.text(indent, line);
        }
    }

    /// Where the block of fields starting at `start` ends: at a text line,
    /// or at a field indented less than the block's first (a new section).
    fn block_end(&self, start: usize) -> usize {
        let Line::Field { indent: first, .. } = &self.lines[start] else { return start + 1 };
        self.lines[start..]
            .iter()
            .position(|l| match l {
                Line::Text(_) => true,
                Line::Field { indent, .. } => indent < first,
            })
            .map_or(self.lines.len(), |n| start + n)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.lines.len() {
            if let Line::Text(t) = &self.lines[i] {
                out.push_str(t);
                out.push('\n');
                i += 1;
                continue;
            }
            let end = self.block_end(i);
            let block = &self.lines[i..end];
            // A heading field (no value) needs no room for one.
            let width = block
                .iter()
                .map(|l| match l {
                    Line::Field { indent, key, value } if !value.is_empty() => indent + key.chars().count() + 1,
                    Line::Field { .. } | Line::Text(_) => 0,
                })
                .max()
                .unwrap_or(0);
            for l in block {
                let Line::Field { indent, key, value } = l else { continue };
                let head = format!("{}{key}:", " ".repeat(*indent));
                let mut values = value.iter();
                match values.next() {
                    Some(first) => out.push_str(&format!("{head:<w$}{first}", w = width + 2)),
                    None => out.push_str(&head),
                }
                out.push('\n');
                for more in values {
                    out.push_str(&format!("{:w$}{more}\n", "", w = width + 2));
                }
            }
            i = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_align_within_blocks_and_continue_under_their_value() {
        let mut d = Doc::default();
        d.field(0, "Name", "web");
        d.list(0, "Labels", vec!["app=web".into(), "tier=front".into()]);
        d.list(0, "Annotations", vec![]);
        d.text(0, "Containers:");
        d.text(2, "web:");
        d.field(4, "State", "Running");
        d.field(6, "Started", "now");
        d.field(4, "Command", "");
        d.field(0, "Events", "<none>");
        assert_eq!(
            d.render(),
            "Name:         web\n\
             Labels:       app=web\n\
             \x20             tier=front\n\
             Annotations:  <none>\n\
             Containers:\n\
             \x20 web:\n\
             \x20   State:      Running\n\
             \x20     Started:  now\n\
             \x20   Command:\n\
             Events:  <none>\n"
        );
    }

    #[test]
    fn tables_have_a_rule_under_the_header() {
        let mut d = Doc::default();
        d.text(0, "Conditions:");
        d.table(2, &["Type", "Status"], vec![vec!["Ready".into(), "True".into()]]);
        assert_eq!(d.render(), "Conditions:\n  Type    Status\n  ----    ------\n  Ready   True\n");
    }
}
