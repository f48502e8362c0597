//! Reading the input: files and folders (recursive `*.yaml`/`*.yml`), multi-document YAML,
//! strict validation against the CRDs' own schemas, then typed VDISessions and VDITemplates.
//! Every problem becomes a located diagnostic; reading goes on so all of them are reported.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use vdi_crds::{API_VERSION, VDISession, VDITemplate};

use crate::{
    diagnostic::{Diagnostic, Diagnostics, Kind, dotted},
    locate::{Locations, Pos},
    schema::Schemas,
};

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File.
    pub file: PathBuf,
    /// Index of the document in the file (from 0).
    pub doc: usize,
}

/// Everything read from the input.
#[derive(Debug, Default)]
pub struct Input {
    /// Sessions with their origin, in no particular order.
    pub sessions: Vec<(VDISession, Origin)>,
    /// Templates with their origin.
    pub templates: Vec<(VDITemplate, Origin)>,
    /// Problems found while reading.
    pub diagnostics: Vec<Diagnostic>,
    /// Source text of files that had problems, for locating later ones.
    texts: BTreeMap<PathBuf, String>,
}

impl Input {
    /// Position of `field` (dotted) of the document at `origin`.
    pub fn locate(&mut self, origin: &Origin, field: &str) -> Option<Pos> {
        let text = match self.texts.get(&origin.file) {
            Some(t) => t.clone(),
            None => {
                let t = std::fs::read_to_string(&origin.file).ok()?;
                self.texts.insert(origin.file.clone(), t.clone());
                t
            }
        };
        Locations::index(&text).find(origin.doc, &crate::diagnostic::pointer(field))
    }
}

/// Lists the YAML files under `paths` (files as given, folders recursively, `*.yaml` and
/// `*.yml`), sorted and unique.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let unreadable = |at: &Path, why: String| Diagnostics(vec![Diagnostic::new(Kind::Unreadable, at, why)]);
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| unreadable(p, format!("cannot read: {e}")))?;
        if !meta.is_dir() {
            files.push(p.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(p).follow_links(true) {
            let entry = entry.map_err(|e| unreadable(e.path().unwrap_or(p), format!("cannot read folder: {e}")))?;
            let yaml = matches!(entry.path().extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if yaml && !entry.file_type().is_dir() {
                files.push(entry.into_path());
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads every file, validating each document.
pub fn read(files: &[PathBuf], schemas: &Schemas) -> Input {
    use rayon::prelude::*;
    let parts: Vec<Input> = files
        .par_iter()
        .map(|file| {
            let mut part = Input::default();
            read_file(file, schemas, &mut part);
            part
        })
        .collect();
    let mut input = Input::default();
    for part in parts {
        input.sessions.extend(part.sessions);
        input.templates.extend(part.templates);
        input.diagnostics.extend(part.diagnostics);
        input.texts.extend(part.texts);
    }
    input
}

fn read_file(file: &Path, schemas: &Schemas, input: &mut Input) {
    if let Ok(meta) = std::fs::metadata(file)
        && meta.len() > crate::limits::MAX_FILE_BYTES as u64
    {
        let mib = crate::limits::MAX_FILE_BYTES >> 20;
        let message = format!("is {} bytes; files over {mib} MiB are refused", meta.len());
        input.diagnostics.push(Diagnostic::new(Kind::TooLarge, file, message));
        return;
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            input.diagnostics.push(Diagnostic::new(Kind::Unreadable, file, format!("cannot read: {e}")));
            return;
        }
    };
    read_text(file, &text, schemas, input);
}

/// Reads the documents of one file's `text` (`file` names it in diagnostics): what `read` does
/// with each file once it is in memory. Any text gets documents or diagnostics, never a panic
/// (the fuzz target `render_input` feeds it arbitrary bytes).
pub fn read_text(file: &Path, text: &str, schemas: &Schemas, input: &mut Input) {
    let mut diags = Vec::new();
    // Before any parser: a document nested too deep gets one error, never a crash.
    if let Err((line, why)) = crate::limits::check_depth(text) {
        input.diagnostics.push(Diagnostic::new(Kind::TooLarge, file, why).at(Some(Pos { line, col: 1 })));
        return;
    }
    // Located lazily: only files with problems pay for the position index.
    let mut locations: Option<Locations> = None;
    let mut locate = |doc: usize, ptr: &str| -> Option<Pos> {
        locations.get_or_insert_with(|| Locations::index(text)).find(doc, ptr)
    };
    let mut bytes = text.as_bytes();
    // One document at a time, so the documents before a syntax error are still read. Empty and
    // null documents (a trailing `---`) are skipped here and by `Locations` alike, so `doc`
    // counts the same documents in both.
    for (doc, value) in serde_saphyr::read_with_options::<_, serde_json::Value>(&mut bytes, yaml_options()).enumerate()
    {
        let origin = Origin { file: file.to_owned(), doc };
        let json = match value {
            Ok(v) => v,
            Err(e) => {
                let pos = e.location().map(|l| Pos { line: l.line() as usize, col: l.column() as usize });
                let why = format!("YAML syntax error: {}", strip_location(&e.to_string()));
                diags.push(Diagnostic::new(Kind::Syntax, file, why).at(pos));
                break; // The rest of the stream cannot be trusted after a syntax error.
            }
        };
        if !json.is_object() {
            let why = "cannot be read as a Kubernetes object: it is not a mapping".to_owned();
            diags.push(Diagnostic::new(Kind::NotAnObject, file, why).at(locate(doc, "")));
            continue;
        }
        let object = object_name(&json);
        let api_version = json.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
        let kind = json.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if kind.is_empty() || api_version.is_empty() {
            let field = if kind.is_empty() { "kind" } else { "apiVersion" };
            let why =
                format!("missing; every document needs apiVersion: {API_VERSION} and kind: VDISession or VDITemplate");
            diags.push(diag(Kind::NotAnObject, file, locate(doc, ""), object.clone(), Some(field.into()), why));
            continue;
        }
        if (kind != "VDISession" && kind != "VDITemplate") || api_version != API_VERSION {
            let (problem, field, msg) = if kind == "VDISession" || kind == "VDITemplate" {
                (Kind::UnservedVersion, "apiVersion", format!("`{api_version}` is not served; use {API_VERSION}"))
            } else {
                (
                    Kind::ForeignKind,
                    "kind",
                    format!(
                        "`{kind}` ({api_version}) is not a kind vdi-render reads; it reads only VDISession and VDITemplate ({API_VERSION}). Keep other manifests out of the paths given to vdi-render"
                    ),
                )
            };
            let pos = locate(doc, &format!("/{field}"));
            diags.push(diag(problem, file, pos, object.clone(), Some(field.into()), msg));
            continue;
        }
        let errors = schemas.validate(kind, &json);
        if !errors.is_empty() {
            for (ptr, msg) in errors {
                diags.push(diag(Kind::Schema, file, locate(doc, &ptr), object.clone(), Some(dotted(&ptr)), msg));
            }
            continue;
        }
        let typed = if kind == "VDISession" {
            serde_json::from_value::<VDISession>(json).map(|s| input.sessions.push((s, origin)))
        } else {
            serde_json::from_value::<VDITemplate>(json).map(|t| input.templates.push((t, origin)))
        };
        if let Err(e) = typed {
            diags.push(diag(Kind::Invalid, file, locate(doc, ""), object, None, e.to_string()));
        }
    }
    if !diags.is_empty() {
        input.texts.insert(file.to_owned(), text.to_owned());
        input.diagnostics.extend(diags);
    }
}

fn diag(
    kind: Kind,
    file: &Path,
    pos: Option<Pos>,
    object: Option<String>,
    field: Option<String>,
    message: String,
) -> Diagnostic {
    Diagnostic::new(kind, file, message).at(pos).object(object).field(field)
}

/// How documents are parsed: YAML 1.2's core schema (`yes` and `on` stay strings, as they did
/// with serde_yaml before), duplicate keys refused (kubectl refuses them too), merge keys (`<<`)
/// expanded as kubectl does, alias expansion bounded (the parser's default budget), so a small
/// file cannot expand into gigabytes, and plain messages (the diagnostic says where).
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        merge_keys: serde_saphyr::MergeKeyPolicy::Merge,
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(crate::limits::MAX_FILE_BYTES),
        },
    }
}

/// The parser's message without what the diagnostic already says (where) or what is advice to
/// a programmer (which parser option would accept it).
fn strip_location(msg: &str) -> String {
    let end = [" at line ", ", set DuplicateKeyPolicy"].iter().filter_map(|cut| msg.find(cut)).min();
    msg[..end.unwrap_or(msg.len())].to_owned()
}

/// `Kind namespace/name` (or `Kind name`) of a document, for messages.
fn object_name(json: &serde_json::Value) -> Option<String> {
    let kind = json.get("kind")?.as_str()?;
    let meta = json.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("<unnamed>");
    Some(match meta.and_then(|m| m.get("namespace")).and_then(|n| n.as_str()) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    })
}
