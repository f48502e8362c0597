//! Mutations, each computed as "typed object before → typed object after" and sent as the JSON
//! Patch between the two, so fields this build does not know are never touched:
//! VDISession defaults, session Pod injection (`vdi_crds::pod::ensure`, the renderer's code) and
//! the session Secret's random password.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{Pod, Secret},
};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, Operation},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use vdi_crds::{VDISession, defaults, pod};

use crate::{
    AppState,
    admission::{Decision, Target},
    password,
};

/// Parses the request's object as `T`.
pub fn typed<T: DeserializeOwned>(raw: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(raw.clone()).map_err(|e| format!("the {what} in the request does not parse: {e}"))
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The mutation for one request.
pub fn mutate(state: &AppState, target: Target, req: &AdmissionRequest<DynamicObject>, raw: &Value) -> Decision {
    if raw.is_null() {
        return Decision::allow(req); // DELETE and CONNECT carry no object to change.
    }
    let result = match target {
        Target::Session => session(state, raw),
        Target::SessionPod if req.operation == Operation::Create => session_pod(raw),
        Target::SessionSecret => session_secret(req, raw),
        _ => return Decision::allow(req),
    };
    match result {
        Ok(patch) => Decision::patch(req, patch),
        Err(e) => Decision::unreadable(req, e),
    }
}

fn session(state: &AppState, raw: &Value) -> Result<json_patch::Patch, String> {
    let before: VDISession = typed(raw, "VDISession")?;
    let template = state.templates.get(&before.spec.template);
    let mut after = before.clone();
    defaults::fill_defaults(&mut after, template.as_deref());
    Ok(json_patch::diff(&to_json(&before), &to_json(&after)))
}

/// The patch admission applies to a session Pod (empty for a Pod the renderer produced).
pub fn session_pod(raw: &Value) -> Result<json_patch::Patch, String> {
    let before: Pod = typed(raw, "Pod")?;
    let needs = match pod::PodNeeds::from_pod(&before) {
        Some(Ok(needs)) => needs,
        Some(Err(e)) => return Err(e),
        None => return Ok(json_patch::Patch(Vec::new())),
    };
    let mut after = before.clone();
    pod::ensure(&mut after, &needs);
    Ok(json_patch::diff(&to_json(&before), &to_json(&after)))
}

fn has_password(secret: &Secret) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(pod::PASSWORD_KEY))
        || secret.string_data.as_ref().is_some_and(|d| d.contains_key(pod::PASSWORD_KEY))
}

fn session_secret(req: &AdmissionRequest<DynamicObject>, raw: &Value) -> Result<json_patch::Patch, String> {
    let before: Secret = typed(raw, "Secret")?;
    if has_password(&before) {
        return Ok(json_patch::Patch(Vec::new()));
    }
    // An update that drops an existing password is for validation to refuse, not to paper over
    // with a new one.
    if req.operation == Operation::Update {
        let old: Option<Secret> = req
            .old_object
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok())
            .and_then(|v| serde_json::from_value(v).ok());
        if old.as_ref().is_some_and(has_password) {
            return Ok(json_patch::Patch(Vec::new()));
        }
    }
    let secret = password::generate().map_err(|e| format!("the OS random source failed: {e}"))?;
    let mut after = before.clone();
    after.data.get_or_insert_with(BTreeMap::new).insert(pod::PASSWORD_KEY.into(), ByteString(secret.into_bytes()));
    Ok(json_patch::diff(&to_json(&before), &to_json(&after)))
}
