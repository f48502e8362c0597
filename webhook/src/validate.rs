//! Validation of what the schema cannot express, with messages a person understands: templates
//! that exist and the bounds they set, immutable `user` and `template`, safe session Pods, and
//! Secrets that keep their password.

use k8s_openapi::api::core::v1::Secret;
use kube::core::admission::Operation;
use vdi_crds::{VDISession, defaults, pod};

use crate::{
    AppState,
    admission::{Decision, Request, Target},
    mutate::{NotOurs, has_password, session_object, session_pod_of, typed},
};

/// The validation of one request.
pub fn validate(state: &AppState, target: Target, req: &mut Request<'_>) -> Decision {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Decision::allow();
    }
    if !req.has_object() {
        return Decision::unreadable("the request carries no object");
    }
    let result = match target {
        Target::SessionPod => match session_pod_of(req) {
            Err(NotOurs) => return Decision::allow(),
            Ok(parsed) => parsed.map(|p| {
                let errs = pod::check(&p);
                (!errs.is_empty()).then(|| format!("unsafe session Pod: {errs}"))
            }),
        },
        Target::Session | Target::SessionSecret => {
            let Some(object) = req.object() else { return Decision::unreadable("the request carries no object") };
            if target == Target::Session {
                session(state, req, object)
            } else {
                match session_object(object, target, "Secret", |j| serde_json::from_str::<Secret>(j)) {
                    Err(NotOurs) => return Decision::allow(),
                    Ok(parsed) => parsed.and_then(|new| secret(req, &new)),
                }
            }
        }
        Target::Other => Ok(None),
    };
    match result {
        Ok(None) => Decision::allow(),
        Ok(Some(message)) => Decision::deny(message),
        Err(e) => Decision::unreadable(e),
    }
}

fn session(
    state: &AppState,
    req: &Request<'_>,
    object: &serde_json::value::RawValue,
) -> Result<Option<String>, String> {
    let s: VDISession = typed(object, "VDISession")?;
    let mut problems = Vec::new();
    if req.operation == Operation::Update {
        let old: VDISession = match req.old_object() {
            Some(o) => typed(o, "old VDISession")?,
            None => return Err("an UPDATE without oldObject".into()),
        };
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
    let namespace =
        req.namespace.as_deref().map(str::to_owned).or_else(|| s.metadata.namespace.clone()).unwrap_or_default();
    let template = state.templates.get(&s.spec.template);
    if let Err(errs) = defaults::resolve(&s, template.as_deref(), &namespace) {
        problems.extend(errs.0.iter().map(ToString::to_string));
    }
    Ok((!problems.is_empty()).then(|| problems.join("; ")))
}

fn secret(req: &Request<'_>, new: &Secret) -> Result<Option<String>, String> {
    if req.operation != Operation::Update {
        return Ok(None);
    }
    let Some(old) = req.old_object() else { return Ok(None) };
    let old: Secret = typed(old, "old Secret")?;
    Ok((has_password(&old) && !has_password(new)).then(|| {
        format!(
            "this update removes `{}` from the session Secret; the desktop would lose its password. Apply it without touching data (server-side apply), or delete the session",
            pod::PASSWORD_KEY
        )
    }))
}
