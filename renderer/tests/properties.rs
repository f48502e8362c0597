//! Property tests over random valid sessions: rendering is deterministic and independent of how
//! the input is split into files and ordered, and every rendered Pod satisfies the DESIGN.md
//! invariants (shm, dri and GPU limit exactly when GPUs, password by secretKeyRef, labels,
//! deadline, no unsafe settings, and admission would add nothing).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use vdi_crds::{labels, pod};
use vdi_render::{Settings, render};

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    namespace: String,
    template: usize,
    gpu: Option<u32>,
    memory_gi: Option<u32>,
    timeout_min: Option<u32>,
}

const TEMPLATES: &str = "apiVersion: vdi.kasm.io/v1alpha1
kind: VDITemplate
metadata: {name: gpu}
spec:
  image: img/gpu:1
  resources: {defaultGPU: 1, maxGPU: 4, maxMemory: 64Gi}
---
apiVersion: vdi.kasm.io/v1alpha1
kind: VDITemplate
metadata: {name: cpu}
spec:
  image: img/cpu:1
  resources: {defaultGPU: 0, maxGPU: 0}
  env: [{name: TZ, value: UTC}]
";

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[a-z][a-z0-9-]{0,20}[a-z0-9]",
        prop::sample::select(vec!["alpha", "beta", "gamma-1"]),
        0usize..2,
        prop::option::of(0u32..5),
        prop::option::of(1u32..64),
        prop::option::of(1u32..10_000),
    )
        .prop_map(|(name, ns, template, gpu, memory_gi, timeout_min)| Spec {
            name,
            namespace: ns.into(),
            template,
            gpu: if template == 1 { gpu.map(|_| 0) } else { gpu },
            memory_gi,
            timeout_min,
        })
}

fn yaml(s: &Spec) -> String {
    let mut out = format!(
        "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: {}\n  namespace: {}\nspec:\n  user: {}@example.com\n  template: {}\n",
        s.name,
        s.namespace,
        s.name,
        ["gpu", "cpu"][s.template]
    );
    if s.gpu.is_some() || s.memory_gi.is_some() {
        out.push_str("  resources:\n");
        if let Some(g) = s.gpu {
            out.push_str(&format!("    gpu: {g}\n"));
        }
        if let Some(m) = s.memory_gi {
            out.push_str(&format!("    memory: {m}Gi\n"));
        }
    }
    if let Some(t) = s.timeout_min {
        out.push_str(&format!("  timeout: {t}m\n"));
    }
    out
}

/// Writes the sessions into `files` files in the given order and renders them.
fn render_split(specs: &[Spec], files: usize, reverse: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("templates.yaml"), TEMPLATES).expect("write");
    let mut chunks = vec![String::new(); files];
    let order: Vec<&Spec> = if reverse { specs.iter().rev().collect() } else { specs.iter().collect() };
    for (i, s) in order.iter().enumerate() {
        chunks[i % files].push_str(&format!("---\n{}", yaml(s)));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let p = dir.path().join(format!("s{i}.yml"));
        std::fs::write(&p, c).expect("write");
        paths.push(p);
    }
    if reverse {
        paths.reverse();
    }
    paths.push(dir.path().to_owned());
    let rendered = render(&paths, &Settings::default()).unwrap_or_else(|e| panic!("valid input rejected: {e}"));
    rendered.stream().collect()
}

fn unique(specs: Vec<Spec>) -> Vec<Spec> {
    let mut seen = std::collections::BTreeSet::new();
    specs.into_iter().filter(|s| seen.insert((s.namespace.clone(), s.name.clone()))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_and_order_independent(specs in prop::collection::vec(spec(), 1..12), files in 1usize..4) {
        let specs = unique(specs);
        let a = render_split(&specs, 1, false);
        let b = render_split(&specs, files, true);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, render_split(&specs, files, false));
    }

    #[test]
    fn every_pod_satisfies_the_invariants(specs in prop::collection::vec(spec(), 1..8)) {
        let specs = unique(specs);
        let out = render_split(&specs, 2, false);
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).expect("YAML");
        let pods: Vec<Pod> = docs
            .into_iter()
            .filter(|v| v["kind"] == "Pod")
            .map(|v| serde_json::from_value(v).expect("Pod parses"))
            .collect();
        prop_assert_eq!(pods.len(), specs.len());
        for p in &pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            let s = specs.iter().find(|s| s.name == name && Some(&s.namespace) == p.metadata.namespace.as_ref()).expect("spec");
            let gpu = s.gpu.unwrap_or(if s.template == 0 { 1 } else { 0 });
            let spec = p.spec.as_ref().expect("spec");
            let c = &spec.containers[0];
            let labels = p.metadata.labels.clone().unwrap_or_default();
            prop_assert_eq!(labels.get(labels::SESSION), Some(&name));
            prop_assert_eq!(labels.get(labels::MANAGED_BY).map(String::as_str), Some("vdi-render"));
            prop_assert_eq!(
                p.metadata.annotations.as_ref().and_then(|a| a.get(labels::USER_ANNOTATION)),
                Some(&format!("{name}@example.com"))
            );
            let shm = spec.volumes.iter().flatten().find(|v| v.name == pod::SHM_VOLUME).and_then(|v| v.empty_dir.clone());
            prop_assert_eq!(shm.and_then(|e| e.medium), Some("Memory".to_owned()));
            let has_dri = spec.volumes.iter().flatten().any(|v| v.host_path.as_ref().is_some_and(|h| h.path == pod::DRI_PATH));
            prop_assert_eq!(has_dri, gpu > 0);
            let limit = c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get(pod::GPU_RESOURCE)).map(|q| q.0.clone());
            prop_assert_eq!(limit, (gpu > 0).then(|| gpu.to_string()));
            let pw = c.env.iter().flatten().find(|e| e.name == pod::PASSWORD_ENV).expect("password env");
            prop_assert!(pw.value.is_none());
            prop_assert_eq!(
                pw.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).map(|r| r.name.clone()),
                Some(format!("{name}-auth"))
            );
            prop_assert_eq!(spec.active_deadline_seconds, Some(i64::from(s.timeout_min.unwrap_or(480)) * 60));
            prop_assert!(pod::check(p).is_empty());
            // Admission adds nothing to a rendered Pod.
            let mut again = p.clone();
            let needs = pod::PodNeeds::from_pod(p, pod::GPU_RESOURCE, 0).expect("session pod").expect("needs");
            prop_assert!(!pod::ensure(&mut again, &needs), "ensure reports no change");
            prop_assert_eq!(&again, p);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No input makes the renderer panic: arbitrary bytes, and near-valid documents with fields
    /// replaced by arbitrary YAML scalars, either render or come back as diagnostics.
    #[test]
    fn no_input_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        field in prop::sample::select(vec!["user", "template", "timeout", "resources", "gpu", "memory", "cpu", "name", "namespace", "image"]),
        value in prop_oneof![Just("~".to_owned()), Just("[]".to_owned()), Just("{}".to_owned()), "-?[0-9]{1,20}(\\.[0-9]{0,3})?[a-zA-Z]{0,3}", "\\PC{0,30}"],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bytes.yaml"), &bytes).expect("write");
        let _ = render(&[dir.path().to_owned()], &Settings::default());

        let doc = "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: a\n  namespace: b\nspec:\n  user: a@b.io\n  template: gpu\n  timeout: 1h\n  resources:\n    gpu: 1\n    memory: 4Gi\n    cpu: 2\n".to_string();
        let mutated = doc
            .lines()
            .map(|l| if l.trim_start().starts_with(&format!("{field}:")) { format!("{}{field}: {value}", &l[..l.len() - l.trim_start().len()]) } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.yaml"), TEMPLATES).expect("write");
        std::fs::write(dir.path().join("s.yaml"), mutated).expect("write");
        let _ = render(&[dir.path().to_owned()], &Settings::default());
    }
}
