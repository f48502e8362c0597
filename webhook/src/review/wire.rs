//! The AdmissionReview wire format, read in one pass: the envelope into borrowed fields (with
//! kube's `Operation` and `GroupVersionKind`), a Pod object straight into its admission view,
//! other objects kept as raw JSON and parsed only when the request is about a VDI object. Going
//! through kube's `AdmissionReview<DynamicObject>` (a flattened `serde_json::Value`) cost more
//! than the rest of a request together, and a second pass over the Pod a tenth of the server's
//! time (scripts/bench-webhook, perf). Malformed bodies are a [`BadRequest`] (HTTP 400).

use std::borrow::Cow;

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use kube::core::{GroupVersionKind, admission::Operation};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Decision, Target, target};
use crate::pod_view::{self, Depth};

/// A review that cannot be answered as a review: HTTP 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(String);

#[derive(Deserialize)]
struct Envelope<'a, R> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default = "pod_view::none")]
    request: Option<R>,
}

/// The parts of an AdmissionRequest the webhook uses. A Pod object is parsed in the same pass
/// as the review (the API server sends `kind` before `object`); other objects stay raw JSON until
/// a decision needs them.
#[derive(Debug)]
pub struct Request<'a> {
    /// Copied into the response.
    pub uid: Option<Cow<'a, str>>,
    /// Kind of the object.
    pub kind: GroupVersionKind,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// Object name (may be empty on CREATE with generateName).
    pub name: Option<Cow<'a, str>>,
    /// Namespace.
    pub namespace: Option<Cow<'a, str>>,
    /// Dry run: answered exactly like a real request.
    pub dry_run: bool,
    /// The Pod object, already parsed (its admission view, [`pod_view`]); taken by the decision.
    pub pod: Option<Pod>,
    /// Who asks (`userInfo.username`): a person, or a controller's service account.
    pub username: Option<String>,
    object: Option<&'a RawValue>,
    old_object: Option<&'a RawValue>,
    body: &'a str,
}

/// The same request with every object raw: the fallback when the single pass fails, which
/// then tells a body that is not a review from an object that does not parse.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    #[serde(default, borrow)]
    uid: Option<Cow<'a, str>>,
    kind: GroupVersionKind,
    operation: Operation,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    user_info: Option<UserInfo>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
}

/// The part of `userInfo` admission reads.
#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(default)]
    username: Option<String>,
}

impl<'a> From<RawRequest<'a>> for Request<'a> {
    fn from(r: RawRequest<'a>) -> Self {
        Self {
            uid: r.uid,
            kind: r.kind,
            operation: r.operation,
            name: r.name,
            namespace: r.namespace,
            dry_run: r.dry_run,
            pod: None,
            username: r.user_info.and_then(|u| u.username),
            object: r.object,
            old_object: r.old_object,
            body: "",
        }
    }
}

/// A request whose Pod is read in full (`FULL`) or as far as the injection needs it: which
/// one is a type, so the envelope's derived parser can carry it.
struct RequestAt<'a, const FULL: bool>(Request<'a>);

impl<'de, const FULL: bool> Deserialize<'de> for RequestAt<'de, FULL> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let depth = if FULL { Depth::Full } else { Depth::Injections };
        d.deserialize_map(RequestVisitor(depth)).map(RequestAt)
    }
}

struct RequestVisitor(Depth);

struct PodSeed(Depth);

impl<'de> serde::de::DeserializeSeed<'de> for PodSeed {
    type Value = Option<Pod>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Pod>, D::Error> {
        pod_view::read(d, self.0)
    }
}

impl<'de> serde::de::Visitor<'de> for RequestVisitor {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Request<'de>, A::Error> {
        use serde::de::{Error, IgnoredAny};
        let (mut uid, mut kind, mut operation, mut name, mut namespace) = (None, None, None, None, None);
        let (mut dry_run, mut pod, mut object, mut old_object, mut username) = (false, None, None, None, None);
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "camelCase")]
        enum Field {
            Uid,
            Kind,
            Operation,
            Name,
            Namespace,
            DryRun,
            UserInfo,
            Object,
            OldObject,
            #[serde(other)]
            Other,
        }
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Uid => uid = map.next_value::<Option<String>>()?.map(Cow::Owned),
                Field::Kind => kind = Some(map.next_value::<GroupVersionKind>()?),
                Field::Operation => operation = Some(map.next_value::<Operation>()?),
                Field::Name => name = map.next_value::<Option<String>>()?.map(Cow::Owned),
                Field::Namespace => namespace = map.next_value::<Option<String>>()?.map(Cow::Owned),
                Field::DryRun => dry_run = map.next_value::<Option<bool>>()?.unwrap_or(false),
                Field::UserInfo => username = map.next_value::<Option<UserInfo>>()?.and_then(|u| u.username),
                Field::Object if kind.as_ref().is_some_and(|k| target(k) == Target::SessionPod) => {
                    pod = map.next_value_seed(PodSeed(self.0))?;
                }
                Field::Object => object = map.next_value()?,
                Field::OldObject => old_object = map.next_value()?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Request {
            uid,
            kind: kind.ok_or_else(|| A::Error::missing_field("kind"))?,
            operation: operation.ok_or_else(|| A::Error::missing_field("operation"))?,
            name,
            namespace,
            dry_run,
            pod,
            username,
            object,
            old_object,
            body: "",
        })
    }
}

impl<'a> Request<'a> {
    /// Whether the request carries an object (not absent, not `null`).
    pub fn has_object(&self) -> bool {
        self.pod.is_some() || self.object.is_some_and(|o| o.get() != "null")
    }

    /// The object as raw JSON, unless absent or `null`. For a Pod parsed with the review this
    /// parses the body again: only a Pod that needs a patch asks for it.
    pub fn object(&self) -> Option<&'a RawValue> {
        let raw = match self.object {
            Some(raw) => Some(raw),
            None if !self.body.is_empty() => {
                serde_json::from_str::<Envelope<'a, RawRequest<'a>>>(self.body).ok()?.request?.object
            }
            None => None,
        };
        raw.filter(|o| o.get() != "null")
    }

    /// The old object, unless absent or `null`.
    pub fn old_object(&self) -> Option<&'a RawValue> {
        self.old_object.filter(|o| o.get() != "null")
    }
}

/// An envelope's apiVersion, kind and request.
type Parts<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>, Option<Request<'a>>);

fn single_pass<'a, const FULL: bool>(text: &'a str) -> serde_json::Result<Parts<'a>> {
    serde_json::from_str::<Envelope<'_, RequestAt<'_, FULL>>>(text)
        .map(|e| (e.api_version, e.kind, e.request.map(|r| Request { body: text, ..r.0 })))
}

/// Parses a request body, a Pod in it to `depth`, with a message that says what is wrong.
pub fn parse(body: &[u8], depth: Depth) -> Result<Request<'_>, BadRequest> {
    let text = std::str::from_utf8(body).map_err(|e| BadRequest(format!("the body is not JSON: {e}")))?;
    let parsed = match depth {
        Depth::Full => single_pass::<true>(text),
        Depth::Injections => single_pass::<false>(text),
    };
    let (api_version, kind, request) = match parsed {
        Ok(parts) => parts,
        Err(_) => {
            let e = serde_json::from_str::<Envelope<'_, RawRequest<'_>>>(text).map_err(|e| {
                // A second look tells bad JSON from a bad review.
                match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Err(syntax) => BadRequest(format!("the body is not JSON: {syntax}")),
                    Ok(_) => BadRequest(format!("not a valid AdmissionReview: {e}")),
                }
            })?;
            // The review is sound, so its object is what failed: kept raw, a decision that
            // reads it says what is wrong with it.
            (e.api_version, e.kind, e.request.map(Request::from))
        }
    };
    let kind = kind.as_deref().unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(BadRequest(format!("expected kind AdmissionReview, got `{kind}`")));
    }
    let version = api_version.as_deref().unwrap_or("");
    if version != "admission.k8s.io/v1" {
        return Err(BadRequest(format!(
            "expected apiVersion admission.k8s.io/v1, got `{version}`; configure admissionReviewVersions: [v1]"
        )));
    }
    let request = request.ok_or_else(|| BadRequest("the AdmissionReview has no request".into()))?;
    if request.uid.as_deref().is_none_or(str::is_empty) {
        return Err(BadRequest("request.uid is missing".into()));
    }
    Ok(request)
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    message: &'a str,
    reason: &'static str,
}

/// The AdmissionReview answering `uid` with `decision`. Written directly rather than through a
/// derived serializer: the patch is base64 (the API's `[]byte`) encoded straight into the answer,
/// without an intermediate string or a JSON-escaping pass over characters that never need it.
pub fn review_json(uid: &str, decision: &Decision) -> Vec<u8> {
    let patch = decision.patch_ops().map(|p| serde_json::to_vec(p).unwrap_or_default());
    let b64 = patch.as_ref().map_or(0, |p| base64::encoded_len(p.len(), true).unwrap_or(0));
    let mut out = Vec::with_capacity(160 + uid.len() + b64);
    out.extend_from_slice(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#);
    // Strings and string slices always serialize.
    let _ = serde_json::to_writer(&mut out, uid);
    out.extend_from_slice(if decision.allowed() { br#","allowed":true"# } else { br#","allowed":false"# });
    if let Some(message) = decision.message() {
        let unreadable = matches!(decision.outcome, super::Outcome::Unreadable(_));
        let status = StatusOut {
            code: if unreadable { 400 } else { 403 },
            message,
            reason: if unreadable { "BadRequest" } else { "Forbidden" },
        };
        out.extend_from_slice(br#","status":"#);
        let _ = serde_json::to_writer(&mut out, &status);
    }
    if let Some(patch) = patch {
        out.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
        let at = out.len();
        out.resize(at + b64, 0);
        let written = base64::engine::general_purpose::STANDARD.encode_slice(&patch, &mut out[at..]).unwrap_or(0);
        out.truncate(at + written);
        out.push(b'"');
    }
    if !decision.warnings.is_empty() {
        // Shown by kubectl to whoever applied the object (allowed, but worth a look).
        out.extend_from_slice(br#","warnings":"#);
        let _ = serde_json::to_writer(&mut out, &decision.warnings);
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::{Value, json};

    use super::*;

    /// The answer, as the API server reads it, for every kind of decision.
    #[test]
    fn answers_are_admission_reviews_for_every_outcome() {
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/spec/volumes/-", "value": {"name": "dri"}}]))
                .expect("a patch");
        let uid = "7c\"\\é\u{1}";
        let cases = [
            (Decision::allow(), json!({"uid": uid, "allowed": true})),
            (
                Decision::patch(patch.clone()).warn("odd \"one\""),
                json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                    "patch": base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&patch).expect("JSON")),
                    "warnings": ["odd \"one\""]}),
            ),
            (
                Decision::deny("no\nway"),
                json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": "no\nway", "reason": "Forbidden"}}),
            ),
            (
                Decision::unreadable("bad"),
                json!({"uid": uid, "allowed": false, "status": {"code": 400, "message": "bad", "reason": "BadRequest"}}),
            ),
        ];
        for (decision, response) in cases {
            let answer: Value = serde_json::from_slice(&review_json(uid, &decision)).expect("JSON");
            let expected =
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
            assert_eq!(answer, expected, "{decision:?}");
        }
    }
}
