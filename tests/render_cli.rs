//! End-to-end tests of `vdi-render` as a user runs it: the bundled examples against their golden
//! output, the real `kubernetes-validate --strict` and `kubectl kustomize`, sharding, `--check`,
//! atomic replacement, and every kind of bad input with its exit status and located message.

use std::{fs, path::Path, process::Command};

use vdi_e2e::{bin, repo, run, session_yaml, template_yaml, text, to_yaml, tool, tree, yaml_docs};

fn render() -> Command {
    let mut c = Command::new(bin("vdi-render"));
    c.current_dir(repo());
    c
}

fn examples(c: &mut Command) -> &mut Command {
    c.args(["render", "examples/sessions", "examples/templates", "--settings", "examples/settings.yaml"])
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some()
}

/// Golden output: `examples/rendered/` is the checked-in result of rendering the examples, with
/// the Flux Kustomizations of a repository that keeps its output in `rendered/`.
/// `BLESS=1 cargo nextest run -p vdi-e2e` (or scripts/bless) regenerates it; review the diff.
#[test]
fn examples_match_golden_folder() {
    let golden = ["--out", "examples/rendered", "--flux", "desktops", "--flux-path", "rendered"];
    if bless() {
        let out = run(examples(&mut render()).args(golden));
        assert!(out.status.success(), "{:?}", text(&out));
    }
    let out = run(examples(&mut render()).args(golden).arg("--check"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "examples/rendered is stale (BLESS=1 to regenerate):\n{stdout}\n{stderr}");
}

#[test]
fn examples_match_golden_stream() {
    let out = run(examples(&mut render()));
    assert!(out.status.success(), "{:?}", text(&out));
    let golden = repo().join("tests/golden/examples.stream.yaml");
    if bless() {
        fs::write(&golden, &out.stdout).expect("write golden");
    }
    let expected = fs::read_to_string(&golden).unwrap_or_default();
    let (stdout, _) = text(&out);
    if stdout != expected {
        let diff = similar_lines(&expected, &stdout);
        panic!("stdout differs from {} (BLESS=1 to regenerate):\n{diff}", golden.display());
    }
}

fn similar_lines(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .take(10)
        .map(|(i, (x, y))| format!("line {}: -{x}\n         +{y}\n", i + 1))
        .collect()
}

#[test]
fn stdout_is_only_yaml_and_secrets_have_no_value() {
    let out = run(examples(&mut render()));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let docs = yaml_docs(&stdout);
    let kinds: Vec<_> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in ["Pod", "Service", "PersistentVolumeClaim", "Secret", "ServiceAccount", "NetworkPolicy", "Ingress"] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 5, "{kind} per session");
    }
    assert!(!stdout.contains("SHARED_SECRET") && !stdout.contains("coturn-auth"), "no platform secret is referenced");
    for d in docs.iter().filter(|d| d["kind"] == "Secret") {
        assert!(d.get("data").is_none() && d.get("stringData").is_none(), "a rendered Secret carries no value: {d:?}");
    }
    for pod in docs.iter().filter(|d| d["kind"] == "Pod") {
        let env = pod["spec"]["containers"][0]["env"].as_array().expect("env");
        let pw = env.iter().find(|e| e["name"] == "SELKIES_BASIC_AUTH_PASSWORD").expect("password env");
        assert!(pw.get("value").is_none(), "password never literal");
        assert_eq!(pw["valueFrom"]["secretKeyRef"]["key"], "password");
    }
}

#[test]
fn output_passes_kubernetes_validate_strict_and_kubectl_kustomize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    let out = run(examples(&mut render()).arg("--out").arg(&out_dir));
    assert!(out.status.success(), "{:?}", text(&out));
    let mut files: Vec<_> =
        tree(&out_dir).into_keys().filter(|p| !p.ends_with("kustomization.yaml")).map(|p| out_dir.join(p)).collect();
    files.extend(["crds/vdisessions.vdi.kasm.io.yaml", "crds/vditemplates.vdi.kasm.io.yaml"].map(|f| repo().join(f)));
    let v = run(Command::new(tool("kubernetes-validate")).args(["--strict", "--quiet"]).args(&files));
    assert!(v.status.success(), "kubernetes-validate --strict rejected the output: {:?}", text(&v));

    let k = run(Command::new(tool("kubectl")).arg("kustomize").arg(&out_dir));
    let (built, err) = text(&k);
    assert!(k.status.success(), "kubectl kustomize failed: {err}");
    assert_eq!(built.matches("\nkind: Pod\n").count(), 5, "kustomize builds every session's Pod");
}

#[test]
fn input_order_does_not_change_output() {
    let a = run(render().args([
        "render",
        "examples/templates",
        "examples/sessions/engineering",
        "examples/sessions/design",
    ]));
    let b = run(render().args([
        "render",
        "examples/sessions/design/ben.yaml",
        "examples/sessions",
        "examples/templates/blender.yaml",
        "examples/templates",
    ]));
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
}

fn write(dir: &Path, name: &str, content: &str) {
    fs::create_dir_all(dir.join(name).parent().expect("parent")).expect("mkdir");
    fs::write(dir.join(name), content).expect("write");
}

/// 250 sessions in one namespace with shard size 100 split into three shard folders, each a
/// kustomization `kubectl kustomize` builds; adding or removing one session changes only its
/// file and its shard's kustomization.yaml.
#[test]
fn large_namespaces_split_into_stable_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let out_dir = dir.path().join("out");
    write(&input, "templates.yaml", &template_yaml("t"));
    let mut all = String::new();
    for i in 0..250 {
        all.push_str("---\n");
        all.push_str(&session_yaml(&format!("s{i:03}"), "big", "t"));
    }
    write(&input, "sessions.yaml", &all);
    write(&input, "small.yaml", &session_yaml("solo", "small", "t"));
    let settings = dir.path().join("settings.yaml");
    fs::write(&settings, "shardSize: 100\n").expect("settings");
    let go = |out_dir: &Path| {
        run(Command::new(bin("vdi-render"))
            .arg("render")
            .arg(&input)
            .arg("--out")
            .arg(out_dir)
            .arg("--settings")
            .arg(&settings))
    };
    let out = go(&out_dir);
    assert!(out.status.success(), "{:?}", text(&out));
    let before = tree(&out_dir);
    for shard in ["shard-000", "shard-001", "shard-002"] {
        let k = run(Command::new(tool("kubectl")).arg("kustomize").arg(out_dir.join("big").join(shard)));
        assert!(k.status.success(), "{:?}", text(&k));
    }
    assert!(!out_dir.join("big/shard-003").exists());
    assert!(out_dir.join("small/shard-000/solo.yaml").exists(), "a small namespace is one shard");

    // Remove s120 (in shard-001) and add `new` (fills the first shard with room: shard-001).
    let edited = all.replace(&format!("---\n{}", session_yaml("s120", "big", "t")), "")
        + "---\n"
        + &session_yaml("new", "big", "t");
    write(&input, "sessions.yaml", &edited);
    let out = go(&out_dir);
    assert!(out.status.success(), "{:?}", text(&out));
    let after = tree(&out_dir);
    let changed: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|p| p.display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(changed, ["big/shard-001/kustomization.yaml", "big/shard-001/new.yaml", "big/shard-001/s120.yaml"]);
}

#[test]
fn check_reports_stale_output_with_a_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    assert!(run(examples(&mut render()).arg("--out").arg(&out_dir)).status.success());
    assert!(run(examples(&mut render()).arg("--out").arg(&out_dir).arg("--check")).status.success());
    let ana = out_dir.join("design/shard-000/ana.yaml");
    let edited =
        fs::read_to_string(&ana).expect("ana").replace("activeDeadlineSeconds: 36000", "activeDeadlineSeconds: 1");
    fs::write(&ana, edited).expect("edit");
    fs::write(out_dir.join("design/shard-000/zed.yaml"), "stray\n").expect("stray");
    let out = run(examples(&mut render()).arg("--out").arg(&out_dir).arg("--check"));
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("-  activeDeadlineSeconds: 1\n+  activeDeadlineSeconds: 36000"), "{stdout}");
    assert!(stdout.contains("zed.yaml\n+++ /dev/null"), "{stdout}");
    // Rendering again restores it and removes the stray file.
    assert!(run(examples(&mut render()).arg("--out").arg(&out_dir)).status.success());
    assert!(!out_dir.join("design/shard-000/zed.yaml").exists());
    assert!(run(examples(&mut render()).arg("--out").arg(&out_dir).arg("--check")).status.success());
}

#[test]
fn refuses_to_replace_a_folder_it_did_not_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "mine/notes.txt", "precious");
    let out = run(examples(&mut render()).arg("--out").arg(dir.path().join("mine")));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("was not written by vdi-render"));
    assert_eq!(fs::read_to_string(dir.path().join("mine/notes.txt")).ok().as_deref(), Some("precious"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["render"],
        vec!["render", "examples", "--check"],
        vec!["render", "examples", "--bogus"],
        vec!["frobnicate"],
    ] {
        let out = run(render().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", text(&out));
    }
    let help = run(render().args(["render", "--help"]));
    let (stdout, _) = text(&help);
    for flag in ["--out", "--settings", "--check", "shard"] {
        assert!(stdout.contains(flag), "help mentions {flag}");
    }
    let crds = run(render().arg("crds"));
    assert!(text(&crds).0.contains("name: vdisessions.vdi.kasm.io"));
}

/// One bad input: the file content, and what the message must contain (`file:line:col` and the
/// field).
struct Case {
    name: &'static str,
    yaml: String,
    expect: &'static [&'static str],
}

fn t() -> String {
    template_yaml("t")
}

fn cases() -> Vec<Case> {
    let s = |extra: &str| format!("{}{extra}", session_yaml("alice", "team", "t"));
    vec![
        Case { name: "yaml syntax", yaml: "apiVersion: [oops\nkind: VDISession\n".into(), expect: &["bad.yaml:2:", "YAML syntax error"] },
        Case { name: "unknown field", yaml: s("  colour: blue\n"), expect: &["bad.yaml:9:3", "spec.colour", "unknown field"] },
        Case {
            name: "missing required",
            yaml: "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: a\nspec:\n  template: t\n".into(),
            expect: &["bad.yaml:5:1", "spec.user", "required field `user`"],
        },
        Case { name: "not an email", yaml: s("").replace("alice@example.com", "alice"), expect: &["bad.yaml:7:3", "spec.user", "not an email"] },
        Case { name: "negative gpu", yaml: s("  resources:\n    gpu: -1\n"), expect: &["bad.yaml:10:5", "spec.resources.gpu", "minimum of 0"] },
        Case { name: "too many gpus", yaml: s("  resources:\n    gpu: 3\n"), expect: &["bad.yaml:10:5", "spec.resources.gpu", "at most 2"] },
        Case { name: "gpu over schema max", yaml: s("  resources:\n    gpu: 99\n"), expect: &["bad.yaml:10:5", "maximum of 16"] },
        Case { name: "bad quantity", yaml: s("  resources:\n    memory: 4GB\n"), expect: &["bad.yaml:10:5", "spec.resources.memory", "not a Kubernetes quantity"] },
        Case { name: "memory out of range", yaml: s("  resources:\n    memory: 1Ti\n"), expect: &["bad.yaml:10:5", "out of bounds"] },
        Case { name: "bad duration", yaml: s("  timeout: 3 days\n"), expect: &["bad.yaml:9:3", "spec.timeout", "not a duration"] },
        Case { name: "timeout over bound", yaml: s("  timeout: 169h\n"), expect: &["bad.yaml:9:3", "spec.timeout", "168h"] },
        Case { name: "unknown template", yaml: s("").replace("template: t", "template: nope"), expect: &["bad.yaml:8:3", "spec.template", "no VDITemplate named `nope`"] },
        Case {
            name: "template without image",
            yaml: "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDITemplate\nmetadata:\n  name: empty\nspec:\n  displayName: x\n".into(),
            expect: &["bad.yaml:5:1", "spec.image", "required field `image`"],
        },
        Case {
            name: "duplicate session",
            yaml: format!("{}---\n{}", session_yaml("alice", "team", "t"), session_yaml("alice", "team", "t")),
            expect: &["bad.yaml:13:3", "metadata.name", "already defined in"],
        },
        Case { name: "name not a DNS label", yaml: s("").replace("name: alice", "name: Alice_1"), expect: &["bad.yaml:4:3", "metadata.name", "DNS-1123"] },
        Case {
            name: "unknown kind",
            yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".into(),
            expect: &["bad.yaml:2:1", "`ConfigMap`", "only VDISession and VDITemplate"],
        },
        Case {
            name: "wrong version",
            yaml: s("").replace("v1alpha1", "v9"),
            expect: &["bad.yaml:1:1", "apiVersion", "not served"],
        },
    ]
}

#[test]
fn bad_input_is_reported_precisely_and_leaves_output_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    assert!(run(examples(&mut render()).arg("--out").arg(&out_dir)).status.success());
    let snapshot = tree(&out_dir);
    for case in cases() {
        let input = dir.path().join(case.name.replace(' ', "-"));
        write(&input, "t.yaml", &t());
        write(&input, "bad.yaml", &case.yaml);
        let out = run(Command::new(bin("vdi-render")).arg("render").arg(&input).arg("--out").arg(&out_dir));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", case.name);
        assert!(stdout.is_empty(), "{}: nothing on stdout", case.name);
        for want in case.expect {
            assert!(stderr.contains(want), "{}: expected `{want}` in:\n{stderr}", case.name);
        }
        assert!(stderr.contains("nothing was written"), "{}", case.name);
        assert_eq!(tree(&out_dir), snapshot, "{}: the output folder changed", case.name);
    }
}

#[test]
fn all_errors_of_a_run_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all: String = cases().iter().filter(|c| c.name != "yaml syntax").map(|c| format!("---\n{}", c.yaml)).collect();
    write(dir.path(), "t.yaml", &t());
    write(dir.path(), "all.yaml", &all);
    let out = run(Command::new(bin("vdi-render")).arg("render").arg(dir.path()));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let count = stderr.lines().filter(|l| l.starts_with("error: ")).count();
    assert!(count >= cases().len() - 2, "every document's problem is listed ({count}):\n{stderr}");
}

#[test]
fn settings_errors_name_the_settings_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "s.yaml", "domain: x.io\nurlTemplate: \"https://{{ sesion }}.{{ domain }}\"\n");
    let out = run(render()
        .args(["render", "examples/sessions", "examples/templates", "--settings"])
        .arg(dir.path().join("s.yaml")));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("s.yaml:2:1: settings: urlTemplate:") && stderr.contains("undefined"), "{stderr}");
    write(dir.path(), "s.yaml", "domian: x.io\n");
    let out = run(render().args(["render", "examples/sessions", "--settings"]).arg(dir.path().join("s.yaml")));
    assert!(text(&out).1.contains("s.yaml:1:1") && text(&out).1.contains("unknown field `domian`"), "{:?}", text(&out));
}

/// Renders `dir/in` with `settings` written to `dir/settings.yaml`.
fn render_with_settings(dir: &Path, settings: &str) -> std::process::Output {
    write(dir, "settings.yaml", settings);
    run(Command::new(bin("vdi-render"))
        .arg("render")
        .arg(dir.join("in"))
        .arg("--settings")
        .arg(dir.join("settings.yaml")))
}

/// The GPU resource name is a setting; with time-slicing that fails requests for more than one
/// shared GPU, the renderer names each session and template that would never start.
#[test]
fn shared_gpus_name_their_resource_and_refuse_more_than_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "in/t.yaml", &template_yaml("t"));
    let two = session_yaml("two", "lab", "t") + "  resources:\n    gpu: 2\n";
    write(dir.path(), "in/s.yaml", &format!("{}---\n{two}", session_yaml("one", "lab", "t")));
    let go = |settings: &str| render_with_settings(dir.path(), settings);
    let out = go(
        "gpu:\n  resourceName: nvidia.com/gpu.shared\n  timeSlicing: {replicas: 8, failRequestsGreaterThanOne: false}\n",
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("nvidia.com/gpu.shared: \"2\"") && stdout.contains("nvidia.com/gpu.shared: \"1\""),
        "{stdout}"
    );
    assert!(!stdout.contains("nvidia.com/gpu:"), "only the configured resource");

    let out = go("gpu:\n  timeSlicing: {replicas: 8, failRequestsGreaterThanOne: true}\n");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("s.yaml:") && stderr.contains("VDISession lab/two") && stderr.contains("spec.resources.gpu"),
        "{stderr}"
    );
    assert!(stderr.contains("asks for 2 GPUs") && stderr.contains("would never start"), "{stderr}");
    assert!(
        stderr.contains("t.yaml:") && stderr.contains("spec.resources.maxGPU") && stderr.contains("allows 2 GPUs"),
        "{stderr}"
    );
    assert!(!stderr.contains("lab/one"), "a one-GPU session is fine: {stderr}");

    let out = go("gpu:\n  resourceName: gpu\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("gpu.resourceName"), "{:?}", text(&out));
}

/// Hostile input gets an error naming the file and line, never a crash: 3,000 levels of block
/// nesting overflowed the parsers' stack (SIGABRT) and 50,000 flow levels kept it parsing for
/// more than 20 s, both after a document with an ordinary error.
#[test]
fn deeply_nested_documents_are_refused_not_crashed_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_session = "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: a\nspec:\n  user: nope\n  template: t\n---\n";
    let block: String = (0..3000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    let flow = format!("a: {}1{}\n", "{a: ".repeat(50_000), "}".repeat(50_000));
    for (name, body) in [("block", block), ("flow", flow)] {
        write(dir.path(), &format!("{name}/h.yaml"), &format!("{bad_session}{body}"));
        let out = run(Command::new(bin("vdi-render")).arg("render").arg(dir.path().join(name)));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: exit 1, not a signal: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains("h.yaml:") && stderr.contains("nested more than 100 levels"), "{name}: {stderr}");
    }
}

/// With the default URL pattern, session `a-b` in namespace `c` and session `a` in namespace
/// `b-c` would get the same host, and one tenant the other's traffic; a host label over 63
/// characters is no host at all.
#[test]
fn sessions_cannot_share_a_host_or_have_a_label_too_long() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "in/t.yaml", &template_yaml("t"));
    write(dir.path(), "in/s.yaml", &format!("{}---\n{}", session_yaml("a-b", "c", "t"), session_yaml("a", "b-c", "t")));
    let out = run(Command::new(bin("vdi-render")).arg("render").arg(dir.path().join("in")));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a-b-c.vdi.example.com is also session"), "{stderr}");

    let long = "s".repeat(40);
    write(dir.path(), "in/s.yaml", &session_yaml(&long, &"n".repeat(40), "t"));
    let out = run(Command::new(bin("vdi-render")).arg("render").arg(dir.path().join("in")));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("81 characters (at most 63)") && stderr.contains("s.yaml:"), "{stderr}");
}

/// With no settings at all, the session URL is served over TLS and a desktop reaches neither
/// cloud metadata nor the cluster's private ranges; turning TLS off under an https:// URL is
/// refused, and cert-manager gives each session its own certificate.
#[test]
fn tls_and_egress_are_safe_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "in/t.yaml", &template_yaml("t"));
    write(dir.path(), "in/s.yaml", &session_yaml("ana", "design", "t"));
    let go = |settings: &str| render_with_settings(dir.path(), settings);
    let out = go("");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let docs = yaml_docs(&stdout);
    let ingress = docs.iter().find(|d| d["kind"] == "Ingress").expect("ingress");
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "vdi-tls");
    assert_eq!(ingress["spec"]["tls"][0]["hosts"][0], "ana-design.vdi.example.com");
    assert_eq!(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"], "true");
    let np = docs.iter().find(|d| d["kind"] == "NetworkPolicy").expect("policy");
    let np_text = to_yaml(np);
    assert!(
        np_text.contains("- Egress") && np_text.contains("169.254.0.0/16") && np_text.contains("10.0.0.0/8"),
        "{np_text}"
    );
    assert!(np_text.contains("k8s-app: kube-dns"), "DNS stays reachable: {np_text}");

    let out = go("ingress: {tls: false}\n");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("ingress.tls") && stderr.contains("in clear"), "{stderr}");
    assert!(
        go("ingress: {tls: false}\nurlTemplate: 'http://{{ session }}.{{ domain }}'\n").status.success(),
        "plain http on purpose"
    );

    let out = go("ingress: {certManagerClusterIssuer: letsencrypt}\n");
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("cert-manager.io/cluster-issuer: letsencrypt") && stdout.contains("secretName: ana-tls"),
        "{stdout}"
    );
}

/// The agent contract holds end to end: every agent variable in a rendered session Pod (the
/// golden stream, whose Pods are complete) is one the agent reads, with a value it accepts.
#[test]
fn the_agent_reads_every_variable_the_renderer_writes() {
    use clap::{CommandFactory, Parser};
    let stream = fs::read_to_string(repo().join("tests/golden/examples.stream.yaml")).expect("golden stream");
    let read: Vec<(String, String)> = vdi_agent::settings::Settings::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| (e.to_string_lossy().into_owned(), a.get_id().to_string())))
        .collect();
    let mut seen = 0;
    for v in yaml_docs(&stream) {
        if v["kind"].as_str() != Some("Pod") {
            continue;
        }
        let mut args = vec!["vdi-agent".to_owned()];
        for env in v["spec"]["containers"][0]["env"].as_array().expect("a rendered Pod has env") {
            let name = env["name"].as_str().expect("env name");
            if !(name.starts_with("SELKIES_")
                || name.starts_with("VDI_")
                || name == "DISPLAY"
                || name == "PULSE_SERVER")
            {
                continue;
            }
            let id = read.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone());
            let id = id.unwrap_or_else(|| panic!("the renderer writes {name}, which the agent does not read"));
            seen += 1;
            if let Some(value) = env["value"].as_str() {
                args.extend([format!("--{}", id.replace('_', "-")), value.to_owned()]);
            }
        }
        // Literal values parse as the agent's settings (a password is never a literal).
        args.extend(["--basic-auth-password".into(), "x".into()]);
        if let Err(e) = vdi_agent::settings::Settings::try_parse_from(&args) {
            panic!(
                "the agent refuses what the renderer wrote for {}: {e}",
                v["metadata"]["name"].as_str().unwrap_or("?")
            );
        }
    }
    assert!(seen >= 10, "only {seen} agent variables in the rendered Pods");
}
