//! vdi-webhook: the mutating and validating admission server for VDI objects. `app` builds the
//! whole HTTP surface (so tests call it in-process); `server` adds TLS, certificate reloading and
//! graceful shutdown; the decisions themselves come from `vdi_crds` (the same code the renderer
//! runs), so a rendered Pod passes admission unchanged.

pub mod metrics;
pub mod mutate;
pub mod password;
pub mod pod_view;
pub mod review;
pub mod server;
pub mod service;
pub mod status;
pub mod templates;
pub mod tls;
pub mod validate;
pub mod workers;

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};

pub use metrics::Metrics;
pub use templates::Templates;

/// Largest AdmissionReview accepted. The API server's objects are at most 1.5 MiB in etcd; a
/// review carries the object and the old object, with room to spare.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Bytes of review bodies held at once, across all requests: sixteen of the largest (64 MiB), half
/// the Deployment's memory limit. A request takes its share as the bytes arrive, so a client that
/// trickles or stalls its body holds what it has sent, not a slot a real review waits for.
pub const MAX_BODY_BYTES_IN_FLIGHT: usize = 16 * MAX_BODY;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// VDITemplates, from files or the cluster.
    pub templates: Templates,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Extended resource of one GPU (the renderer's `gpu.resourceName` setting). Shared, not
    /// owned: the state is cloned for every request.
    pub gpu_resource: Arc<str>,
    /// The TURN shared secret, when the platform has a TURN server: each session Secret gets its
    /// own TURN credentials minted with it.
    pub turn_secret: Option<Arc<mutate::TurnSecret>>,
    /// When set, a person may create a VDISession only for themselves; these accounts (the
    /// GitOps controllers') may create one for anybody.
    pub gitops_accounts: Option<Arc<Vec<String>>>,
}

/// The admission server's routes: `POST /mutate`, `POST /validate` (answered by [`service`]
/// directly), `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub fn app(state: AppState) -> service::Admission {
    let router = Router::new()
        // Reviews are POSTs and never reach the router: any other method there is refused (405).
        .route("/mutate", MethodRouter::new())
        .route("/validate", MethodRouter::new())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            server::REQUEST_TIMEOUT,
        ))
        .with_state(state.clone());
    service::Admission::new(state, router)
}

/// The metrics routes alone, for `--metrics-listen` on a separate plain-HTTP port.
pub fn metrics_app(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics_handler)).with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.templates.is_ready() {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "templates not loaded yet").into_response()
    }
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.encode()).into_response()
}
