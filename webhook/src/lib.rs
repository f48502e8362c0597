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
pub mod status;
pub mod templates;
pub mod tls;
pub mod validate;
pub mod workers;

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};

pub use metrics::Metrics;
pub use templates::Templates;

/// Largest AdmissionReview accepted. The API server's objects are at most 1.5 MiB in etcd; a
/// review carries the object and the old object, with room to spare.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Reviews answered at once; more wait for a slot.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 16;

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

/// The admission server's routes: `POST /mutate`, `POST /validate`, `GET /healthz`,
/// `GET /readyz`, `GET /metrics`.
pub fn app(state: AppState) -> Router {
    // Reviews in flight at once: each may hold a body of up to MAX_BODY while it is read, so this
    // bounds that memory (16 x 4 MiB = 64 MiB, half the Deployment's limit); more wait their turn.
    let reviews = Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/validate", post(validate_handler))
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_REVIEWS_IN_FLIGHT));
    Router::new()
        .merge(reviews)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // A request, body included, gets this long: a client trickling its body gives up its
        // slot (the API server's own timeout for a webhook is at most 30 s, ours 5 s).
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            server::REQUEST_TIMEOUT,
        ))
        .with_state(state)
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

async fn mutate_handler(State(state): State<AppState>, body: Bytes) -> Response {
    review::handle(&state, review::Mode::Mutate, &body)
}

async fn validate_handler(State(state): State<AppState>, body: Bytes) -> Response {
    review::handle(&state, review::Mode::Validate, &body)
}
