//! Validation of what the schema cannot express, with messages a person understands: templates
//! that exist and the bounds they set, immutable `user` and `template`, safe session Pods, and
//! Secrets that keep their password.

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, Operation},
};
use serde_json::Value;
use vdi_crds::{VDISession, defaults, pod};

use crate::{
    AppState,
    admission::{Decision, Target},
    mutate::typed,
};

fn raw(obj: Option<&DynamicObject>) -> Value {
    obj.and_then(|o| serde_json::to_value(o).ok()).unwrap_or(Value::Null)
}

/// The validation of one request.
pub fn validate(state: &AppState, target: Target, req: &AdmissionRequest<DynamicObject>) -> Decision {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Decision::allow(req);
    }
    let object = raw(req.object.as_ref());
    let result = match target {
        Target::Session => session(state, req, &object),
        Target::SessionPod => typed::<Pod>(&object, "Pod").map(|p| {
            let errs = pod::check(&p);
            (!errs.is_empty()).then(|| format!("unsafe session Pod: {errs}"))
        }),
        Target::SessionSecret => secret(req, &object),
        Target::Other => Ok(None),
    };
    match result {
        Ok(None) => Decision::allow(req),
        Ok(Some(message)) => Decision::deny(req, message),
        Err(e) => Decision::unreadable(req, e),
    }
}

fn session(state: &AppState, req: &AdmissionRequest<DynamicObject>, object: &Value) -> Result<Option<String>, String> {
    let s: VDISession = typed(object, "VDISession")?;
    let mut problems = Vec::new();
    if req.operation == Operation::Update {
        let old: VDISession = typed(&raw(req.old_object.as_ref()), "old VDISession")?;
        if old.spec.user != s.spec.user {
            problems.push(format!(
                "spec.user cannot change (was {}, now {}); create a new session for another user",
                old.spec.user, s.spec.user
            ));
        }
        if old.spec.template != s.spec.template {
            problems.push(format!(
                "spec.template cannot change (was {}, now {}); create a new session to switch templates",
                old.spec.template, s.spec.template
            ));
        }
    }
    let namespace = req.namespace.clone().or_else(|| s.metadata.namespace.clone()).unwrap_or_default();
    let template = state.templates.get(&s.spec.template);
    if let Err(errs) = defaults::resolve(&s, template.as_deref(), &namespace) {
        problems.extend(errs.0.iter().map(ToString::to_string));
    }
    Ok((!problems.is_empty()).then(|| problems.join("; ")))
}

fn secret(req: &AdmissionRequest<DynamicObject>, object: &Value) -> Result<Option<String>, String> {
    if req.operation != Operation::Update {
        return Ok(None);
    }
    let has = |s: &Secret| s.data.as_ref().is_some_and(|d| d.contains_key(pod::PASSWORD_KEY));
    let new: Secret = typed(object, "Secret")?;
    let old: Secret = typed(&raw(req.old_object.as_ref()), "old Secret")?;
    Ok((has(&old) && !has(&new)).then(|| {
        format!(
            "this update removes `{}` from the session Secret; the desktop would lose its password. Apply it without touching data (server-side apply), or delete the session",
            pod::PASSWORD_KEY
        )
    }))
}
