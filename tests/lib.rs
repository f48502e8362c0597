//! Shared helpers for the end-to-end suites: where the built binaries and the external tools
//! (kubectl, kubernetes-validate) are, and small file-tree utilities. `scripts/test` builds the
//! binaries and installs the tools before the suites run.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Path of a workspace binary built by `cargo build --workspace --bins`.
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// Path of an external tool: `.tools/bin/NAME` (installed by scripts/test), else `PATH`.
pub fn tool(name: &str) -> PathBuf {
    let local = repo().join(".tools/bin").join(name);
    if local.exists() {
        return local;
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("{name} is not installed: run scripts/test (it installs the test tools)"))
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every file under `dir` (relative path → bytes); empty for a missing folder.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p.strip_prefix(dir).unwrap_or(&p).to_owned(), bytes);
            }
        }
    }
    out
}

/// A session document.
pub fn session_yaml(name: &str, namespace: &str, template: &str) -> String {
    format!(
        "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  user: {name}@example.com\n  template: {template}\n"
    )
}

/// A template document.
pub fn template_yaml(name: &str) -> String {
    format!(
        "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDITemplate\nmetadata:\n  name: {name}\nspec:\n  image: registry.example.com/{name}:1\n  resources:\n    maxGPU: 2\n"
    )
}

/// An Xvfb server on a free display, killed on drop.
pub struct Xvfb {
    child: std::process::Child,
    /// `:N`
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb with a `WxH` screen and waits until it accepts clients (`-displayfd` writes the
    /// display number once it does).
    pub fn start(size: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{size}x24"), "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Xvfb (scripts/install-test-deps installs it): {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("display number");
        assert!(!line.trim().is_empty(), "Xvfb did not report a display");
        Self { child, display: format!(":{}", line.trim()) }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
