//! The cluster-level folder (`_cluster/`): the CRDs, the VDITemplates as git has them, and the
//! session namespaces. It syncs before any session folder (an Argo CD Application in an earlier
//! sync wave; the Flux Kustomization every session folder `dependsOn`), so a template changed in
//! git reaches the webhook through the cluster, and a session's CRD exists before it.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{api::core::v1::Namespace, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use vdi_crds::{VDITemplate, labels};

use crate::gitops;

/// Name of the cluster-level folder. Namespaces are DNS labels, which never start with `_`, so
/// it cannot collide with a namespace folder.
pub const DIR: &str = "_cluster";

/// Label on every namespace that holds sessions (the webhook reviews every Pod in such a
/// namespace).
pub const NAMESPACE_LABEL: &str = "vdi.kasm.io/sessions";

/// Files of the cluster folder, in apply order: `(file name, YAML)`.
pub type ClusterFiles = Vec<(String, Arc<str>)>;

fn managed(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into())])),
        annotations: Some(BTreeMap::new()),
        ..Default::default()
    }
}

/// Renders the namespaces (sorted, unique), the CRDs and the templates (sorted by name).
pub fn render<'a>(
    namespaces: impl IntoIterator<Item = &'a str>,
    templates: &BTreeMap<String, VDITemplate>,
) -> ClusterFiles {
    let mut files = ClusterFiles::new();
    let namespaces: std::collections::BTreeSet<&str> = namespaces.into_iter().collect();
    if !namespaces.is_empty() {
        let docs: String = namespaces
            .iter()
            .map(|ns| {
                let mut meta = managed(ns);
                meta.labels.get_or_insert_with(BTreeMap::new).insert(NAMESPACE_LABEL.into(), "true".into());
                gitops::annotate(meta.annotations.get_or_insert_with(BTreeMap::new), &gitops::KEEP);
                crate::yaml::document(&Namespace { metadata: meta, ..Default::default() })
            })
            .collect();
        files.push(("namespaces.yaml".into(), docs.into()));
    }
    for (file, _) in vdi_crds::crd_yaml::all() {
        let kind = if file.starts_with("vdisessions") { "VDISession" } else { "VDITemplate" };
        let mut crd = vdi_crds::crd_yaml::crd(kind);
        let annotations = &mut crd["metadata"]["annotations"];
        let mut map: BTreeMap<String, String> = serde_json::from_value(annotations.take()).unwrap_or_default();
        gitops::annotate(&mut map, &gitops::KEEP);
        *annotations = serde_json::to_value(map).unwrap_or_default();
        files.push((file.to_owned(), crate::yaml::document(&crd).into()));
    }
    for (name, t) in templates {
        let mut t = t.clone();
        t.metadata.namespace = None;
        let labels = t.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into());
        files.push((format!("vditemplate-{name}.yaml"), crate::yaml::document(&t).into()));
    }
    files
}
