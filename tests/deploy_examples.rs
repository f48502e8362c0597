//! Every deployment example under `examples/` (each folder with a kustomization.yaml other than
//! the rendered sessions) builds with `kubectl kustomize` and its objects pass
//! `kubernetes-validate --strict` (kinds of other projects' CRDs, which it has no schema for, are
//! reported as warnings and do not fail).

use std::process::Command;

use vdi_e2e::{repo, run, text, to_yaml, tool, yaml_docs};

#[test]
fn deploy_examples_build_and_validate() {
    let examples = repo().join("examples");
    let mut checked = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&examples).expect("examples").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !dir.join("kustomization.yaml").exists() || name == "rendered" {
            continue;
        }
        let built = run(Command::new(tool("kubectl")).arg("kustomize").arg(&dir));
        let (yaml, err) = text(&built);
        assert!(built.status.success(), "kubectl kustomize examples/{name}: {err}");
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), &yaml).expect("write");
        let v = run(Command::new(tool("kubernetes-validate")).args(["--strict", "--quiet"]).arg(tmp.path()));
        assert!(v.status.success(), "examples/{name} fails kubernetes-validate --strict: {:?}", text(&v));
        checked.push(name);
    }
    for expected in ["argocd", "coturn", "flux", "gpu-time-slicing", "webhook"] {
        assert!(checked.iter().any(|c| c == expected), "examples/{expected} was checked: {checked:?}");
    }
}

/// The webhook configurations are scoped so an outage can never block anything but VDI objects.
#[test]
fn webhook_configurations_are_safely_scoped() {
    let built = run(Command::new(tool("kubectl")).arg("kustomize").arg(repo().join("examples/webhook")));
    let (yaml, err) = text(&built);
    assert!(built.status.success(), "{err}");
    let docs = yaml_docs(&yaml);
    let configs: Vec<_> = docs
        .iter()
        .filter(|d| d["kind"] == "MutatingWebhookConfiguration" || d["kind"] == "ValidatingWebhookConfiguration")
        .collect();
    assert_eq!(configs.len(), 2);
    for c in configs {
        assert!(c["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str().is_some());
        for w in c["webhooks"].as_array().expect("webhooks") {
            let name = w["name"].as_str().unwrap_or("");
            assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]), "{name}");
            assert_eq!(w["sideEffects"], "None", "{name}");
            assert_eq!(w["failurePolicy"], "Fail", "{name}");
            assert_eq!(w["matchPolicy"], "Equivalent", "{name}");
            assert!(w["timeoutSeconds"].as_u64().is_some_and(|t| t <= 10), "{name}");
            let excluded = to_yaml(&w["namespaceSelector"]);
            assert!(
                (excluded.contains("NotIn") && excluded.contains("kube-system"))
                    || excluded.contains("vdi.kasm.io/sessions"),
                "{name}: {excluded}"
            );
            for rule in w["rules"].as_array().expect("rules") {
                let resources = to_yaml(&rule["resources"]);
                if name == "namespace-pods.vdi.kasm.io" {
                    // Every Pod (and ephemeral container) of a session namespace, and only there.
                    assert_eq!(w["namespaceSelector"]["matchLabels"]["vdi.kasm.io/sessions"], "true", "{name}");
                    assert!(resources.contains("pods/ephemeralcontainers"), "{name}: {resources}");
                } else if resources.contains("pods") || resources.contains("secrets") {
                    let sel = to_yaml(&w["objectSelector"]);
                    assert!(sel.contains("vdi.kasm.io/session"), "{name} is scoped to session objects: {sel}");
                } else {
                    assert_eq!(rule["apiGroups"], serde_json::json!(["vdi.kasm.io"]), "{name}");
                }
            }
        }
    }
    let deploy =
        docs.iter().find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "vdi-webhook").expect("deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert!(deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object());
    assert!(docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
    let role =
        docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "vdi-webhook").expect("role");
    assert_eq!(to_yaml(&role["rules"]).matches("verbs").count(), 1, "reads templates only");
}

/// vdi-status may read Pods and sessions and patch session status: nothing else.
#[test]
fn the_status_writer_has_only_what_it_needs() {
    let built = run(Command::new(tool("kubectl")).arg("kustomize").arg(repo().join("examples/webhook")));
    let (yaml, err) = text(&built);
    assert!(built.status.success(), "{err}");
    let docs = yaml_docs(&yaml);
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "vdi-status").expect("role");
    let mut grants: Vec<String> = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        for r in rule["resources"].as_array().expect("resources") {
            for v in rule["verbs"].as_array().expect("verbs") {
                grants.push(format!("{}/{}", r.as_str().unwrap_or(""), v.as_str().unwrap_or("")));
            }
        }
    }
    grants.sort();
    assert_eq!(
        grants,
        [
            "pods/get",
            "pods/list",
            "pods/watch",
            "vdisessions/get",
            "vdisessions/list",
            "vdisessions/status/patch",
            "vdisessions/watch"
        ]
    );
    let deploy =
        docs.iter().find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "vdi-status").expect("deployment");
    assert_eq!(deploy["spec"]["template"]["spec"]["serviceAccountName"], "vdi-status");
}
