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

/// A child process whose stderr is collected line by line (and can be waited on); killed on drop.
pub struct Logged {
    /// The process.
    pub child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Logged {
    /// Spawns `cmd` with stderr captured.
    pub fn spawn(cmd: &mut Command) -> Self {
        use std::io::BufRead;
        let mut child =
            cmd.stderr(std::process::Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, lines) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Self { child, log, lines }
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits for the next stderr line containing `needle` and returns its `addr=` value.
    pub fn wait_for_addr(&self, needle: &str, timeout: std::time::Duration) -> std::net::SocketAddr {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no `{needle}` line: {}", self.log()));
            if line.contains(needle)
                && let Some(addr) = line.split("addr=").nth(1).and_then(|a| a.split_whitespace().next())
            {
                return addr.parse().unwrap_or_else(|e| panic!("bad address in `{line}`: {e}"));
            }
        }
    }
}

impl Logged {
    /// Sends SIGTERM and waits (up to `timeout`) for the process to exit; its exit status.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(run(Command::new("kill").args(["-TERM", &pid])).status.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "still running {timeout:?} after SIGTERM: {}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
