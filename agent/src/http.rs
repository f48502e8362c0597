//! HTTP routes on the agent's one port: the embedded web client at `/`, signalling at `/ws`,
//! `/healthz`, `/readyz` and `/metrics`. Basic auth guards `/` and `/ws` (and so the data
//! channel, which only exists inside an authenticated session); credentials are compared in
//! constant time, failures are logged without the password and answered after a delay.
//! `/healthz`, `/readyz` and `/metrics` stay open: the kubelet and Prometheus have no password,
//! and none of them shows the desktop.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, Request, State, WebSocketUpgrade},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::session::{self, Agent};

/// The web client, embedded in the binary.
pub const INDEX_HTML: &str = include_str!("../static/index.html");
/// Delay before answering a failed authentication, to slow down guessing.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// The agent's routes.
pub fn app(agent: Arc<Agent>) -> Router {
    let protected = Router::new()
        .route("/", get(index))
        .route("/ws", get(ws))
        .route_layer(middleware::from_fn_with_state(agent.clone(), require_auth));
    Router::new()
        .merge(protected)
        .route("/healthz", get(|| async { "ok" }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(agent)
}

async fn index() -> Response {
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:")),
        ],
        Html(INDEX_HTML),
    )
        .into_response()
}

async fn ws(State(agent): State<Arc<Agent>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session::run(agent, socket))
}

/// The agent serves only after the display opened and an encoder was chosen (it exits
/// otherwise), so answering at all means ready.
async fn readyz(State(agent): State<Arc<Agent>>) -> String {
    format!("ready: encoder {}", agent.encoder.element())
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], agent.metrics.encode())
        .into_response()
}

/// True when the request carries the right user and password.
pub fn authorized(header_value: Option<&HeaderValue>, user: &str, password: &str) -> bool {
    let Some(given) = header_value.and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else { return false };
    let expected = format!("{user}:{password}");
    // Compare the whole `user:password` at once, in constant time.
    decoded.ct_eq(expected.as_bytes()).into()
}

async fn require_auth(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let password = agent.settings.password().unwrap_or_default();
    if authorized(req.headers().get(header::AUTHORIZATION), &agent.settings.basic_auth_user, password) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_default();
    let had_credentials = req.headers().contains_key(header::AUTHORIZATION);
    agent.metrics.auth_failures.inc();
    if had_credentials {
        tracing::warn!(%peer, path = %req.uri().path(), "wrong credentials");
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
    } else {
        tracing::debug!(%peer, path = %req.uri().path(), "no credentials; asking for them");
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"vdi desktop\", charset=\"UTF-8\"")],
        "authentication required\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s)))
            .expect("header")
    }

    #[test]
    fn checks_user_and_password() {
        assert!(authorized(Some(&basic("user:pw")), "user", "pw"));
        assert!(!authorized(Some(&basic("user:pw2")), "user", "pw"));
        assert!(!authorized(Some(&basic("other:pw")), "user", "pw"));
        assert!(!authorized(Some(&HeaderValue::from_static("Bearer x")), "user", "pw"));
        assert!(!authorized(None, "user", "pw"));
    }
}
