//! `vdi-status` against a stand-in API server (no kube-apiserver can run here) that speaks what
//! kube's client sends and expects: paged lists with a resourceVersion, newline-delimited watch
//! events, and server-side-apply PATCHes of the status subresource. The Pods it serves are the
//! fixtures in tests/fixtures/pods, in the shapes the scheduler and the kubelet write. Each phase
//! is asserted from the patches the writer sent; a restarted writer and two replicas at once
//! leave the same status, and an unchanged Pod sends nothing.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch},
};
use futures::channel::mpsc;
use serde_json::{Value, json};
use vdi_e2e::{Logged, bin, repo};

type Key = (String, String);

/// One PATCH as the stand-in received it.
#[derive(Debug, Clone)]
struct Patch {
    key: Key,
    query: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    sessions: BTreeMap<Key, Value>,
    pods: BTreeMap<Key, Value>,
    patches: Vec<Patch>,
    watchers: Vec<(&'static str, mpsc::UnboundedSender<Result<Bytes, Infallible>>)>,
    /// Every event with its resourceVersion: a watch from version N first gets those after N,
    /// as the API server replays what happened between a client's list and its watch.
    events: Vec<(&'static str, u64, String)>,
}

#[derive(Clone, Default)]
struct ApiServer(Arc<Mutex<Inner>>);

fn key_of(v: &Value) -> Key {
    let m = &v["metadata"];
    (m["namespace"].as_str().unwrap_or_default().to_owned(), m["name"].as_str().unwrap_or_default().to_owned())
}

fn query_has(query: &str, pair: &str) -> bool {
    // kube writes `?&a=b&c=d`; empty pairs are skipped.
    query.split('&').any(|p| p == pair)
}

impl ApiServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `object` (a session or a Pod) with a new resourceVersion and tells the watchers.
    fn put(&self, kind: &'static str, mut object: Value, event: &str) {
        let mut inner = self.lock();
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        let key = key_of(&object);
        let map = if kind == "pods" { &mut inner.pods } else { &mut inner.sessions };
        if event == "DELETED" {
            map.remove(&key);
        } else {
            map.insert(key, object.clone());
        }
        let line = format!("{}\n", json!({"type": event, "object": object}));
        let rv = inner.rv;
        inner.events.push((kind, rv, line.clone()));
        inner.watchers.retain(|(k, tx)| *k != kind || tx.unbounded_send(Ok(Bytes::from(line.clone()))).is_ok());
    }

    fn session(&self, ns: &str, name: &str) -> Value {
        self.lock().sessions.get(&(ns.to_owned(), name.to_owned())).cloned().unwrap_or(Value::Null)
    }

    fn patches(&self) -> Vec<Patch> {
        self.lock().patches.clone()
    }

    fn watchers(&self) -> usize {
        self.lock().watchers.iter().filter(|(_, tx)| !tx.is_closed()).count()
    }
}

async fn list_or_watch(api: ApiServer, kind: &'static str, query: String, headers: HeaderMap) -> Response {
    let selector = query_has(&query, "labelSelector=vdi.kasm.io%2Fsession")
        || query_has(&query, "labelSelector=vdi.kasm.io/session");
    if kind == "pods" {
        assert!(selector, "Pods are watched by the session label only: {query}");
    }
    if query_has(&query, "watch=true") {
        let (tx, rx) = mpsc::unbounded();
        let since: u64 =
            query.split('&').find_map(|p| p.strip_prefix("resourceVersion=")).and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut inner = api.lock();
        for (_, _, line) in inner.events.iter().filter(|(k, rv, _)| *k == kind && *rv > since) {
            let _ = tx.unbounded_send(Ok(Bytes::from(line.clone())));
        }
        inner.watchers.push((kind, tx));
        return ([("content-type", "application/json")], Body::from_stream(rx)).into_response();
    }
    let inner = api.lock();
    let map = if kind == "pods" { &inner.pods } else { &inner.sessions };
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if kind == "vdisessions" && accept.contains("as=Table") {
        return Json(table(map.values(), &inner.rv.to_string())).into_response();
    }
    let (list_kind, api_version) =
        if kind == "pods" { ("PodList", "v1") } else { ("VDISessionList", "vdi.kasm.io/v1alpha1") };
    Json(json!({
        "kind": list_kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": map.values().collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn patch_status(
    State(api): State<ApiServer>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let key = (ns, name);
    let Some(mut session) = api.lock().sessions.get(&key).cloned() else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
        return (StatusCode::NOT_FOUND, Json(status)).into_response();
    };
    api.lock().patches.push(Patch { key, query: query.unwrap_or_default(), content_type, body: body.clone() });
    // One field manager owns the whole status: applying it replaces what that manager wrote.
    session["status"] = body["status"].clone();
    api.put("vdisessions", session.clone(), "MODIFIED");
    Json(api.session(&key_of(&session).0, &key_of(&session).1)).into_response()
}

/// Server-side printing as the API server does it for a CRD: the CRD's own printer columns
/// (from vdi-crds, as installed), evaluated per object, dates shown as ages.
fn table<'a>(objects: impl Iterator<Item = &'a Value>, rv: &str) -> Value {
    let crd = vdi_crds::crd_yaml::crd("VDISession");
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"].as_array().cloned().unwrap_or_default();
    let mut defs = vec![json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0})];
    defs.extend(columns.iter().map(|c| {
        json!({"name": c["name"], "type": c["type"], "format": "", "description": c["description"], "priority": c["priority"].as_i64().unwrap_or(0)})
    }));
    let rows: Vec<Value> = objects
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &columns {
                let path = c["jsonPath"].as_str().unwrap_or_default();
                let v = path.trim_start_matches('.').split('.').fold(o, |v, k| &v[k]);
                cells.push(match (c["type"].as_str(), v.as_str()) {
                    (Some("date"), Some(t)) => json!(age(t)),
                    _ if v.is_null() => json!("<none>"),
                    _ => v.clone(),
                });
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "columnDefinitions": defs, "rows": rows})
}

/// How kubectl shows an age (`45s`, `3m12s`, `25m`, `5h10m`, `2d`).
fn age(timestamp: &str) -> String {
    let then: k8s_openapi::jiff::Timestamp = timestamp.parse().unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    let s = k8s_openapi::jiff::Timestamp::now().as_second() - then.as_second();
    let (m, h) = (s / 60, s / 3600);
    if s < 120 {
        format!("{s}s")
    } else if s < 600 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if s < 10_800 {
        format!("{m}m")
    } else if s < 28_800 {
        format!("{h}h{}m", m % 60)
    } else if s < 172_800 {
        format!("{h}h")
    } else {
        format!("{}d", s / 86_400)
    }
}

fn router(api: ApiServer) -> Router {
    let pods = json!({"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list", "watch"], "shortNames": ["po"]});
    Router::new()
        // Discovery, in the legacy form kubectl falls back to.
        .route("/api", get(|| async { Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})) }))
        .route(
            "/apis",
            get(|| async {
                let gv = json!({"groupVersion": "vdi.kasm.io/v1alpha1", "version": "v1alpha1"});
                Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "vdi.kasm.io", "versions": [gv], "preferredVersion": gv}]}))
            }),
        )
        .route("/api/v1", get(move || async move { Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [pods]})) }))
        .route(
            "/apis/vdi.kasm.io/v1alpha1",
            get(|| async {
                Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "vdi.kasm.io/v1alpha1", "resources": [
                    {"name": "vdisessions", "singularName": "vdisession", "namespaced": true, "kind": "VDISession",
                     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"], "shortNames": ["vdi"], "categories": ["vdi"]},
                    {"name": "vdisessions/status", "singularName": "", "namespaced": true, "kind": "VDISession", "verbs": ["get", "patch", "update"]},
                ]}))
            }),
        )
        .route(
            "/api/v1/pods",
            get(|State(api): State<ApiServer>, RawQuery(q): RawQuery, h: HeaderMap| {
                list_or_watch(api, "pods", q.unwrap_or_default(), h)
            }),
        )
        .route(
            "/apis/vdi.kasm.io/v1alpha1/vdisessions",
            get(|State(api): State<ApiServer>, RawQuery(q): RawQuery, h: HeaderMap| {
                list_or_watch(api, "vdisessions", q.unwrap_or_default(), h)
            }),
        )
        .route("/apis/vdi.kasm.io/v1alpha1/namespaces/{ns}/vdisessions/{name}/status", patch(patch_status))
        .with_state(api)
}

fn fixture(name: &str) -> Value {
    let path = repo().join(format!("tests/fixtures/pods/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

/// The fixture Pod `name`, as the Pod of session `session`.
fn pod_of(name: &str, session: &str) -> Value {
    let mut p = fixture(name);
    p["metadata"]["name"] = json!(session);
    p["metadata"]["labels"]["vdi.kasm.io/session"] = json!(session);
    p["metadata"]["labels"]["app.kubernetes.io/instance"] = json!(session);
    p
}

fn session(name: &str) -> Value {
    json!({
        "apiVersion": "vdi.kasm.io/v1alpha1",
        "kind": "VDISession",
        "metadata": {
            "name": name, "namespace": "vdi", "generation": 2, "uid": format!("uid-{name}"),
            "creationTimestamp": "2026-11-30T08:59:59Z",
            "annotations": {"vdi.kasm.io/url": format!("https://{name}-vdi.vdi.example.com")},
        },
        "spec": {"user": format!("{name}@example.com"), "template": "ubuntu-desktop", "timeout": "8h",
                 "resources": {"gpu": 0, "memory": "4Gi", "cpu": "2"}},
    })
}

struct Writer(Logged);

fn start_writer(dir: &std::path::Path) -> Writer {
    let mut cmd = Command::new(bin("vdi-status"));
    cmd.env("KUBECONFIG", dir.join("kubeconfig"))
        .env("VDI_STATUS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("KUBERNETES_SERVICE_HOST");
    Writer(Logged::spawn(&mut cmd))
}

/// Waits until `ok` holds for the stand-in, or fails with what the writer logged.
fn wait(api: &ApiServer, writers: &[&Writer], what: &str, ok: impl Fn(&ApiServer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok(api) {
        let logs: Vec<String> = writers.iter().map(|w| w.0.log()).collect();
        assert!(Instant::now() < deadline, "{what}: not reached; writer logs:\n{}", logs.join("\n---\n"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn phase_of(api: &ApiServer, name: &str) -> (String, String) {
    let s = api.session("vdi", name);
    (
        s["status"]["phase"].as_str().unwrap_or_default().to_owned(),
        s["status"]["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn reaches(api: &ApiServer, writers: &[&Writer], name: &str, phase: &str, says: &str) {
    wait(api, writers, &format!("{name} {phase} ({says})"), |api| {
        let (p, m) = phase_of(api, name);
        p == phase && m.contains(says)
    });
}

/// The stand-in serving on loopback, and a kubeconfig that points at it.
struct Cluster {
    api: ApiServer,
    dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let api = ApiServer::default();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(api.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: s, cluster: {{server: 'http://{addr}'}}}}]\ncontexts: [{{name: s, context: {{cluster: s, namespace: default}}}}]\ncurrent-context: s\n"
            ),
        )
        .expect("kubeconfig");
        Self { api, dir, _runtime: runtime }
    }

    /// `kubectl ARGS` against the stand-in: its stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = vdi_e2e::run(
            Command::new(vdi_e2e::tool("kubectl"))
                .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
                .arg("--cache-dir")
                .arg(self.dir.path().join("cache"))
                .args(args),
        );
        let (stdout, stderr) = vdi_e2e::text(&out);
        assert!(out.status.success(), "kubectl {args:?}: {stderr}");
        stdout
    }
}

#[test]
fn every_phase_from_the_pod_through_the_status_subresource() {
    let cluster = Cluster::start();
    let (api, dir) = (cluster.api.clone(), &cluster.dir);

    api.put("vdisessions", session("eve"), "ADDED");
    api.put("vdisessions", session("gus"), "ADDED");
    let first = start_writer(dir.path());
    reaches(&api, &[&first], "eve", "Pending", "waiting for the desktop's Pod");
    reaches(&api, &[&first], "gus", "Pending", "waiting for the desktop's Pod");
    wait(&api, &[&first], "both watches open", |api| api.watchers() >= 2);

    let steps = [
        ("pending-unschedulable", "Pending", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
        ("creating-image-pull-backoff", "Creating", "cannot pull image ghcr.io/vdi/vdi-desktop:0.1.0"),
        ("running-agent-not-ready", "Creating", "waiting for its agent"),
        ("running-ready", "Running", "ready"),
    ];
    for (i, (fixture_name, phase, says)) in steps.iter().enumerate() {
        api.put("pods", pod_of(fixture_name, "eve"), if i == 0 { "ADDED" } else { "MODIFIED" });
        reaches(&api, &[&first], "eve", phase, says);
    }
    let running = api.session("vdi", "eve");
    assert_eq!(running["status"]["url"], "https://eve-vdi.vdi.example.com");
    assert_eq!(running["status"]["startTime"], "2026-11-30T09:00:06Z");
    assert_eq!(running["status"]["observedGeneration"], 2);
    assert_eq!(running["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(running["status"]["conditions"][0]["status"], "True");

    // Every write is a server-side apply of the status subresource by vdi-status.
    let patches = api.patches();
    for p in &patches {
        assert_eq!(p.content_type, "application/apply-patch+yaml", "{p:?}");
        assert!(query_has(&p.query, "fieldManager=vdi-status") && query_has(&p.query, "force=true"), "{p:?}");
        assert_eq!(
            (p.body["apiVersion"].as_str(), p.body["kind"].as_str()),
            (Some("vdi.kasm.io/v1alpha1"), Some("VDISession"))
        );
        assert!(p.body.get("spec").is_none(), "only the status is applied: {p:?}");
    }
    // One patch per change: two Pendings, four steps.
    assert_eq!(patches.len(), 6, "{patches:#?}");

    // An unchanged Pod (a new resourceVersion, the same state) writes nothing. The Pod stream is
    // ordered, so once gus's change is written, eve's no-op was handled.
    api.put("pods", pod_of("running-ready", "eve"), "MODIFIED");
    api.put("pods", pod_of("creating-containers", "gus"), "ADDED");
    reaches(&api, &[&first], "gus", "Creating", "containers are starting");
    let after_noop = api.patches();
    assert_eq!(after_noop.len(), 7);
    assert_eq!(after_noop[6].key.1, "gus");

    // A restarted writer lists everything and finds every status true: it writes nothing.
    drop(first);
    let second = start_writer(dir.path());
    wait(&api, &[&second], "the restarted writer's watches", |api| api.watchers() >= 2);
    api.put("pods", pod_of("failed-oomkilled", "gus"), "MODIFIED");
    reaches(&api, &[&second], "gus", "Failed", "ran out of memory");
    let after_restart = api.patches();
    assert_eq!(after_restart.len(), 8, "only gus's change: {:#?}", &after_restart[7..]);

    // Two replicas at once compute the same status.
    let third = start_writer(dir.path());
    wait(&api, &[&second, &third], "both replicas' watches", |api| api.watchers() >= 4);
    api.put("pods", pod_of("terminating", "eve"), "MODIFIED");
    reaches(&api, &[&second, &third], "eve", "Terminating", "shutting down");
    api.put("pods", pod_of("failed-agent-message", "eve"), "MODIFIED");
    reaches(&api, &[&second, &third], "eve", "Failed", "the desktop agent stopped: no video encoder works");
    // Deleting the Pod afterwards shows the session as waiting for a Pod again.
    api.put("pods", pod_of("failed-agent-message", "eve"), "DELETED");
    reaches(&api, &[&second, &third], "eve", "Pending", "waiting for the desktop's Pod");
    // Both replicas end on the same status: another change, seen by both (each Pod stream is
    // ordered), leaves eve as it was.
    api.put("pods", pod_of("running-ready", "gus"), "MODIFIED");
    reaches(&api, &[&second, &third], "gus", "Running", "ready");
    let final_status = api.session("vdi", "eve")["status"].clone();
    assert_eq!(final_status["phase"], "Pending", "{final_status}");
    let ready = &final_status["conditions"][0];
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("PodMissing")));
    drop((second, third));
}

/// What a platform team sees: `kubectl get vdi` with the CRD's printer columns, each session in
/// the phase its Pod puts it in, and `-o wide` saying why.
#[test]
fn kubectl_get_vdi_shows_every_session_and_why() {
    let cluster = Cluster::start();
    let api = &cluster.api;
    let created = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_mins(30);
    let sessions = [
        ("design", "ana", Some("running-ready")),
        ("design", "ben", Some("pending-unschedulable")),
        ("engineering", "chen", Some("creating-image-pull-backoff")),
        ("engineering", "dana", Some("failed-oomkilled")),
        ("vdi", "eve", Some("failed-agent-message")),
        ("vdi", "gus", None),
    ];
    for (ns, name, pod) in sessions {
        let mut s = session(name);
        s["metadata"]["namespace"] = json!(ns);
        s["metadata"]["creationTimestamp"] = json!(created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        s["metadata"]["annotations"]["vdi.kasm.io/url"] = json!(format!("https://{name}-{ns}.vdi.example.com"));
        api.put("vdisessions", s, "ADDED");
        if let Some(fixture_name) = pod {
            let mut p = pod_of(fixture_name, name);
            p["metadata"]["namespace"] = json!(ns);
            p["metadata"]["annotations"]["vdi.kasm.io/url"] = json!(format!("https://{name}-{ns}.vdi.example.com"));
            api.put("pods", p, "ADDED");
        }
    }
    let writer = start_writer(cluster.dir.path());
    wait(api, &[&writer], "every session has a status", |api| {
        api.lock().sessions.values().all(|s| s["status"]["phase"].is_string())
    });
    let table = cluster.kubectl(&["get", "vdi", "-A"]);
    let wide = cluster.kubectl(&["get", "vdi", "-A", "-o", "wide"]);
    eprintln!("$ kubectl get vdi -A\n{table}\n$ kubectl get vdi -A -o wide\n{wide}");
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "USER", "TEMPLATE", "PHASE", "URL", "AGE"]);
    let row =
        |name: &str| table.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap_or_default().to_owned();
    assert!(row("ana").contains("Running") && row("ana").contains("https://ana-design.vdi.example.com"), "{table}");
    for (name, phase) in
        [("ben", "Pending"), ("chen", "Creating"), ("dana", "Failed"), ("eve", "Failed"), ("gus", "Pending")]
    {
        let r = row(name);
        assert!(r.contains(phase) && r.contains("<none>"), "{name}: {phase}, no URL before Running: {table}");
        assert!(
            r.contains(&format!("{name}@example.com")) && r.contains("ubuntu-desktop") && r.trim_end().ends_with("30m"),
            "{r}"
        );
    }
    assert!(wide.lines().next().unwrap_or_default().trim_end().ends_with("MESSAGE"), "{wide}");
    for says in [
        "Insufficient nvidia.com/gpu",
        "cannot pull image",
        "ran out of memory",
        "no video encoder works",
        "waiting for the desktop's Pod",
    ] {
        assert!(wide.contains(says), "-o wide says `{says}`: {wide}");
    }
}
