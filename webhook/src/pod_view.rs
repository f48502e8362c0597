//! The part of a Pod that admission reads: name, namespace, labels, annotations and the spec.
//! `managedFields` (a third of a typical session Pod's JSON, parsed by k8s-openapi into nested
//! `serde_json::Value`s) and `status` are skipped without being built. Mutations are computed
//! on this view and sent as a JSON Patch under `/spec`, so what the view leaves out is never
//! touched.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Pod, PodSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;

/// The view as deserialized; [`PodView::into_pod`] makes it a `Pod` with only these fields set.
#[derive(Deserialize)]
pub struct PodView {
    #[serde(default)]
    metadata: MetaView,
    #[serde(default)]
    spec: Option<PodSpec>,
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

impl PodView {
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
            spec: self.spec,
            status: None,
        }
    }
}

/// Parses the admission view of a Pod from its JSON.
pub fn parse(json: &str) -> serde_json::Result<Pod> {
    serde_json::from_str::<PodView>(json).map(PodView::into_pod)
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

    #[test]
    fn a_malformed_spec_is_still_an_error() {
        assert!(parse(r#"{"metadata":{},"spec":{"containers":"no"}}"#).is_err());
        assert!(parse(r#"{"metadata":{"labels":{"a":1}}}"#).is_err());
    }
}
