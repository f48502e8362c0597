//! The part of a Pod that admission reads: name, namespace, labels, annotations and the spec.
//! `managedFields` (a third of a typical session Pod's JSON, parsed by k8s-openapi into nested
//! `serde_json::Value`s) and `status` are skipped without being built. Mutations are computed
//! on this view and sent as a JSON Patch under `/spec`, so what the view leaves out is never
//! touched.
//!
//! `/mutate` reads less still ([`Depth::Injections`]): of the spec, only what the injection
//! (`vdi_crds::pod::ensure` and `PodNeeds`) reads: each container's name, variable names, mounts
//! and resources, and the volume names. Building k8s-openapi's whole `PodSpec` (a `Volume` or a
//! `Container` is kilobytes of mostly empty fields, moved as they are built) was a fifth of the
//! server's time on a session Pod (scripts/bench-webhook, perf).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, EnvVar, Pod, PodSpec, ResourceRequirements, Volume, VolumeMount},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;

/// How much of a Pod's spec a review builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// All of it: validation reads any field.
    Full,
    /// What the injection reads (see the module's doc).
    Injections,
}

/// The view as deserialized; [`PodView::into_pod`] makes it a `Pod` with only these fields set.
#[derive(Deserialize)]
pub struct PodView<S = PodSpec> {
    #[serde(default)]
    metadata: MetaView,
    #[serde(default = "none")]
    spec: Option<S>,
}

/// A serde default of `None` for an `Option<T>` field where `#[serde(default)]` would ask
/// `T: Default` (here and in the review's envelope).
pub(crate) fn none<T>() -> Option<T> {
    None
}

/// The spec as far as the injection reads it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InjectionSpec {
    containers: Vec<InjectionContainer>,
    volumes: Option<Vec<Named>>,
}

// Names and paths default to empty when absent, as k8s-openapi's own types read them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InjectionContainer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    env: Option<Vec<Named>>,
    #[serde(default)]
    volume_mounts: Option<Vec<Mount>>,
    #[serde(default)]
    resources: Option<ResourceRequirements>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Mount {
    name: String,
    mount_path: String,
}

impl From<InjectionSpec> for PodSpec {
    fn from(s: InjectionSpec) -> Self {
        let container = |c: InjectionContainer| Container {
            name: c.name,
            env: c.env.map(|e| e.into_iter().map(|v| EnvVar { name: v.name, ..EnvVar::default() }).collect()),
            volume_mounts: c.volume_mounts.map(|m| {
                m.into_iter()
                    .map(|m| VolumeMount { name: m.name, mount_path: m.mount_path, ..VolumeMount::default() })
                    .collect()
            }),
            resources: c.resources,
            ..Container::default()
        };
        PodSpec {
            containers: s.containers.into_iter().map(container).collect(),
            volumes: s.volumes.map(|v| v.into_iter().map(|v| Volume { name: v.name, ..Volume::default() }).collect()),
            ..PodSpec::default()
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetaView {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

impl<S: Into<PodSpec>> PodView<S> {
    /// The Pod with only the fields of the view set.
    pub fn into_pod(self) -> Pod {
        let m = self.metadata;
        Pod {
            metadata: ObjectMeta {
                name: m.name,
                generate_name: m.generate_name,
                namespace: m.namespace,
                labels: m.labels,
                annotations: m.annotations,
                ..ObjectMeta::default()
            },
            spec: self.spec.map(Into::into),
            status: None,
        }
    }
}

/// Parses the admission view of a Pod from its JSON.
pub fn parse(json: &str) -> serde_json::Result<Pod> {
    serde_json::from_str::<PodView>(json).map(PodView::into_pod)
}

/// Reads the admission view of a Pod, to `depth`, from a deserializer.
pub fn read<'de, D: serde::Deserializer<'de>>(d: D, depth: Depth) -> Result<Option<Pod>, D::Error> {
    Ok(match depth {
        Depth::Full => Option::<PodView>::deserialize(d)?.map(PodView::into_pod),
        Depth::Injections => Option::<PodView<InjectionSpec>>::deserialize(d)?.map(PodView::into_pod),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_admission_reads_and_skips_the_rest() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n",
            "labels":{"a":"b"},"annotations":{"c":"d"},"managedFields":[{"manager":"x","fieldsV1":{"f:spec":{}}}]},
            "spec":{"containers":[{"name":"desktop"}]},"status":{"phase":"Pending"}}"#;
        let pod = parse(json).expect("parses");
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert_eq!(pod.metadata.labels.as_ref().and_then(|l| l.get("a")).map(String::as_str), Some("b"));
        assert_eq!(pod.metadata.annotations.as_ref().and_then(|l| l.get("c")).map(String::as_str), Some("d"));
        assert!(pod.metadata.managed_fields.is_none() && pod.status.is_none());
        assert_eq!(pod.spec.expect("spec").containers[0].name, "desktop");
    }

    fn at_depth(json: &str, depth: Depth) -> serde_json::Result<Option<Pod>> {
        read(&mut serde_json::Deserializer::from_str(json), depth)
    }

    #[test]
    fn a_pod_without_a_spec_reads_at_either_depth() {
        for depth in [Depth::Full, Depth::Injections] {
            let pod = at_depth(r#"{"metadata":{"name":"p"}}"#, depth).expect("parses").expect("a Pod");
            assert!(pod.spec.is_none() && pod.metadata.name.as_deref() == Some("p"), "{depth:?}");
        }
    }

    #[test]
    fn a_malformed_spec_is_still_an_error() {
        for depth in [Depth::Full, Depth::Injections] {
            assert!(at_depth(r#"{"metadata":{},"spec":{"containers":"no"}}"#, depth).is_err());
            assert!(at_depth(r#"{"metadata":{"labels":{"a":1}}}"#, depth).is_err());
            assert!(at_depth(r#"{"spec":{"containers":[{"env":[{"name":7}]}]}}"#, depth).is_err(), "{depth:?}");
        }
    }

    /// The injection reads nothing the narrow view leaves out: on every session Pod the tests and
    /// benches send, it decides and patches exactly as on the whole Pod.
    #[test]
    fn the_injection_decides_the_same_on_the_narrow_view() {
        use vdi_crds::pod::{PodNeeds, ensure};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = ["benches/pod-review.json", "benches/pod-review-complete.json", "tests/fixtures/pod-create.json"];
        for file in files {
            let review: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(root.join(file)).expect("fixture")).expect("JSON");
            let object = review["request"]["object"].to_string();
            let mut results = Vec::new();
            for depth in [Depth::Full, Depth::Injections] {
                let mut pod = at_depth(&object, depth).expect("parses").expect("a Pod");
                let needs = PodNeeds::from_pod(&pod, "nvidia.com/gpu", 1).expect("a session Pod").expect("needs");
                let shape = crate::mutate::Shape::of(&pod);
                let changed = ensure(&mut pod, &needs);
                results.push((needs, changed, serde_json::to_value(shape.additions(&pod)).expect("JSON")));
            }
            assert_eq!(results[0], results[1], "{file}");
        }
    }
}
