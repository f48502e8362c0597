//! VDITemplates for admission: read once from files (`--templates PATH`, the renderer's own
//! reader and validation) or kept current from the cluster by a kube watch (a reflector cache).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use kube::runtime::{
    WatchStreamExt,
    reflector::{self, ObjectRef, Store},
    watcher,
};
use vdi_crds::VDITemplate;

/// Where templates come from, and the lookup the handlers use.
#[derive(Clone)]
pub enum Templates {
    /// Loaded from files at start-up.
    Files(Arc<BTreeMap<String, Arc<VDITemplate>>>),
    /// Watched in the cluster.
    Cluster(Store<VDITemplate>, Arc<std::sync::atomic::AtomicBool>),
}

/// Why templates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    /// The files had problems (each with file, line and field).
    #[error("{0}")]
    Invalid(vdi_documents::Diagnostics),
}

impl Templates {
    /// Reads every VDITemplate under `paths` (files or folders); other kinds in the same files
    /// (sessions, for example) are ignored, invalid templates are errors.
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, TemplatesError> {
        use vdi_documents::{Diagnostics, Kind};
        let files = vdi_documents::collect_files(paths).map_err(TemplatesError::Invalid)?;
        let input = vdi_documents::read(&files, &vdi_documents::Schemas::new());
        // Sessions and other manifests may share the templates' folder: only what is wrong with
        // the documents themselves counts.
        let problems: Vec<_> = input.diagnostics.into_iter().filter(|d| d.kind != Kind::ForeignKind).collect();
        if !problems.is_empty() {
            return Err(TemplatesError::Invalid(Diagnostics(problems)));
        }
        let map =
            input.templates.into_iter().filter_map(|(t, _)| Some((t.metadata.name.clone()?, Arc::new(t)))).collect();
        Ok(Self::Files(Arc::new(map)))
    }

    /// Starts a watch of VDITemplates in the cluster; the store fills in the background.
    pub fn from_cluster(client: kube::Client) -> Self {
        let api: kube::Api<VDITemplate> = kube::Api::all(client);
        let (reader, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, waiter) = (ready.clone(), reader.clone());
        tokio::spawn(async move {
            if waiter.wait_until_ready().await.is_ok() {
                flag.store(true, std::sync::atomic::Ordering::Release);
                tracing::info!(templates = waiter.len(), "VDITemplate cache synced");
            }
        });
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut applied = std::pin::pin!(stream.applied_objects());
            while let Some(event) = applied.next().await {
                match event {
                    Ok(t) => tracing::debug!(template = t.metadata.name.as_deref().unwrap_or(""), "template changed"),
                    Err(e) => tracing::warn!(error = %e, "VDITemplate watch error; retrying"),
                }
            }
        });
        Self::Cluster(reader, ready)
    }

    /// A fixed set, for tests.
    pub fn fixed(templates: impl IntoIterator<Item = VDITemplate>) -> Self {
        Self::Files(Arc::new(
            templates.into_iter().filter_map(|t| Some((t.metadata.name.clone()?, Arc::new(t)))).collect(),
        ))
    }

    /// The template named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<VDITemplate>> {
        match self {
            Self::Files(map) => map.get(name).cloned(),
            Self::Cluster(store, _) => store.get(&ObjectRef::new(name)),
        }
    }

    /// True once templates can be answered from (files read, or the watch's first list done).
    pub fn is_ready(&self) -> bool {
        match self {
            Self::Files(_) => true,
            Self::Cluster(_, ready) => ready.load(std::sync::atomic::Ordering::Acquire),
        }
    }
}
