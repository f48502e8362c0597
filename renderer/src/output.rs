//! Writing the output folder atomically (render into a sibling temporary folder, then swap it in
//! with one `renameat2(RENAME_EXCHANGE)`), and `--check`, which compares it with what would be
//! written and shows a unified diff.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use rayon::prelude::*;

use crate::layout::{Files, MARKER};

/// Why the output folder could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder exists, is not empty, and was not written by vdi-render.
    #[error(
        "refusing to replace {0}: it exists and was not written by vdi-render (its kustomization.yaml lacks the vdi-render header); choose an empty or new folder"
    )]
    Foreign(PathBuf),
    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// Path of the failed operation.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_owned(), source }
}

fn ensure_ours(dir: &Path) -> Result<bool, OutputError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(dir)(e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(true);
            }
            let top = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap_or_default();
            if top.starts_with(MARKER) { Ok(true) } else { Err(OutputError::Foreign(dir.to_owned())) }
        }
    }
}

/// Replaces `dir` with exactly `files`. Either the whole new folder is in place or `dir` is as it
/// was: files of removed sessions disappear, nothing is half-written.
pub fn write_atomic(dir: &Path, files: &Files) -> Result<(), OutputError> {
    let exists = ensure_ours(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tmp = tempfile::Builder::new().prefix(".vdi-render-").tempdir_in(&parent).map_err(io(&parent))?;
    let root = tmp.path();
    let dirs: std::collections::BTreeSet<PathBuf> =
        files.keys().filter_map(|p| p.parent().map(|d| root.join(d))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    // One task per folder: threads creating entries in the same folder only wait on its lock.
    let mut by_dir: BTreeMap<&Path, Vec<(&PathBuf, &std::sync::Arc<str>)>> = BTreeMap::new();
    for (rel, content) in files {
        by_dir.entry(rel.parent().unwrap_or(Path::new(""))).or_default().push((rel, content));
    }
    by_dir.par_iter().try_for_each(|(_, list)| {
        list.iter().try_for_each(|(rel, content)| {
            let path = root.join(rel);
            let old = dir.join(rel);
            // An unchanged file is linked, not rewritten: ext4 allocates inodes slowly right
            // after freeing many, so rewriting every file of a large tree costs seconds.
            if exists && std::fs::read(&old).is_ok_and(|bytes| bytes == content.as_bytes()) {
                std::fs::hard_link(&old, &path).map_err(io(&path))
            } else {
                std::fs::write(&path, content.as_bytes()).map_err(io(&path))
            }
        })
    })?;
    set_mode(root)?;
    if exists {
        rustix::fs::renameat_with(rustix::fs::CWD, root, rustix::fs::CWD, dir, rustix::fs::RenameFlags::EXCHANGE)
            .map_err(|e| io(dir)(e.into()))?;
        // `tmp` now holds the previous folder; dropping it removes it.
    } else {
        let path = tmp.keep();
        std::fs::rename(&path, dir).map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(root: &Path) -> Result<(), OutputError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).map_err(io(root))
}

/// Every file under `dir`, relative to it.
pub fn read_tree(dir: &Path) -> Result<Files, OutputError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => return Ok(out),
            r => r.map_err(io(&d))?,
        };
        for entry in entries {
            let path = entry.map_err(io(&d))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let content = std::fs::read_to_string(&path).map_err(io(&path))?;
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_owned();
                out.insert(rel, content.into());
            }
        }
    }
    Ok(out)
}

/// A unified diff from what is in `dir` to `files`; empty when they agree.
pub fn diff(dir: &Path, files: &Files) -> Result<String, OutputError> {
    let current = read_tree(dir)?;
    let mut out = String::new();
    let keys: std::collections::BTreeSet<&PathBuf> = current.keys().chain(files.keys()).collect();
    for k in keys {
        let (old, new) = (current.get(k), files.get(k));
        if old == new {
            continue;
        }
        let shown = dir.join(k);
        let shown = shown.display().to_string();
        let (a, b) = match (old, new) {
            (None, _) => ("/dev/null".to_owned(), shown.clone()),
            (_, None) => (shown.clone(), "/dev/null".to_owned()),
            _ => (shown.clone(), shown.clone()),
        };
        let text = similar::TextDiff::from_lines(old.map_or("", |s| &**s), new.map_or("", |s| &**s));
        out.push_str(&text.unified_diff().context_radius(3).header(&a, &b).to_string());
    }
    Ok(out)
}
