//! Maps a field's path in a YAML document (a JSON Pointer such as `/spec/resources/gpu`) to its
//! line and column, so every error can point at the text a person wrote. Built only when a file
//! has errors: the fast path never pays for it.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Self { line: m.line(), col: m.col() + 1 }
    }
}

/// Positions of every node of every document of one file.
#[derive(Debug, Default)]
pub struct Locations {
    docs: Vec<HashMap<String, Pos>>,
}

impl Locations {
    /// Indexes `text` with the parser that read its values (serde-saphyr's), so both count the
    /// same documents; a file that does not parse yields what was indexed before the error.
    pub fn index(text: &str) -> Self {
        let mut rx = Receiver::default();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            rx.on_event(event, span.start);
        }
        Self { docs: rx.docs }
    }

    /// Position of the node at `pointer` in document `doc`, or of its nearest ancestor.
    pub fn find(&self, doc: usize, pointer: &str) -> Option<Pos> {
        let map = self.docs.get(doc)?;
        let mut p = pointer;
        loop {
            if let Some(pos) = map.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind('/')?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Receiver {
    docs: Vec<HashMap<String, Pos>>,
    stack: Vec<Frame>,
    /// Whether the open document's root is a null (or absent): such documents are skipped when
    /// values are read, so they are dropped here too.
    null_root: bool,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A plain scalar that YAML's core schema reads as null.
fn is_null(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

impl Receiver {
    /// The path of the node that starts now, or `None` when it is a mapping key.
    fn node_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}/{next}");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(format!("{path}/{}", escape(&k))),
                None => {
                    // This node is a key: remember it; its position is the field's position.
                    *key = Some(scalar.unwrap_or("").to_owned());
                    None
                }
            },
        }
    }

    fn on_event(&mut self, ev: Event<'_>, mark: Marker) {
        match ev {
            Event::DocumentStart(..) => {
                self.docs.push(HashMap::new());
                self.stack.clear();
                self.null_root = true;
            }
            Event::DocumentEnd if self.null_root => {
                self.docs.pop();
            }
            Event::Scalar(value, style, _, tag) => {
                if self.stack.is_empty() {
                    let null_tag = tag.as_ref().is_some_and(|t| t.is_yaml_core_schema_tag("null"));
                    self.null_root = null_tag || (tag.is_none() && is_null(&value, style));
                }
                let was_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let path = self.node_path(Some(&value));
                if was_key {
                    let Some(Frame::Map { path: parent, .. }) = self.stack.last() else {
                        return;
                    };
                    let field = format!("{parent}/{}", escape(&value));
                    if let Some(doc) = self.docs.last_mut() {
                        doc.insert(field, mark.into());
                    }
                } else if let (Some(p), Some(doc)) = (path, self.docs.last_mut()) {
                    doc.entry(p).or_insert(mark.into());
                }
            }
            Event::Alias(_) => {
                self.null_root &= !self.stack.is_empty();
                if let (Some(p), Some(doc)) = (self.node_path(None), self.docs.last_mut()) {
                    doc.entry(p).or_insert(mark.into());
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.stack.is_empty() {
                    self.null_root = false;
                }
                let path = self.node_path(None).unwrap_or_default();
                if let Some(doc) = self.docs.last_mut() {
                    doc.entry(path.clone()).or_insert(mark.into());
                }
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_in_the_right_document() {
        let text = "a: 1\n---\nkind: X\nspec:\n  resources:\n    gpu: -1\n  list:\n  - x\n  - y: 2\n";
        let loc = Locations::index(text);
        assert_eq!(loc.find(0, "/a"), Some(Pos { line: 1, col: 1 }));
        assert_eq!(loc.find(1, "/spec/resources/gpu"), Some(Pos { line: 6, col: 5 }));
        assert_eq!(loc.find(1, "/spec/list/1/y"), Some(Pos { line: 9, col: 5 }));
        assert_eq!(loc.find(1, "/spec/resources/missing"), Some(Pos { line: 5, col: 3 }), "nearest ancestor");
    }

    #[test]
    fn counts_the_documents_the_value_reader_counts() {
        // Empty and null documents are skipped by the value reader; so they are here.
        let text = "---\n# only a comment\n---\na: 1\n---\n~\n---\n!!null x\n---\nb:\n  c: 2\n---\n";
        let values: Vec<serde_json::Value> =
            serde_saphyr::read_with_options(&mut text.as_bytes(), crate::read::yaml_options())
                .collect::<Result<_, _>>()
                .expect("valid YAML");
        assert_eq!(values, [serde_json::json!({"a": 1}), serde_json::json!({"b": {"c": 2}})]);
        let loc = Locations::index(text);
        assert_eq!(loc.find(0, "/a"), Some(Pos { line: 4, col: 1 }));
        assert_eq!(loc.find(1, "/b/c"), Some(Pos { line: 11, col: 3 }));
        assert_eq!(loc.find(2, ""), None);
    }
}
