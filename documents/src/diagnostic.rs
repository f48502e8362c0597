//! Diagnostics: one problem in the input, with the file, line, column, object and field it is
//! about, printed as `file:line:col: Kind ns/name: field: message` so editors can jump to it.

use std::{fmt, path::PathBuf};

use crate::locate::Pos;

/// What kind of problem a diagnostic is, for callers that treat some differently (the webhook
/// reads template files that may hold other kinds too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A file or folder could not be read.
    Unreadable,
    /// Over a limit checked before parsing: size or nesting.
    TooLarge,
    /// Not YAML.
    Syntax,
    /// YAML, but not an object with `apiVersion` and `kind`.
    NotAnObject,
    /// An object of a kind vdi does not read.
    ForeignKind,
    /// A VDISession or VDITemplate of an `apiVersion` not served.
    UnservedVersion,
    /// A VDISession or VDITemplate its CRD's schema refuses.
    Schema,
    /// Valid against the schema, but its values do not hold together (defaults, references,
    /// duplicates, settings).
    Invalid,
}

/// One problem in the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// File the problem is in (or the settings file).
    pub file: PathBuf,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// The object, as `Kind namespace/name`, when known.
    pub object: Option<String>,
    /// The field, as a dotted path (`spec.resources.gpu`), when the problem has one.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// What kind of problem it is.
    pub kind: Kind,
}

impl Diagnostic {
    /// A problem of `kind` in `file`, not yet located.
    pub fn new(kind: Kind, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self { file: file.into(), pos: None, object: None, field: None, message: message.into(), kind }
    }

    /// At `pos`.
    pub fn at(mut self, pos: Option<Pos>) -> Self {
        self.pos = pos;
        self
    }

    /// About `object` (`Kind namespace/name`).
    pub fn object(mut self, object: Option<String>) -> Self {
        self.object = object;
        self
    }

    /// About `field` (dotted).
    pub fn field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.col)?;
        }
        f.write_str(": ")?;
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        if let Some(field) = &self.field
            && !field.is_empty()
        {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one run, sorted by file and position.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        write!(
            f,
            "{} error{} in the input; nothing was written",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )
    }
}

/// Turns a JSON Pointer (`/spec/resources/0/gpu`) into the dotted form people read
/// (`spec.resources[0].gpu`).
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The inverse of [`dotted`], for looking a field up in the YAML.
pub fn pointer(dotted: &str) -> String {
    let mut out = String::new();
    for part in dotted.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for idx in rest.split('[') {
            let idx = idx.trim_end_matches(']');
            if !idx.is_empty() {
                out.push('/');
                out.push_str(idx);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip() {
        assert_eq!(dotted("/spec/env/2/name"), "spec.env[2].name");
        assert_eq!(pointer("spec.env[2].name"), "/spec/env/2/name");
        assert_eq!(pointer("metadata.name"), "/metadata/name");
        assert_eq!(dotted(""), "");
    }
}
