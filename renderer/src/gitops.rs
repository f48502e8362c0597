//! What Argo CD and Flux need to be told on the objects themselves, in one place: which objects
//! are recreated when edited, which are never pruned, and which may be applied before their CRD
//! exists. README "GitOps" explains each choice.

/// Argo CD's per-resource sync options.
pub const ARGO_SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
/// Flux: delete and recreate an object whose immutable fields changed.
pub const FLUX_FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
/// Flux: never delete the object when it leaves the source.
pub const FLUX_PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
/// Flux: create the object once and never overwrite it.
pub const FLUX_SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";

/// The session Pod. Its spec is immutable, so an edited session is deleted and created again (the
/// desktop restarts; its home volume stays). Argo CD judges a running `restartPolicy: Never` Pod
/// Progressing for ever, so the Pod stays out of the Application's health; the VDISession's
/// health check (examples/argocd/argocd-cm-patch.yaml) reports the desktop instead.
pub const POD: [(&str, &str); 3] = [
    (ARGO_SYNC_OPTIONS, "Force=true,Replace=true"),
    ("argocd.argoproj.io/ignore-healthcheck", "true"),
    (FLUX_FORCE, "enabled"),
];

/// Objects whose loss would lose data or every session (home volumes, namespaces, CRDs) stay in
/// the cluster when they leave git; removing them is a deliberate act.
pub const KEEP: [(&str, &str); 2] = [(ARGO_SYNC_OPTIONS, "Prune=false,Delete=false"), (FLUX_PRUNE, "disabled")];

/// The auth Secret: applied server-side, so Argo CD never removes or reports the password the
/// webhook filled in, and created once by Flux.
pub const SECRET: [(&str, &str); 2] = [(ARGO_SYNC_OPTIONS, "ServerSideApply=true"), (FLUX_SSA, "IfNotPresent")];

/// A VDISession lives in a session folder while its CRD comes from the cluster folder, which
/// Argo CD may not have applied yet when it dry-runs a session folder.
pub const SESSION: [(&str, &str); 1] = [(ARGO_SYNC_OPTIONS, "SkipDryRunOnMissingResource=true")];

/// Inserts `pairs` into an annotation map.
pub fn annotate(map: &mut std::collections::BTreeMap<String, String>, pairs: &[(&str, &str)]) {
    map.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
}
