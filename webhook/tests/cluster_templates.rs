//! Templates from the cluster (`Templates::from_cluster`): kube's reflector against an HTTP
//! server that speaks the API server's list and watch protocol for VDITemplates. No
//! kube-apiserver runs on this machine (Debian ships none), so this stand-in serves the two
//! calls a reflector makes, with the real kube client, watcher and store on the other side.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::Uri,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use vdi_webhook::{AppState, Metrics, Templates, review};

#[derive(Clone)]
struct FakeApi {
    initial: Vec<Value>,
    /// Watch events the test sends; taken by the first watch request.
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<Value>>>>,
}

async fn templates(State(api): State<FakeApi>, uri: Uri) -> Response {
    let watching = uri.query().unwrap_or("").split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    if !watching {
        let list = json!({
            "apiVersion": "vdi.kasm.io/v1alpha1",
            "kind": "VDITemplateList",
            "metadata": {"resourceVersion": "1"},
            "items": api.initial,
        });
        return axum::Json(list).into_response();
    }
    let Some(mut rx) = api.events.lock().await.take() else {
        // A second watch (after a reconnect) gets no events and stays open.
        return Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>()).into_response();
    };
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|e| e.map(|e: Value| Ok::<_, std::io::Error>(format!("{e}\n").into_bytes())))
    });
    Body::from_stream(stream).into_response()
}

fn template(name: &str, rv: u32, max_gpu: u32) -> Value {
    json!({
        "apiVersion": "vdi.kasm.io/v1alpha1",
        "kind": "VDITemplate",
        "metadata": {"name": name, "resourceVersion": rv.to_string(), "uid": format!("uid-{name}")},
        "spec": {
            "image": "registry.example/desktop:1",
            "resources": {"defaultGPU": 0, "maxGPU": max_gpu, "defaultMemory": "4Gi", "maxMemory": "16Gi"},
        },
    })
}

async fn start_api(initial: Vec<Value>) -> (SocketAddr, mpsc::UnboundedSender<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let api = FakeApi { initial, events: Arc::new(Mutex::new(Some(rx))) };
    let app = Router::new().route("/apis/vdi.kasm.io/v1alpha1/vditemplates", get(templates)).with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, tx)
}

/// Waits (up to 20 s) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn session_review(template: &str, gpu: u32) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b4f0f0e-0000-4000-8000-000000000001",
            "kind": {"group": "vdi.kasm.io", "version": "v1alpha1", "kind": "VDISession"},
            "resource": {"group": "vdi.kasm.io", "version": "v1alpha1", "resource": "vdisessions"},
            "operation": "CREATE",
            "namespace": "team-a",
            "name": "alice",
            "userInfo": {"username": "argocd"},
            "object": {
                "apiVersion": "vdi.kasm.io/v1alpha1",
                "kind": "VDISession",
                "metadata": {"name": "alice", "namespace": "team-a"},
                "spec": {"user": "alice@example.com", "template": template, "resources": {"gpu": gpu}},
            },
            "dryRun": false,
        },
    }))
    .expect("json")
}

async fn allowed(state: &AppState, body: &[u8]) -> (bool, String) {
    let response = review::handle(state, review::Mode::Validate, body);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let v: Value = serde_json::from_slice(&bytes).expect("review");
    (v["response"]["allowed"] == true, v["response"]["status"]["message"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn templates_follow_the_cluster_through_a_watch() {
    let (addr, events) = start_api(vec![template("office", 1, 0)]).await;
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let templates = Templates::from_cluster(client);
    let state = AppState {
        templates: templates.clone(),
        metrics: Arc::new(Metrics::new()),
        gpu_resource: vdi_crds::pod::GPU_RESOURCE.into(),
        turn_secret: None,
        gitops_accounts: None,
    };

    // Not ready (and /readyz says so) until the first list is in the cache.
    eventually("the first list is cached", || templates.is_ready()).await;
    assert!(templates.get("office").is_some());
    assert!(allowed(&state, &session_review("office", 0)).await.0);
    let (ok, why) = allowed(&state, &session_review("blender", 1)).await;
    assert!(!ok && why.contains("blender"), "an unknown template is refused: {why}");

    // Added in the cluster: admitted without a restart.
    events.send(json!({"type": "ADDED", "object": template("blender", 2, 4)})).expect("send");
    eventually("the new template is cached", || templates.get("blender").is_some()).await;
    assert!(allowed(&state, &session_review("blender", 2)).await.0);

    // Changed: the new bounds apply.
    events.send(json!({"type": "MODIFIED", "object": template("blender", 3, 1)})).expect("send");
    eventually("the change is cached", || {
        templates.get("blender").and_then(|t| t.spec.resources.as_ref().and_then(|r| r.max_gpu)) == Some(1i32)
    })
    .await;
    let (ok, why) = allowed(&state, &session_review("blender", 2)).await;
    assert!(!ok && why.contains("GPU"), "{why}");

    // Deleted: refused again.
    events.send(json!({"type": "DELETED", "object": template("blender", 4, 1)})).expect("send");
    eventually("the deletion is cached", || templates.get("blender").is_none()).await;
    assert!(!allowed(&state, &session_review("blender", 1)).await.0);
}
