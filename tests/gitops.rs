//! The GitOps wiring, checked as Argo CD and Flux would see it:
//! - every Argo CD and Flux manifest in `examples/` and every Flux Kustomization vdi-render writes
//!   validates against those projects' own CRD schemas (tests/schemas/vendor, with their version
//!   and source), strictly: an unknown field is an error, as a typo would be silently dropped;
//! - on a sharded render, every object belongs to exactly one Argo CD Application (the
//!   ApplicationSet's generator expanded over the tree, plus the cluster Application) and to
//!   exactly one Flux Kustomization (the generated ones, plus the hand-written root), and
//!   together they hold everything the render wrote.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use vdi_e2e::{bin, repo, run, session_yaml, template_yaml, text, tool};

fn yaml_docs(text: &str) -> Vec<Value> {
    vdi_e2e::yaml_docs(text)
}

fn kustomize(dir: &Path) -> Vec<Value> {
    let out = run(Command::new(tool("kubectl")).arg("kustomize").arg(dir));
    let (yaml, err) = text(&out);
    assert!(out.status.success(), "kubectl kustomize {}: {err}", dir.display());
    yaml_docs(&yaml)
}

/// Makes a CRD schema strict like `kubectl --validate=strict`: an object that lists its
/// properties accepts no others, unless it says it keeps unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let open = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if map.contains_key("properties") && !map.contains_key("additionalProperties") && !open {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

struct Vendored(BTreeMap<String, jsonschema::Validator>);

impl Vendored {
    fn load() -> Self {
        let dir = repo().join("tests/schemas/vendor");
        let mut map = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("vendor folder").flatten() {
            let path = entry.path();
            let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            // The API server, not the CRD, defines metadata; only its names are checked here.
            schema["properties"]["metadata"] = serde_json::json!({"type": "object"});
            strict(&mut schema);
            let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{stem}: {e}"));
            map.insert(stem.to_owned(), validator);
        }
        assert!(map.len() >= 5, "{map:?}", map = map.keys().collect::<Vec<_>>());
        Self(map)
    }

    /// `Some(problems)` when a schema for the document's kind is vendored.
    fn check(&self, doc: &Value) -> Option<Vec<String>> {
        let (group, version) = doc["apiVersion"].as_str()?.split_once('/')?;
        let kind = doc["kind"].as_str()?.to_lowercase();
        let v = self.0.get(&format!("{group}_{kind}_{version}"))?;
        Some(v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect())
    }
}

fn is_gitops_kind(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    api.starts_with("argoproj.io/") || api.contains("toolkit.fluxcd.io/")
}

#[test]
fn argo_cd_and_flux_manifests_validate_against_their_own_schemas() {
    let schemas = Vendored::load();
    // A misspelt field is refused: the check is strict, not a formality.
    let typo = serde_json::json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "x", "namespace": "flux-system"},
        "spec": {"interval": "1m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "d"}, "dependOn": []},
    });
    assert!(schemas.check(&typo).is_some_and(|p| p.iter().any(|e| e.contains("dependOn"))), "strict validation");

    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("rendered");
    let render = run(Command::new(bin("vdi-render"))
        .current_dir(repo())
        .args(["render", "examples/sessions", "examples/templates", "--settings", "examples/settings.yaml"])
        .arg("--out")
        .arg(&out_dir)
        .args(["--flux", "desktops", "--flux-path", "rendered"]));
    assert!(render.status.success(), "{:?}", text(&render));

    let mut docs: Vec<(String, Value)> = Vec::new();
    for folder in ["argocd", "flux"] {
        docs.extend(
            kustomize(&repo().join("examples").join(folder)).into_iter().map(|d| (format!("examples/{folder}"), d)),
        );
    }
    docs.extend(kustomize(&out_dir.join("_flux")).into_iter().map(|d| ("rendered/_flux".to_owned(), d)));
    let mut checked = BTreeMap::<String, usize>::new();
    for (from, doc) in docs.iter().filter(|(_, d)| is_gitops_kind(d)) {
        let name = format!(
            "{from}: {} {}",
            doc["kind"].as_str().unwrap_or(""),
            doc["metadata"]["name"].as_str().unwrap_or("")
        );
        let problems =
            schemas.check(doc).unwrap_or_else(|| panic!("{name}: no vendored schema for {}", doc["apiVersion"]));
        assert!(problems.is_empty(), "{name} does not match its CRD:\n{}", problems.join("\n"));
        *checked.entry(doc["kind"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    for kind in ["Application", "ApplicationSet", "AppProject", "Kustomization", "GitRepository"] {
        assert!(checked.contains_key(kind), "a {kind} was checked: {checked:?}");
    }
}

/// Expands one ApplicationSet git directory pattern as Argo CD does (`path.Match` per segment:
/// `*` never crosses `/`; folders starting with `.` are skipped).
fn expand(root: &Path, pattern: &str) -> Vec<PathBuf> {
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == name,
            Some((head, tail)) => {
                name.starts_with(head)
                    && (0..=name.len() - head.len())
                        .any(|i| name.is_char_boundary(head.len() + i) && matches(tail, &name[head.len() + i..]))
            }
        }
    }
    let mut found = vec![PathBuf::new()];
    for segment in pattern.split('/') {
        let mut next = Vec::new();
        for base in &found {
            let Ok(entries) = std::fs::read_dir(root.join(base)) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && !name.starts_with('.') && matches(segment, &name) {
                    next.push(base.join(name));
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}

fn identity(doc: &Value) -> String {
    format!(
        "{} {} {}/{}",
        doc["apiVersion"].as_str().unwrap_or(""),
        doc["kind"].as_str().unwrap_or(""),
        doc["metadata"]["namespace"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// Counts which owners hold each object; every object must have exactly one.
fn assert_one_owner(owners: &BTreeMap<String, Vec<String>>, everything: &[Value], tool_name: &str) {
    let twice: Vec<_> = owners.iter().filter(|(_, o)| o.len() != 1).collect();
    assert!(twice.is_empty(), "{tool_name}: objects with more than one owner: {twice:#?}");
    for doc in everything {
        assert!(owners.contains_key(&identity(doc)), "{tool_name}: {} is in no owner", identity(doc));
    }
}

#[test]
fn every_object_of_a_sharded_render_has_exactly_one_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo_root = dir.path();
    let input = repo_root.join("sessions");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::write(input.join("templates.yaml"), template_yaml("t")).expect("write");
    let mut all = String::new();
    for (ns, count) in [("alpha", 20), ("beta", 15), ("gamma", 5)] {
        for i in 0..count {
            all.push_str("---\n");
            all.push_str(&session_yaml(&format!("{ns}-{i:02}"), ns, "t"));
        }
    }
    std::fs::write(input.join("sessions.yaml"), all).expect("write");
    std::fs::write(repo_root.join("settings.yaml"), "shardSize: 4\n").expect("write");
    std::fs::create_dir(repo_root.join(".git")).expect("a repository root");
    let out = run(Command::new(bin("vdi-render")).current_dir(repo_root).args([
        "render",
        "sessions",
        "--settings",
        "settings.yaml",
        "--out",
        "rendered",
        "--flux",
        "desktops",
    ]));
    assert!(out.status.success(), "{:?}", text(&out));
    let everything = kustomize(&repo_root.join("rendered"));
    assert_eq!(everything.iter().filter(|d| d["kind"] == "VDISession").count(), 40);
    assert_eq!(everything.len(), 40 * 8 + 3 + 2 + 1, "8 objects a session, 3 namespaces, 2 CRDs, 1 template");

    // Argo CD: the ApplicationSet's generator over the tree, and the cluster Application.
    let appset = yaml_docs(&std::fs::read_to_string(repo().join("examples/argocd/applicationset.yaml")).expect("read"));
    let mut app_paths: Vec<PathBuf> = Vec::new();
    for generator in appset[0]["spec"]["generators"].as_array().expect("generators") {
        let dirs = generator["git"]["directories"].as_array().expect("directories");
        let excluded: Vec<PathBuf> = dirs
            .iter()
            .filter(|d| d["exclude"] == true)
            .flat_map(|d| expand(repo_root, d["path"].as_str().unwrap_or("")))
            .collect();
        for d in dirs.iter().filter(|d| d["exclude"] != true) {
            app_paths.extend(
                expand(repo_root, d["path"].as_str().unwrap_or("")).into_iter().filter(|p| !excluded.contains(p)),
            );
        }
    }
    assert_eq!(app_paths.len(), 5 + 4 + 2, "one Application per shard: {app_paths:?}");
    let cluster_app =
        yaml_docs(&std::fs::read_to_string(repo().join("examples/argocd/cluster-application.yaml")).expect("read"));
    app_paths.push(PathBuf::from(cluster_app[0]["spec"]["source"]["path"].as_str().expect("path")));
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &app_paths {
        for doc in kustomize(&repo_root.join(path)) {
            owners.entry(identity(&doc)).or_default().push(path.display().to_string());
        }
    }
    assert_one_owner(&owners, &everything, "Argo CD");

    // Flux: the hand-written root applies rendered/_flux; each generated Kustomization its path.
    let root = yaml_docs(&std::fs::read_to_string(repo().join("examples/flux/sessions.yaml")).expect("read"));
    let root_path = root.iter().find(|d| d["kind"] == "Kustomization").expect("root")["spec"]["path"]
        .as_str()
        .expect("path")
        .to_owned();
    let generated = kustomize(&repo_root.join(&root_path));
    assert_eq!(generated.len(), 12, "vdi-cluster and one per shard");
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for k in &generated {
        owners.entry(identity(k)).or_default().push("root".into());
        let path = k["spec"]["path"].as_str().expect("path");
        for doc in kustomize(&repo_root.join(path)) {
            owners.entry(identity(&doc)).or_default().push(k["metadata"]["name"].as_str().unwrap_or("").to_owned());
        }
        if k["metadata"]["name"] != "vdi-cluster" {
            assert_eq!(k["spec"]["dependsOn"][0]["name"], "vdi-cluster", "{k}");
        }
        assert_eq!(k["spec"]["sourceRef"]["name"], "desktops");
    }
    assert_one_owner(&owners, &everything, "Flux");
}

/// The Argo CD plugin's discovery matches a folder that holds a VDISession and nothing else, and
/// its generate step never prints an empty stream for a prune to act on.
#[test]
fn the_argo_cd_plugin_finds_only_sessions_and_never_prints_an_empty_stream() {
    let cmp = yaml_docs(&std::fs::read_to_string(repo().join("examples/argocd/cmp-plugin.yaml")).expect("read"));
    let plugin = yaml_docs(cmp[0]["data"]["plugin.yaml"].as_str().expect("plugin.yaml"));
    let find: Vec<String> =
        serde_json::from_value(plugin[0]["spec"]["discover"]["find"]["command"].clone()).expect("command");
    let discover = |dir: &Path| {
        let out = run(Command::new(&find[0]).args(&find[1..]).current_dir(dir));
        assert!(out.status.success(), "{:?}", text(&out));
        !text(&out).0.trim().is_empty()
    };
    assert!(discover(&repo().join("examples")), "a repository with sessions is the plugin's");
    assert!(!discover(&repo().join("examples/webhook")), "other YAML is not");
    assert!(!discover(&repo().join("examples/templates")), "templates alone are not");

    let generate: Vec<String> =
        serde_json::from_value(plugin[0]["spec"]["generate"]["command"].clone()).expect("command");
    assert_eq!(generate[0], "timeout", "bounded: {generate:?}");
    let empty = tempfile::tempdir().expect("tempdir");
    std::fs::write(empty.path().join("t.yaml"), template_yaml("t")).expect("write");
    let out = run(Command::new(bin("vdi-render")).arg("render").arg(empty.path()));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.is_empty() && stderr.contains("no VDISession found") && stderr.contains("--allow-empty"),
        "{stderr}"
    );
    let out = run(Command::new(bin("vdi-render")).arg("render").arg(empty.path()).arg("--allow-empty"));
    assert!(out.status.success() && text(&out).0.contains("kind: VDITemplate"), "{:?}", text(&out));
}
