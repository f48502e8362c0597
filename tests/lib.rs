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

/// Every non-empty document of a YAML stream, as JSON values.
pub fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple(text).expect("a YAML stream")
}

/// `v` as YAML text, for checks on what a person reads.
pub fn to_yaml(v: &serde_json::Value) -> String {
    serde_saphyr::to_string(v).expect("JSON values serialize")
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

/// An X server on a free display, killed on drop.
pub struct XServer {
    child: std::process::Child,
    _dir: Option<tempfile::TempDir>,
    /// `:N`
    pub display: String,
}

impl XServer {
    /// Xvfb with a `WxH` screen and a black background (Debian 12's Xvfb cannot change its size).
    pub fn xvfb(size: &str) -> Self {
        Self::start(
            Command::new("Xvfb").args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{size}x24"),
                "-nolisten",
                "tcp",
                "-br",
            ]),
            None,
        )
    }

    /// Xorg with the dummy video driver, the X server desktop images use without a GPU; RandR
    /// can add modes and change the screen size on it. Needs root (the test machine has it).
    pub fn xorg_dummy() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("xorg.conf");
        std::fs::write(&conf, XORG_DUMMY_CONF).expect("xorg.conf");
        std::fs::create_dir_all(dir.path().join("conf.d")).expect("conf.d");
        let log = dir.path().join("Xorg.log");
        let mut cmd = Command::new("Xorg");
        cmd.args(["-displayfd", "1", "-noreset", "-nolisten", "tcp", "-config"])
            .arg(&conf)
            .arg("-configdir")
            .arg(dir.path().join("conf.d"))
            .arg("-logfile")
            .arg(&log);
        Self::start(&mut cmd, Some(dir))
    }

    /// Starts the server and waits until it accepts clients (`-displayfd` writes the display
    /// number once it does).
    fn start(cmd: &mut Command, dir: Option<tempfile::TempDir>) -> Self {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?} (scripts/install-test-deps installs it): {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("display number");
        assert!(!line.trim().is_empty(), "{cmd:?} did not report a display");
        Self { child, _dir: dir, display: format!(":{}", line.trim()) }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The screen size an X client (`xdpyinfo`) reads.
    pub fn size(&self) -> String {
        let out = run(Command::new("xdpyinfo").args(["-display", &self.display]));
        let info = text(&out).0;
        info.lines()
            .find_map(|l| l.trim().strip_prefix("dimensions:"))
            .and_then(|d| d.split_whitespace().next())
            .unwrap_or_default()
            .to_owned()
    }
}

const XORG_DUMMY_CONF: &str = include_str!("xorg-dummy.conf");

impl Drop for XServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xev -root` watching the X server (UTF-8 locale, so typed text prints as itself), its output
/// collected; killed on drop.
pub struct XEvents {
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl XEvents {
    /// Starts `xev -root` with the given event masks (for example `-event keyboard`).
    pub fn watch(display: &str, masks: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("xev")
            .arg("-root")
            .args(masks)
            .env("DISPLAY", display)
            .env("LC_ALL", "C.UTF-8")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start xev (x11-utils): {e}"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut e) = sink.lock() {
                    e.push_str(&line);
                    e.push('\n');
                }
            }
        });
        Self { child, seen }
    }

    /// Everything printed so far.
    pub fn seen(&self) -> String {
        self.seen.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Drop for XEvents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PulseAudio daemon of its own (null sink as the default, anonymous unix socket), killed on
/// drop. `server` is what `PULSE_SERVER` takes.
pub struct Pulse {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// `unix:/…/native`
    pub server: String,
}

impl Pulse {
    /// Starts it and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("native");
        let child = Command::new("pulseaudio")
            .args(["--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no", "--disallow-exit"])
            .arg("-L")
            .arg("module-null-sink sink_name=desktop")
            .arg("-L")
            .arg(format!("module-native-protocol-unix socket={} auth-anonymous=1", socket.display()))
            .env("HOME", dir.path())
            .env("PULSE_RUNTIME_PATH", dir.path())
            .env_remove("DISPLAY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pulseaudio (scripts/install-test-deps installs it): {e}"));
        let server = format!("unix:{}", socket.display());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !run(Command::new("pactl").args(["--server", &server, "info"])).status.success() {
            assert!(std::time::Instant::now() < deadline, "pulseaudio did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self { child, _dir: dir, server }
    }
}

impl Drop for Pulse {
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

/// The agent and the browser driver, for the suites that stream.
pub mod agent {
    use std::{net::SocketAddr, path::PathBuf, process::Command, time::Duration};

    use super::{Logged, bin, repo, run, text};

    /// The password every test agent runs with.
    pub const PASSWORD: &str = "correct horse battery staple";

    /// A running `vdi-agent` on a free port.
    pub struct Agent {
        /// The process and its log.
        pub proc: Logged,
        /// Where it listens.
        pub addr: SocketAddr,
        /// Where it serves /metrics.
        pub metrics: SocketAddr,
    }

    impl Agent {
        /// One unlabelled gauge or counter of its `/metrics`, when it is there.
        pub fn metric(&self, name: &str) -> Option<f64> {
            let out = crate::run(Command::new("curl").args(["-s", &format!("http://{}/metrics", self.metrics)]));
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        }

        /// Starts the agent on `display` with `encoder` and extra environment.
        pub fn start(display: &str, encoder: &str, env: &[(&str, &str)]) -> Self {
            let mut cmd = Command::new(bin("vdi-agent"));
            cmd.args(["--addr", "127.0.0.1", "--port", "0"])
                .env("DISPLAY", display)
                .env("SELKIES_ENCODER", encoder)
                .env("SELKIES_BASIC_AUTH_PASSWORD", PASSWORD)
                .env("VDI_METRICS_LISTEN", "127.0.0.1:0")
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .env_remove("PULSE_SERVER");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let proc = Logged::spawn(&mut cmd);
            let metrics = proc.wait_for_addr("serving metrics", Duration::from_secs(30));
            let addr = proc.wait_for_addr("listening", Duration::from_secs(30));
            Self { proc, addr, metrics }
        }

        /// Its log so far.
        pub fn log(&self) -> String {
            self.proc.log()
        }

        /// The page's URL.
        pub fn url(&self) -> String {
            format!("http://{}/", self.addr)
        }

        /// The browser-driver options every run needs.
        pub fn drive_opts(&self, display: &str) -> serde_json::Value {
            serde_json::json!({ "url": self.url(), "user": "user", "password": PASSWORD, "display": display })
        }
    }

    /// Node.js.
    pub fn node() -> PathBuf {
        PathBuf::from("node")
    }

    /// The driver script.
    pub fn drive_script() -> PathBuf {
        repo().join("tests/browser/drive.mjs")
    }

    /// The driver's JSON lines for one step.
    pub fn steps(out: &str, step: &str) -> Vec<serde_json::Value> {
        let needle = format!(r#""step":"{step}""#);
        out.lines().filter(|l| l.contains(&needle)).filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Runs the browser driver (`cmd` is node, or node inside a network namespace) with a
    /// handshake: every line it prints goes to `at` with its step; a line `at` returns goes back
    /// on the driver's stdin (the driver's steps wait for one). Returns success and everything it
    /// printed.
    pub fn drive_live(
        mut cmd: Command,
        mut opts: serde_json::Value,
        mut at: impl FnMut(&str, &serde_json::Value) -> Option<String>,
    ) -> (bool, String) {
        use std::io::{BufRead, BufReader, Write};
        opts["handshake"] = serde_json::json!(true);
        let mut browser = cmd
            .arg(drive_script())
            .arg(opts.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the browser driver: {e}"));
        let mut to_browser = browser.stdin.take().expect("piped stdin");
        let mut out = String::new();
        for line in BufReader::new(browser.stdout.take().expect("piped stdout")).lines().map_while(Result::ok) {
            out.push_str(&line);
            out.push('\n');
            let value = serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default();
            let step = value["step"].as_str().unwrap_or_default().to_owned();
            if let Some(reply) = at(&step, &value) {
                let _ = writeln!(to_browser, "{reply}");
            }
        }
        let status = browser.wait().expect("wait for the browser driver");
        (status.success(), out)
    }

    /// Runs the browser driver to the end: success and everything it printed.
    pub fn drive(opts: serde_json::Value) -> (bool, String) {
        let out = run(Command::new(node()).arg(drive_script()).arg(opts.to_string()));
        let (stdout, stderr) = text(&out);
        (out.status.success(), format!("{stdout}{stderr}"))
    }
}
