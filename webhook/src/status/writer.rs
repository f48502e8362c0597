//! The loop that keeps every VDISession's status true: two reflectors (sessions, and Pods that
//! carry the session label), a queue of session keys that changed, and a server-side-apply patch
//! of the status subresource only when the derived status differs from what the session shows.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::{StreamExt, channel::mpsc};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use vdi_crds::{VDISession, VDISessionStatus, labels};

use super::{derive::derive, metrics::StatusMetrics};

/// Field manager of every status patch.
pub const FIELD_MANAGER: &str = "vdi-status";

/// A session, by namespace and name.
type Key = (String, String);

fn key_of(s: &VDISession) -> Key {
    (s.namespace().unwrap_or_default(), s.name_any())
}

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// A watch stream ended, which kube's watcher never does on its own.
    #[error("the {0} watch ended")]
    WatchEnded(&'static str),
}

struct State {
    client: Client,
    sessions: Store<VDISession>,
    pods: Store<Pod>,
    /// What this writer last sent per session, until the watch shows it: a second event for the
    /// same session arriving before then must not send the same patch again.
    in_flight: HashMap<Key, VDISessionStatus>,
    metrics: Arc<StatusMetrics>,
    retry: mpsc::UnboundedSender<Key>,
}

/// Runs until a watch fails for good. Pods are watched only when they carry the session label;
/// desktop Pods themselves have no API access at all.
pub async fn run(client: Client, metrics: Arc<StatusMetrics>) -> Result<(), WriterError> {
    let (sessions, session_writer) = reflector::store::<VDISession>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let session_events = watcher(Api::<VDISession>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(session_writer)
        .applied_objects()
        // A session is looked at when it is new or edited. A change of its status alone is not a
        // reason: with two replicas, one that has not yet seen the Pod's latest state would
        // otherwise answer the other's write with an older status. The Pod's events drive the
        // rest, and the periodic pass below corrects anything else.
        .filter_map(|r| async move {
            match r {
                Ok(s) => {
                    let seen = s.status.as_ref().and_then(|st| st.observed_generation);
                    (s.status.is_none() || seen != s.metadata.generation).then(|| Ok(key_of(&s)))
                }
                Err(e) => Some(Err(("VDISession", e))),
            }
        });
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default().labels(labels::SESSION))
        .default_backoff()
        .reflect(pod_writer)
        .touched_objects()
        .filter_map(|r| async move {
            match r {
                // A Pod names its session by label; the session's own Pod has its name.
                Ok(p) => p.labels().get(labels::SESSION).map(|s| Ok((p.namespace().unwrap_or_default(), s.clone()))),
                Err(e) => Some(Err(("Pod", e))),
            }
        });
    let (retry, retries) = mpsc::unbounded();
    let events = futures::stream::select(futures::stream::select(session_events, pod_events), retries.map(Ok));
    let mut events = std::pin::pin!(events);
    let mut state = State { client, sessions, pods, in_flight: HashMap::new(), metrics, retry };
    // Until both caches hold the whole cluster, a session would look as if it had no Pod: events
    // before then only fill the caches, and one pass over every session follows.
    let (sessions, pods) = (state.sessions.clone(), state.pods.clone());
    let ready = async move {
        let _ = sessions.wait_until_ready().await;
        let _ = pods.wait_until_ready().await;
    };
    let mut ready = std::pin::pin!(ready);
    let mut is_ready = false;
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut ready, if !is_ready => {
                is_ready = true;
                resync.reset();
                tracing::info!(sessions = state.sessions.state().len(), "caches ready; bringing every status up to date");
                state.reconcile_all().await;
            }
            _ = resync.tick(), if is_ready => state.reconcile_all().await,
            event = events.next() => match event {
                None => break,
                Some(Err((what, e))) => tracing::warn!(watch = what, error = %e, "watch error; retrying"),
                Some(Ok(key)) if is_ready => state.reconcile(key).await,
                Some(Ok(_)) => {}
            },
        }
    }
    Err(WriterError::WatchEnded("VDISession or Pod"))
}

/// How often every session is looked at even without an event (a status changed by hand, a write
/// that raced another replica's).
const RESYNC: Duration = Duration::from_secs(300);

impl State {
    async fn reconcile_all(&mut self) {
        let all: Vec<Key> = self.sessions.state().iter().map(|s| key_of(s)).collect();
        for k in all {
            self.reconcile(k).await;
        }
    }

    async fn reconcile(&mut self, key: Key) {
        let (ns, name) = &key;
        let Some(session) = self.sessions.get(&ObjectRef::new(name).within(ns)) else {
            self.in_flight.remove(&key);
            return;
        };
        let pod =
            self.pods.get(&ObjectRef::new(name).within(ns)).filter(|p| p.labels().get(labels::SESSION) == Some(name));
        let status = derive(&session, pod.as_deref());
        let shown = session.status.clone().unwrap_or_default();
        // What this replica last wrote, until the cache shows it: the cache may still show
        // another replica's earlier write, which ours has since replaced on the server, so the
        // cache agreeing with `status` proves nothing while ours differs from it.
        let mine = self.in_flight.get(&key);
        if status == shown && mine.is_none_or(|m| *m == status) {
            self.in_flight.remove(&key);
            return;
        }
        if mine == Some(&status) {
            return;
        }
        let patch = serde_json::json!({
            "apiVersion": vdi_crds::API_VERSION,
            "kind": "VDISession",
            "metadata": {"name": name, "namespace": ns},
            "status": status,
        });
        let api: Api<VDISession> = Api::namespaced(self.client.clone(), ns);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => {
                tracing::info!(namespace = %ns, session = %name, phase = ?status.phase, message = status.message.as_deref().unwrap_or(""), "status written");
                self.metrics.patched(status.phase);
                self.in_flight.insert(key, status);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tracing::debug!(namespace = %ns, session = %name, "session gone before its status was written");
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, session = %name, error = %e, "writing the status failed; retrying in 5 s");
                self.metrics.errors.inc();
                let retry = self.retry.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let _ = retry.unbounded_send(key);
                });
            }
        }
    }
}
