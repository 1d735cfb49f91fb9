//! Reading typed values out of a parsed TOML document while collecting every problem.
//!
//! Validation never stops at the first error: each getter records what is wrong with its
//! value (with the line the value sits on) and returns `None`, and the caller carries on
//! with the rest of the file. Nothing here ever puts a value into an error message: the
//! messages name the key and the expected shape only, so key material cannot leak.

use super::load::ConfigError;
use super::suggest::did_you_mean;
use std::ops::Range;
use std::path::Path;
use toml_edit::{Item, TableLike, Value};

/// The error sink and the byte-offset -> line map of one config text.
pub(crate) struct Cx<'f> {
    file: &'f Path,
    /// Byte offset at which each line starts; line N (1-based) starts at `line_starts[N-1]`.
    line_starts: Vec<usize>,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'f> Cx<'f> {
    pub(crate) fn new(file: &'f Path, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Cx {
            file,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line holding byte `offset`.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    pub(crate) fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| self.line_at(s.start))
    }

    pub(crate) fn err(&mut self, line: Option<usize>, field: &str, why: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            field: field.to_owned(),
            why: why.into(),
        });
    }
}

/// Where a line is worth quoting in a message about another place ("... at line 12").
pub(crate) fn at_line(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(" (line {l})"),
        None => String::new(),
    }
}

/// A table (`[router]`, one `[[tunnel]]`, or an inline table) and the path used to name it.
pub(crate) struct Section<'a> {
    pub(crate) table: &'a dyn TableLike,
    pub(crate) line: Option<usize>,
    pub(crate) path: String,
}

/// One key's value, with its line and its full field path (`tunnel[2].endpoint`).
pub(crate) struct Field<'a> {
    pub(crate) item: &'a Item,
    pub(crate) line: Option<usize>,
    pub(crate) path: String,
}

impl<'a> Section<'a> {
    /// Report every key not in `known`, suggesting the closest known one.
    pub(crate) fn check_keys(&self, cx: &mut Cx, known: &[&str]) {
        for (key, item) in self.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = self
                .table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span());
            let why = match did_you_mean(key, known) {
                Some(best) => format!("unknown key; did you mean {best}?"),
                None => format!("unknown key; known keys here: {}", known.join(", ")),
            };
            let line = cx.line_of(span).or(self.line);
            // A quoted key can hold anything, even a pasted secret: name it only if it
            // looks like a key name.
            let plausible = key.len() <= 32
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            let shown = if plausible { key } else { "(unknown key)" };
            cx.err(line, &self.child(shown), why);
        }
    }

    pub(crate) fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of an optional key; `None` when absent.
    pub(crate) fn get(&self, cx: &Cx, key: &str) -> Option<Field<'a>> {
        let (k, item) = self.table.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        // Implicit tables (made by dotted keys) have no span of their own; the key has.
        let line = cx.line_of(item.span().or_else(|| k.span())).or(self.line);
        Some(Field {
            item,
            line,
            path: self.child(key),
        })
    }

    /// The value of a required key; a "missing" error at the section's line when absent.
    pub(crate) fn require(&self, cx: &mut Cx, key: &str) -> Option<Field<'a>> {
        let field = self.get(cx, key);
        if field.is_none() {
            cx.err(self.line, &self.child(key), "missing required key");
        }
        field
    }
}

impl<'a> Field<'a> {
    fn wrong_type(&self, cx: &mut Cx, expected: &str) {
        cx.err(
            self.line,
            &self.path,
            format!("expected {expected}, found {}", describe(self.item)),
        );
    }

    pub(crate) fn str(&self, cx: &mut Cx) -> Option<&'a str> {
        let s = self.item.as_str();
        if s.is_none() {
            self.wrong_type(cx, "a string");
        }
        s
    }

    pub(crate) fn bool(&self, cx: &mut Cx) -> Option<bool> {
        let b = self.item.as_bool();
        if b.is_none() {
            self.wrong_type(cx, "true or false");
        }
        b
    }

    /// An integer within `lo..=hi`; `what` describes the range for the message.
    pub(crate) fn int(&self, cx: &mut Cx, lo: i64, hi: i64) -> Option<i64> {
        let Some(n) = self.item.as_integer() else {
            self.wrong_type(cx, &format!("an integer {lo}..={hi}"));
            return None;
        };
        if !(lo..=hi).contains(&n) {
            cx.err(
                self.line,
                &self.path,
                format!("{n} is out of range {lo}..={hi}"),
            );
            return None;
        }
        Some(n)
    }

    pub(crate) fn port(&self, cx: &mut Cx) -> Option<u16> {
        self.int(cx, 0, 65535).map(|n| n as u16)
    }

    /// An array of strings: each element with its own line and path (`addresses[2]`).
    pub(crate) fn str_array(&self, cx: &mut Cx) -> Option<Vec<Elem<'a>>> {
        let Some(array) = self.item.as_array() else {
            self.wrong_type(cx, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, v) in array.iter().enumerate() {
            let path = format!("{}[{}]", self.path, i + 1);
            let line = cx.line_of(v.span()).or(self.line);
            match v.as_str() {
                Some(s) => out.push(Elem {
                    text: s,
                    line,
                    path,
                }),
                None => {
                    ok = false;
                    cx.err(
                        line,
                        &path,
                        format!("expected a string, found {}", v.type_name()),
                    );
                }
            }
        }
        ok.then_some(out)
    }
}

/// One string in an array of strings.
pub(crate) struct Elem<'a> {
    pub(crate) text: &'a str,
    pub(crate) line: Option<usize>,
    pub(crate) path: String,
}

/// Say what kind of TOML value was found, without its content.
fn describe(item: &Item) -> String {
    match item {
        Item::Value(Value::Array(_)) => "an array".into(),
        Item::Value(Value::InlineTable(_)) | Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "an array of tables".into(),
        Item::Value(Value::Integer(_)) => "an integer".into(),
        other => format!("a {}", other.type_name()),
    }
}
