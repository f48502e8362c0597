//! Reading AdmissionReviews and answering them. Malformed bodies get HTTP 400 with a message;
//! well-formed reviews about objects that do not parse get `allowed: false` with the reason;
//! kinds other than session Pods, session Secrets and VDISessions are allowed unchanged.

use std::time::Instant;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};
use serde_json::Value;
use vdi_crds::labels;

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

/// A review that cannot be answered as a review: HTTP 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(String);

/// Parses a request body into an AdmissionRequest, with a message that says what is wrong.
pub fn parse(body: &[u8]) -> Result<(AdmissionRequest<DynamicObject>, Value), BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BadRequest(format!("the body is not JSON: {e}")))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or("");
    if field("kind") != "AdmissionReview" {
        return Err(BadRequest(format!("expected kind AdmissionReview, got `{}`", field("kind"))));
    }
    if field("apiVersion") != "admission.k8s.io/v1" {
        return Err(BadRequest(format!(
            "expected apiVersion admission.k8s.io/v1, got `{}`; configure admissionReviewVersions: [v1]",
            field("apiVersion")
        )));
    }
    let request = value.get("request").ok_or_else(|| BadRequest("the AdmissionReview has no request".into()))?;
    if request.get("uid").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(BadRequest("request.uid is missing".into()));
    }
    let raw_object = request.get("object").cloned().unwrap_or(Value::Null);
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(value).map_err(|e| BadRequest(format!("not a valid AdmissionReview: {e}")))?;
    let request = review.try_into().map_err(|_| BadRequest("the AdmissionReview has no request".into()))?;
    Ok((request, raw_object))
}

fn target(req: &AdmissionRequest<DynamicObject>) -> Target {
    let obj = req.object.as_ref().or(req.old_object.as_ref());
    let has_label = |key: &str, value: Option<&str>| {
        obj.and_then(|o| o.metadata.labels.as_ref())
            .and_then(|l| l.get(key))
            .is_some_and(|v| value.is_none_or(|want| v == want))
    };
    match (req.kind.group.as_str(), req.kind.kind.as_str()) {
        ("", "Pod") if has_label(labels::SESSION, None) => Target::SessionPod,
        ("", "Secret")
            if has_label(labels::SESSION, None) && has_label(labels::COMPONENT, Some(labels::COMPONENT_AUTH)) =>
        {
            Target::SessionSecret
        }
        (vdi_crds::GROUP, "VDISession") => Target::Session,
        _ => Target::Other,
    }
}

/// A decision: the response, and its result label for metrics.
pub struct Decision {
    /// The review response.
    pub response: AdmissionResponse,
    /// `allowed`, `patched`, `denied` or `error`.
    pub result: &'static str,
}

impl Decision {
    /// Allowed unchanged.
    pub fn allow(req: &AdmissionRequest<DynamicObject>) -> Self {
        Self { response: AdmissionResponse::from(req), result: "allowed" }
    }

    /// Denied with a message for the person who applied the object.
    pub fn deny(req: &AdmissionRequest<DynamicObject>, message: impl ToString) -> Self {
        Self { response: AdmissionResponse::from(req).deny(message), result: "denied" }
    }

    /// The object did not parse: denied, counted as an error.
    pub fn unreadable(req: &AdmissionRequest<DynamicObject>, message: impl ToString) -> Self {
        Self { response: AdmissionResponse::from(req).deny(message), result: "error" }
    }

    /// Allowed with a JSON Patch (allowed unchanged when the patch is empty).
    pub fn patch(req: &AdmissionRequest<DynamicObject>, patch: json_patch::Patch) -> Self {
        if patch.0.is_empty() {
            return Self::allow(req);
        }
        match AdmissionResponse::from(req).with_patch(patch) {
            Ok(response) => Self { response, result: "patched" },
            Err(e) => Self::unreadable(req, format!("internal error serializing the patch: {e}")),
        }
    }
}

/// Decides one parsed request.
pub fn decide(state: &AppState, mode: Mode, req: &AdmissionRequest<DynamicObject>, raw: &Value) -> Decision {
    let target = target(req);
    match (mode, target) {
        (_, Target::Other) => Decision::allow(req),
        (Mode::Mutate, t) => mutate::mutate(state, t, req, raw),
        (Mode::Validate, t) => validate::validate(state, t, req),
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

/// The review as JSON with `response.patch` base64-encoded, the form the API documents for
/// `[]byte` (kube-core writes the bytes as a number array, which Go also accepts).
fn canonical(review: AdmissionReview<DynamicObject>) -> Value {
    use base64::Engine;
    let mut v = serde_json::to_value(review).unwrap_or(Value::Null);
    if let Some(patch) = v.pointer_mut("/response/patch")
        && let Some(bytes) =
            patch.as_array().map(|a| a.iter().filter_map(|b| b.as_u64()).map(|b| b as u8).collect::<Vec<u8>>())
    {
        *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    v
}

/// Answers one HTTP request body.
pub fn handle(state: &AppState, mode: Mode, body: &[u8]) -> Response {
    let start = Instant::now();
    let endpoint = match mode {
        Mode::Mutate => "mutate",
        Mode::Validate => "validate",
    };
    let (response, labels) = match parse(body) {
        Err(e) => {
            tracing::warn!(endpoint, error = %e, "bad admission request");
            let labels = RequestLabels {
                endpoint: endpoint.into(),
                kind: "invalid".into(),
                operation: "none".into(),
                result: "error".into(),
            };
            ((StatusCode::BAD_REQUEST, e.to_string()).into_response(), labels)
        }
        Ok((req, raw)) => {
            let decision = decide(state, mode, &req, &raw);
            let name = req.name.as_str();
            let ns = req.namespace.as_deref().unwrap_or("");
            if decision.result == "denied" || decision.result == "error" {
                tracing::info!(endpoint, uid = %req.uid, kind = %req.kind.kind, %ns, %name, dry_run = req.dry_run,
                    result = decision.result, reason = %decision.response.result.message, "admission");
            } else {
                tracing::debug!(endpoint, uid = %req.uid, kind = %req.kind.kind, %ns, %name, dry_run = req.dry_run,
                    result = decision.result, "admission");
            }
            let labels = RequestLabels {
                endpoint: endpoint.into(),
                kind: req.kind.kind.clone(),
                operation: operation(&req.operation).into(),
                result: decision.result.into(),
            };
            (Json(canonical(decision.response.into_review())).into_response(), labels)
        }
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state.metrics.latency.observe(start.elapsed().as_secs_f64());
    response
}
