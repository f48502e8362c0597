//! The rehearsal (scripts/rehearse) in the test suite: from a git commit to a desktop in the
//! browser with the real renderer, webhook over TLS, podman's `kube play` running the images
//! scripts/build-images made, headless Chromium, and vdi-status's view of the Pod. The suite
//! runs it with the debug binaries and the slim desktop (scripts/test builds them first); each
//! step the script names must hold, or it fails with the reason.

use std::process::Command;

use vdi_e2e::{repo, run, text};

#[test]
fn from_a_git_commit_to_a_desktop_in_the_browser() {
    let out = run(Command::new(repo().join("scripts/rehearse")).args(["--profile", "dev", "--flavor", "slim"]));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "the rehearsal failed:\n{stderr}");
    for step in [
        "1. the hook refused the stale commit and took the rendered one",
        "2. vdi-webhook (TLS) filled the Secret (password, TURN pair) and passed the Pod unchanged",
        "3. podman kube play started the Pod",
        "the panel is in the picture",
        "typed into a terminal arrived",
        "vdi-status's view of the Pod: Running",
        "vdi-encoder-cost in the session's container: x264enc encoded",
        "5. only the session's file left the rendered folder; kube down stopped it; its home volume stays",
    ] {
        assert!(stderr.contains(step), "step `{step}` missing:\n{stderr}");
    }
    let ms: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kube_play_to_first_frame_ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no first-frame time in {stdout}"));
    assert!(ms > 0, "a first frame was seen");
}

/// What scripts/build-images made (the test command builds them first): each image runs as an
/// unprivileged user and carries the OCI labels a registry and a scanner read.
#[test]
fn images_run_unprivileged_and_are_labelled() {
    for (image, user) in [
        ("localhost/vdi-agent:latest", "1000:1000"),
        ("localhost/vdi-desktop:latest", "1000:1000"),
        ("localhost/vdi-render:latest", "999:999"),
        ("localhost/vdi-webhook:latest", "65532:65532"),
    ] {
        let out = run(Command::new("podman").env("CONTAINERS_CONF", repo().join("images/containers.conf")).args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}|{{json .Config.Labels}}",
            image,
        ]));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{image}: {stderr}");
        let (got_user, labels) = stdout.trim().split_once('|').unwrap_or_default();
        assert_eq!(got_user, user, "{image}");
        let labels: serde_json::Value = serde_json::from_str(labels).expect("labels");
        for key in ["source", "revision", "version", "title", "licenses"] {
            let v = labels[format!("org.opencontainers.image.{key}")].as_str().unwrap_or("");
            assert!(!v.is_empty() && v != "unknown", "{image}: label {key} is `{v}`");
        }
    }
}
