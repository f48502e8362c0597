//! HTTP on the agent's port: the web client (`/`, its modules under `/js/`, `/client.css`), signalling at
//! `/ws`, and `/healthz`, `/readyz`; Prometheus metrics on a port of their own (`metrics_app`),
//! so nothing but the page and its socket is behind the session's URL. `guard` decides who gets
//! in: credentials, attempt limits, and a socket bound to a served page and its origin. The page
//! is served with headers that keep it out of frames, caches and referrers, and a CSP without
//! inline code.

pub mod guard;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, Path, Request, State, WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};

pub use guard::Guard;

use crate::session::{self, Agent};

/// The web client, embedded in the binary.
pub const INDEX_HTML: &str = include_str!("../../static/index.html");
/// The client's ES modules, by file name under `/js/` (`main.js` is the entry the page loads).
pub const CLIENT_MODULES: &[(&str, &str)] = &[
    ("main.js", include_str!("../../static/js/main.js")),
    ("connection.js", include_str!("../../static/js/connection.js")),
    ("protocol.js", include_str!("../../static/js/protocol.js")),
    ("pacing.js", include_str!("../../static/js/pacing.js")),
    ("keys.js", include_str!("../../static/js/keys.js")),
    ("pointer.js", include_str!("../../static/js/pointer.js")),
    ("clipboard.js", include_str!("../../static/js/clipboard.js")),
    ("overlay.js", include_str!("../../static/js/overlay.js")),
];
/// The client's styles.
pub const CLIENT_CSS: &str = include_str!("../../static/client.css");
/// Delay before answering a failed authentication, to slow down guessing.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// What the routes share.
pub struct Web {
    /// The agent.
    pub agent: Arc<Agent>,
    /// Who gets in.
    pub guard: Guard,
    /// The page's `Content-Security-Policy`.
    csp: HeaderValue,
    /// `X-Frame-Options`, when no embedder is allowed.
    frame_options: Option<HeaderValue>,
}

impl Web {
    /// The routes' state from the agent's settings.
    pub fn new(agent: Arc<Agent>) -> Self {
        let s = &agent.settings;
        let proxy = s.trusted_proxy_header.as_deref().and_then(|h| h.parse().ok());
        let guard = Guard::new(&s.basic_auth_user, s.password().unwrap_or_default(), s.allowed_origins.clone(), proxy);
        let ancestors = if s.frame_ancestors.is_empty() { "'none'".to_owned() } else { s.frame_ancestors.join(" ") };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
        );
        Self {
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")),
            frame_options: s.frame_ancestors.is_empty().then(|| HeaderValue::from_static("DENY")),
            agent,
            guard,
        }
    }
}

/// The agent's routes on its main port.
pub fn app(agent: Arc<Agent>) -> Router {
    let web = Arc::new(Web::new(agent));
    let protected = Router::new()
        .route("/", get(index))
        .route("/js/{module}", get(module))
        .route("/client.css", get(|| async { asset("text/css; charset=utf-8", CLIENT_CSS) }))
        .route("/ws", get(ws))
        .route_layer(middleware::from_fn_with_state(web.clone(), require_auth));
    Router::new()
        .merge(protected)
        .route(vdi_crds::agent::HEALTH_PATH, get(|| async { "ok" }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(vdi_crds::agent::READY_PATH, get(readyz))
        .layer(middleware::from_fn(common_headers))
        .with_state(web)
}

/// Prometheus metrics, on the metrics port (not reachable through the session's Ingress).
pub fn metrics_app(agent: Arc<Agent>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(agent)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn module(Path(name): Path<String>) -> Response {
    match CLIENT_MODULES.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => asset("text/javascript; charset=utf-8", body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn common_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

async fn index(State(web): State<Arc<Web>>) -> Response {
    let page = INDEX_HTML.replace("{{PAGE_TOKEN}}", &web.guard.issue_token());
    let mut res = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_SECURITY_POLICY, web.csp.clone()),
        ],
        page,
    )
        .into_response();
    if let Some(v) = &web.frame_options {
        res.headers_mut().insert(header::X_FRAME_OPTIONS, v.clone());
    }
    res
}

/// The page token from `?token=...` (URL-safe base64 and digits: nothing to decode).
fn token_of(uri: &Uri) -> &str {
    uri.query().unwrap_or("").split('&').find_map(|p| p.strip_prefix("token=")).unwrap_or("")
}

async fn ws(State(web): State<Arc<Web>>, headers: HeaderMap, uri: Uri, upgrade: WebSocketUpgrade) -> Response {
    if !web.guard.origin_ok(&headers) {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        tracing::warn!(%origin, "signalling refused: a page of another origin");
        web.agent.metrics.auth_failures.inc();
        return (StatusCode::FORBIDDEN, "this page's origin may not open the desktop\n").into_response();
    }
    if !web.guard.token_ok(token_of(&uri)) {
        tracing::warn!("signalling refused: no page token from this agent");
        return (StatusCode::FORBIDDEN, "open the desktop from its page\n").into_response();
    }
    let agent = web.agent.clone();
    // Signalling is SDP and ICE candidates, a few KiB each; the library's default (64 MiB a
    // message) would let one socket make the agent buffer that much before parsing it.
    upgrade
        .max_message_size(SIGNALLING_MAX_BYTES)
        .max_frame_size(SIGNALLING_MAX_BYTES)
        .on_upgrade(move |socket| session::run(agent, crate::link::websocket::WebSocketSignalling::new(socket)))
}

/// The largest signalling message the agent reads (an SDP offer with every codec is about 10 KiB).
pub const SIGNALLING_MAX_BYTES: usize = 256 << 10;

/// The agent serves only after the display opened and an encoder was chosen (it exits
/// otherwise), so answering at all means ready.
async fn readyz(State(web): State<Arc<Web>>) -> String {
    format!("ready: encoder {}", web.agent.encoder.element())
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], agent.metrics.encode())
        .into_response()
}

async fn require_auth(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let source = web.guard.source(req.headers(), peer);
    let shown = source.map(|s| s.to_string()).unwrap_or_default();
    // A refused attempt's credentials are not looked at: guessing faster gains nothing.
    if let Err(refusal) = web.guard.admit(source) {
        web.agent.metrics.auth_failures.inc();
        let wait = match refusal {
            guard::Refusal::Backoff(d) => d.as_secs().max(1),
            guard::Refusal::Busy => 1,
        };
        tracing::warn!(source = %shown, path = %req.uri().path(), ?refusal, "attempt refused without checking");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            "too many failed attempts; try again later\n",
        )
            .into_response();
    }
    if web.guard.authorized(req.headers().get(header::AUTHORIZATION)) {
        web.guard.succeeded(source);
        return next.run(req).await;
    }
    let had_credentials = req.headers().contains_key(header::AUTHORIZATION);
    web.agent.metrics.auth_failures.inc();
    if had_credentials {
        web.guard.failed(source);
        tracing::warn!(source = %shown, path = %req.uri().path(), "wrong credentials");
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
    } else {
        tracing::debug!(source = %shown, path = %req.uri().path(), "no credentials; asking for them");
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"vdi desktop\", charset=\"UTF-8\"")],
        "authentication required\n",
    )
        .into_response()
}
