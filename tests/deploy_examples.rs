//! Every deployment example under `examples/` (each folder with a kustomization.yaml other than
//! the rendered sessions) builds with `kubectl kustomize` and its objects pass
//! `kubernetes-validate --strict` (kinds of other projects' CRDs, which it has no schema for, are
//! reported as warnings and do not fail).

use std::process::Command;

use vdi_e2e::{repo, run, text, tool};

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
    for expected in ["argocd", "flux", "gpu-time-slicing"] {
        assert!(checked.iter().any(|c| c == expected), "examples/{expected} was checked: {checked:?}");
    }
}
