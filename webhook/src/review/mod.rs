//! An AdmissionReview's way through the webhook: [`wire`] reads the envelope and writes the
//! answer, [`subject`] tells what the object is (a session object, one that does not parse, or
//! not ours), the rules in `mutate` and `validate` make a [`Decision`]. [`handle`] ties them
//! together in a tracing span per review and counts it. Kinds other than session Pods, session
//! Secrets and VDISessions are allowed unchanged.

pub mod decision;
pub mod subject;
pub mod wire;

use std::{borrow::Cow, collections::BTreeMap, time::Instant};

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use kube::core::{GroupVersionKind, admission::Operation};
use vdi_crds::labels;

pub use decision::{Decision, Outcome};
pub use wire::{BadRequest, Request, parse, review_json};

use crate::{AppState, metrics::RequestLabels, mutate, validate};

/// Which webhook was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/mutate`: defaults and injection, as a JSON Patch.
    Mutate,
    /// `/validate`: allow or deny.
    Validate,
}

/// What an admission request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A Pod labelled `vdi.kasm.io/session`.
    SessionPod,
    /// A Secret labelled as a session's auth Secret.
    SessionSecret,
    /// A VDISession.
    Session,
    /// Anything else: allowed unchanged.
    Other,
}

pub(crate) fn target(kind: &GroupVersionKind) -> Target {
    match (kind.group.as_str(), kind.kind.as_str()) {
        (vdi_crds::GROUP, "VDISession") => Target::Session,
        // Whether it is a *session* Pod or Secret is decided on the typed object (the webhook
        // configuration's objectSelector already sends only those).
        ("", "Pod") => Target::SessionPod,
        ("", "Secret") => Target::SessionSecret,
        _ => Target::Other,
    }
}

/// True when `labels` mark a session object (and, for Secrets, the auth Secret).
pub fn is_session_object(target: Target, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(labels) = labels else { return false };
    if !labels.contains_key(labels::SESSION) {
        return false;
    }
    match target {
        Target::SessionSecret => labels.get(labels::COMPONENT).is_some_and(|c| c == labels::COMPONENT_AUTH),
        _ => true,
    }
}

/// Decides one parsed request.
pub fn decide(state: &AppState, mode: Mode, req: &mut Request<'_>) -> Decision {
    match (mode, target(&req.kind)) {
        (_, Target::Other) => Decision::allow(),
        (Mode::Mutate, t) => mutate::mutate(state, t, req),
        (Mode::Validate, t) => validate::validate(state, t, req),
    }
}

/// How much of a Pod each webhook builds: `/mutate` only the part the injection reads,
/// `/validate` all of it.
pub fn depth(mode: Mode) -> crate::pod_view::Depth {
    match mode {
        Mode::Mutate => crate::pod_view::Depth::Injections,
        Mode::Validate => crate::pod_view::Depth::Full,
    }
}

fn operation(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn kind_label(kind: &str) -> Cow<'static, str> {
    match kind {
        "Pod" => Cow::Borrowed("Pod"),
        "Secret" => Cow::Borrowed("Secret"),
        "VDISession" => Cow::Borrowed("VDISession"),
        // Any caller can name any kind: a label per name would grow /metrics without bound.
        _ => Cow::Borrowed("other"),
    }
}

/// Answers one HTTP request body.
pub fn handle(state: &AppState, mode: Mode, body: &[u8]) -> Response {
    let start = Instant::now();
    let endpoint = match mode {
        Mode::Mutate => "mutate",
        Mode::Validate => "validate",
    };
    let span = tracing::debug_span!("review", endpoint, uid = tracing::field::Empty, kind = tracing::field::Empty);
    let _entered = span.enter();
    let (response, labels) = match parse(body, depth(mode)) {
        Err(e) => {
            tracing::warn!(endpoint, error = %e, "bad admission request");
            let labels = RequestLabels { endpoint, kind: "invalid".into(), operation: "none", result: "error" };
            ((StatusCode::BAD_REQUEST, e.to_string()).into_response(), labels)
        }
        Ok(mut req) => {
            // The rules never read the uid: it is taken out, so the span and the answer have it
            // without a copy.
            let uid = req.uid.take().unwrap_or_default();
            span.record("uid", &*uid);
            span.record("kind", req.kind.kind.as_str());
            let decision = decide(state, mode, &mut req);
            // Said at info level, where the debug span is off: each line names its review itself.
            let (ns, name) = (req.namespace.as_deref().unwrap_or(""), req.name.as_deref().unwrap_or(""));
            if !decision.allowed() {
                tracing::info!(endpoint, uid = &*uid, kind = %req.kind.kind, ns, name, dry_run = req.dry_run,
                    result = decision.result(), reason = decision.message().unwrap_or(""), "admission denied");
            } else if !decision.warnings.is_empty() {
                tracing::info!(endpoint, uid = &*uid, kind = %req.kind.kind, ns, name, warnings = ?decision.warnings,
                    "admitted with warnings");
            } else {
                tracing::debug!(dry_run = req.dry_run, result = decision.result(), "admission");
            }
            let labels = RequestLabels {
                endpoint,
                kind: kind_label(&req.kind.kind),
                operation: operation(&req.operation),
                result: decision.result(),
            };
            let body = review_json(&uid, &decision);
            (([(header::CONTENT_TYPE, "application/json")], body).into_response(), labels)
        }
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state.metrics.latency.observe(start.elapsed().as_secs_f64());
    response
}
