//! What a request's object is to the webhook, typed: a session object of the kind asked about, a
//! body that claims to be one but does not parse, or something that is not ours (no session
//! label) and is left alone.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{Request, Target, is_session_object};
use crate::pod_view;

/// The object of a request, as far as the rules are concerned.
#[derive(Debug)]
pub enum Subject<T> {
    /// A session object of the kind asked about.
    Ours(T),
    /// It claims to be a session object (its labels say so) but does not parse: why.
    Unreadable(String),
    /// Not a session object: the rules leave it alone.
    NotOurs,
}

impl<T> Subject<T> {
    /// Applies `f` to a session object.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Subject<U> {
        match self {
            Self::Ours(t) => Subject::Ours(f(t)),
            Self::Unreadable(e) => Subject::Unreadable(e),
            Self::NotOurs => Subject::NotOurs,
        }
    }
}

/// Parses a raw object as `T`, saying what did not parse.
pub fn typed<T: DeserializeOwned>(raw: &RawValue, what: &str) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("the {what} in the request does not parse: {e}"))
}

/// The request's Pod when it is a session Pod: the one parsed with the review, else parsed from
/// the raw object.
pub fn session_pod(req: &mut Request<'_>) -> Subject<Pod> {
    // The raw object only when the single pass did not parse the Pod: asking for it reads the
    // body again.
    match req.pod.take() {
        Some(pod) => ours(pod, Target::SessionPod),
        None => match req.object() {
            Some(raw) => session_object(raw, Target::SessionPod, "Pod", pod_view::parse),
            None => Subject::NotOurs,
        },
    }
}

/// `obj` when its labels mark it as a session object of kind `target`.
fn ours<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(obj: T, target: Target) -> Subject<T> {
    if is_session_object(target, obj.metadata().labels.as_ref()) { Subject::Ours(obj) } else { Subject::NotOurs }
}

/// Parses a Pod or Secret with `parse` and checks it is a session object.
pub fn session_object<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(
    raw: &RawValue,
    target: Target,
    what: &str,
    parse: impl FnOnce(&str) -> serde_json::Result<T>,
) -> Subject<T> {
    match parse(raw.get()) {
        Ok(obj) => ours(obj, target),
        // A body that does not parse: say so only when it claims to be a session object.
        Err(e) => match serde_json::from_str::<LabelsProbe>(raw.get()) {
            Ok(p) if is_session_object(target, p.metadata.labels.as_ref()) => {
                Subject::Unreadable(format!("the {what} in the request does not parse: {e}"))
            }
            _ => Subject::NotOurs,
        },
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LabelsProbe {
    metadata: LabelsMeta,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LabelsMeta {
    labels: Option<BTreeMap<String, String>>,
}
