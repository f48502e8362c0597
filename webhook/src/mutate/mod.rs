//! Mutations, computed on typed objects so fields this build does not know are never touched:
//! VDISession defaults and the session Secret's random password as the JSON Patch between the
//! object before and after; session Pod injection (`vdi_crds::pod::ensure`, the renderer's code)
//! as the `add` operations for what `ensure` appended ([`pod_patch`]). When nothing changes (a Pod
//! the renderer produced) no copy is made and no JSON is built at all.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{Pod, Secret},
};
use kube::core::admission::Operation;
use serde::Serialize;
use serde_json::{Value, value::RawValue};
use vdi_crds::{VDISession, defaults, labels, pod, turn};

mod pod_patch;

pub use pod_patch::Shape;

use crate::{
    AppState, password,
    review::{
        Decision, Request, Target,
        subject::{self, Subject, typed},
    },
};

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn diff<T: Serialize + PartialEq>(before: &T, after: &T) -> json_patch::Patch {
    if before == after {
        return json_patch::Patch(Vec::new());
    }
    json_patch::diff(&to_json(before), &to_json(after))
}

/// The mutation for one request.
pub fn mutate(state: &AppState, target: Target, req: &mut Request<'_>) -> Decision {
    if !req.has_object() {
        return Decision::allow(); // DELETE and CONNECT carry no object to change.
    }
    let subject = match (target, req.operation == Operation::Create) {
        (Target::SessionPod, true) => session_pod(req, state),
        (Target::Session, _) => match req.object() {
            Some(raw) => Subject::Ours(session(state, raw)),
            None => Subject::NotOurs,
        },
        (Target::SessionSecret, _) => match req.object() {
            Some(raw) => session_secret(req, raw, state.turn_secret.as_deref()),
            None => Subject::NotOurs,
        },
        _ => Subject::NotOurs,
    };
    match subject {
        Subject::Ours(Ok(patch)) => Decision::patch(patch),
        Subject::Ours(Err(e)) | Subject::Unreadable(e) => Decision::unreadable(e),
        Subject::NotOurs => Decision::allow(),
    }
}

fn session(state: &AppState, raw: &RawValue) -> Result<json_patch::Patch, String> {
    typed::<VDISession>(raw, "VDISession").map(|before| {
        let template = state.templates.get(&before.spec.template);
        let mut after = before.clone();
        defaults::fill_defaults(&mut after, template.as_deref());
        diff(&before, &after)
    })
}

/// The patch admission applies to a session Pod (empty for a Pod the renderer produced).
pub fn session_pod(req: &mut Request<'_>, state: &AppState) -> Subject<Result<json_patch::Patch, String>> {
    let pod = subject::session_pod(req);
    pod.map(|pod| pod_patch(pod, state))
}

fn pod_patch(mut after: Pod, state: &AppState) -> Result<json_patch::Patch, String> {
    // Without the renderer's GPU annotation, the template the Pod names says how many GPUs it
    // gets by default; a Pod that names no known template gets none.
    let template =
        after.metadata.labels.as_ref().and_then(|l| l.get(labels::TEMPLATE)).and_then(|t| state.templates.get(t));
    let template_default = template.map_or(0, |t| defaults::TemplateDefaults::of(Some(&t)).gpu);
    let needs = match pod::PodNeeds::from_pod(&after, &state.gpu_resource, template_default) {
        Some(Ok(needs)) => needs,
        Some(Err(e)) => return Err(e),
        None => return Ok(json_patch::Patch(Vec::new())),
    };
    // A complete Pod (the common case) is neither copied nor diffed, and one that needs
    // injections is not either: `ensure` only appends, so its shape before says what was added.
    let before = pod_patch::Shape::of(&after);
    if !pod::ensure(&mut after, &needs) {
        return Ok(json_patch::Patch(Vec::new()));
    }
    Ok(before.additions(&after))
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
        || secret.string_data.as_ref().is_some_and(|d| d.contains_key(key))
}

/// True when the Secret carries a password (in `data` or `stringData`).
pub fn has_password(secret: &Secret) -> bool {
    has_key(secret, pod::PASSWORD_KEY)
}

fn session_secret(
    req: &Request<'_>,
    raw: &RawValue,
    turn: Option<&TurnSecret>,
) -> Subject<Result<json_patch::Patch, String>> {
    subject::session_object(raw, Target::SessionSecret, "Secret", |j| serde_json::from_str::<Secret>(j))
        .map(|before| secret_patch(req, before, turn))
}

/// The TURN REST shared secret (coturn's `static-auth-secret`). Only the webhook holds it; it is
/// never printed.
pub struct TurnSecret(pub Vec<u8>);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

fn secret_patch(req: &Request<'_>, before: Secret, turn: Option<&TurnSecret>) -> Result<json_patch::Patch, String> {
    // What the Secret had before this request: a value is never replaced, and an update that
    // drops one is for validation to refuse, not to paper over with a new one.
    let old: Option<Secret> = if req.operation == Operation::Update {
        req.old_object().and_then(|o| typed(o, "old Secret").ok())
    } else {
        None
    };
    let had = |key: &str| has_key(&before, key) || old.as_ref().is_some_and(|o| has_key(o, key));
    let mut after = before.clone();
    if !had(pod::PASSWORD_KEY) {
        let secret = password::generate().map_err(|e| format!("the OS random source failed: {e}"))?;
        after.data.get_or_insert_with(BTreeMap::new).insert(pod::PASSWORD_KEY.into(), ByteString(secret.into_bytes()));
    }
    if let Some(turn) = turn
        && !had(turn::USERNAME_KEY)
        && !had(turn::PASSWORD_KEY)
    {
        let c = session_turn(&before, turn);
        let data = after.data.get_or_insert_with(BTreeMap::new);
        data.insert(turn::USERNAME_KEY.into(), ByteString(c.username.into_bytes()));
        data.insert(turn::PASSWORD_KEY.into(), ByteString(c.password.into_bytes()));
    }
    Ok(diff(&before, &after))
}

/// The session's own TURN pair, valid until the session's deadline (its timeout from now, as the
/// renderer annotated the Secret; the default timeout when it did not).
fn session_turn(secret: &Secret, turn: &TurnSecret) -> turn::Credentials {
    let meta = &secret.metadata;
    let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k));
    let default_secs = defaults::DEFAULT_TIMEOUT.parse::<vdi_crds::Duration>().map_or(8 * 3600, |d| d.as_secs());
    let secs = annotation(labels::TIMEOUT_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| (1..=defaults::MAX_TIMEOUT_SECS).contains(s))
        .unwrap_or(default_secs);
    let user = annotation(labels::USER_ANNOTATION)
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(labels::SESSION)))
        .cloned()
        .unwrap_or_default();
    // coturn splits the user name at the first ':' after the expiry; keep the user's part clean.
    let user: String = user.chars().filter(|c| !c.is_control() && *c != ':').collect();
    turn::mint_now(&turn.0, &user, std::time::Duration::from_secs(secs.unsigned_abs()))
}
