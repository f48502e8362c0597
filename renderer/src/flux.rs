//! `--flux SOURCE`: the Flux Kustomizations for an output folder, one per leaf folder (the cluster
//! folder and every shard), so nobody lists 250 shard folders by hand. They go to `_flux/` in the
//! output, which one hand-written Kustomization applies (examples/flux); every session folder
//! `dependsOn` the cluster folder's Kustomization, so CRDs, templates and namespaces come first.

use std::sync::Arc;

use serde_json::json;

/// Folder of the generated Flux Kustomizations inside the output.
pub const DIR: &str = "_flux";
/// Name of the cluster folder's Kustomization.
pub const CLUSTER: &str = "vdi-cluster";

/// Where the Kustomizations point: the GitRepository and the output folder's path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxTarget {
    /// Namespace of the GitRepository (and of the Kustomizations).
    pub namespace: String,
    /// Name of the GitRepository.
    pub source: String,
    /// The output folder's path in the repository, `./rendered` style.
    pub path: String,
}

impl FluxTarget {
    /// Parses `SOURCE` (`name` or `namespace/name`, namespace default `flux-system`).
    pub fn new(source: &str, path: &str) -> Result<Self, String> {
        let (namespace, name) = source.split_once('/').unwrap_or(("flux-system", source));
        for (what, v) in [("namespace", namespace), ("name", name)] {
            vdi_crds::names::check_dns_label(v, 63)
                .map_err(|e| format!("--flux {source}: the GitRepository {what} {e}"))?;
        }
        let path = path.trim_end_matches('/');
        let path = if path.starts_with("./") || path == "." { path.to_owned() } else { format!("./{path}") };
        Ok(Self { namespace: namespace.to_owned(), source: name.to_owned(), path })
    }

    /// The Kustomization of leaf folder `folder` (relative to the output, `/`-separated).
    pub fn kustomization(&self, folder: &str) -> (String, Arc<str>) {
        let cluster = folder == crate::cluster::DIR;
        let name = if cluster { CLUSTER.to_owned() } else { format!("vdi-{}", folder.replace('/', "-")) };
        let mut spec = json!({
            "interval": "10m",
            "retryInterval": "1m",
            "timeout": "5m",
            "path": format!("{}/{folder}", self.path),
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": self.source},
            // The cluster folder is ready once its CRDs are established; a session folder does
            // not wait for desktops to start (vdi-status reports that on each VDISession).
            "wait": cluster,
        });
        if !cluster {
            spec["dependsOn"] = json!([{"name": CLUSTER}]);
        }
        let doc = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {(vdi_crds::labels::MANAGED_BY): vdi_crds::labels::MANAGED_BY_VALUE},
            },
            "spec": spec,
        });
        (format!("{name}.yaml"), crate::yaml::document(&doc).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_path_forms() {
        let t = FluxTarget::new("desktops", "rendered/").expect("valid");
        assert_eq!(
            (t.namespace.as_str(), t.source.as_str(), t.path.as_str()),
            ("flux-system", "desktops", "./rendered")
        );
        let t = FluxTarget::new("gitops/desktops", "./out").expect("valid");
        assert_eq!((t.namespace.as_str(), t.path.as_str()), ("gitops", "./out"));
        assert!(FluxTarget::new("Bad_Name", "x").is_err());
        let (file, yaml) = t.kustomization("eng/shard-001");
        assert_eq!(file, "vdi-eng-shard-001.yaml");
        assert!(yaml.contains("path: ./out/eng/shard-001") && yaml.contains("- name: vdi-cluster"), "{yaml}");
    }
}
