//! Validation of what the schema cannot express, with messages a person understands: templates
//! that exist and the bounds they set, immutable `user` and `template`, safe session Pods, and
//! Secrets that keep their password.

use k8s_openapi::api::core::v1::Secret;
use kube::core::admission::Operation;
use vdi_crds::{VDISession, defaults, pod};

use crate::{
    AppState,
    mutate::has_password,
    password, pod_view,
    review::{
        Decision, Request, Target,
        subject::{self, Subject, typed},
    },
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
        Target::SessionPod => match subject::session_pod(req) {
            // Any other Pod this webhook is asked about is in a session namespace (the
            // configuration selects those namespaces): it may not escape the same rules, or a
            // Pod without the label would be the way around them.
            Subject::NotOurs => return unlabelled_pod(req),
            Subject::Unreadable(e) => Err(e),
            Subject::Ours(p) => Ok({
                let errs = pod::check(&p);
                if errs.is_empty() { impersonation(state, &p) } else { Some(format!("unsafe session Pod: {errs}")) }
            }),
        },
        Target::Session | Target::SessionSecret => {
            let Some(object) = req.object() else { return Decision::unreadable("the request carries no object") };
            if target == Target::Session {
                session(state, req, object)
            } else {
                match subject::session_object(object, target, "Secret", |j| serde_json::from_str::<Secret>(j)) {
                    Subject::NotOurs => return Decision::allow(),
                    Subject::Unreadable(e) => Err(e),
                    Subject::Ours(new) => secret(req, &new),
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

/// A Pod in a session namespace that is no session's: held to the same rules, and allowed with
/// a warning, since nothing of a session (password, GPU, Service) reaches it.
fn unlabelled_pod(req: &Request<'_>) -> Decision {
    match req.object().map(|raw| pod_view::parse(raw.get())) {
        None => Decision::allow(),
        Some(Err(e)) => Decision::unreadable(format!("the Pod in the request does not parse: {e}")),
        Some(Ok(view)) => {
            let errs = pod::check(&view);
            if !errs.is_empty() {
                return Decision::deny(format!("unsafe Pod in a session namespace: {errs}"));
            }
            Decision::allow().warn(format!(
                "this Pod is in a session namespace but is no session's (no {} label): it gets no session password, GPU or Service",
                vdi_crds::labels::SESSION
            ))
        }
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
    if let Some(accounts) = &state.gitops_accounts
        && req.operation == Operation::Create
    {
        let who = req.username.as_deref().unwrap_or("");
        if !accounts.iter().any(|a| a == who) && !who.eq_ignore_ascii_case(&s.spec.user) {
            problems.push(format!(
                "spec.user is {} but you are {}: a person may create a desktop only for themselves; sessions for others come through git (the GitOps controller: {})",
                s.spec.user,
                if who.is_empty() { "unknown" } else { who },
                accounts.join(", ")
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

/// Only a session's own Pod may carry its label (it gets the session's password and its
/// Service's traffic): the Pod named as the session, running the image of the template it names.
fn impersonation(state: &AppState, p: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    let labels = p.metadata.labels.as_ref()?;
    let session = labels.get(vdi_crds::labels::SESSION)?;
    let name = p.metadata.name.as_deref().unwrap_or("");
    if name != session {
        return Some(format!(
            "only session {session}'s own Pod (named {session}) may carry the label vdi.kasm.io/session: {session}; this Pod is named `{name}`"
        ));
    }
    let Some(template_name) = labels.get(vdi_crds::labels::TEMPLATE) else {
        return Some(format!("session {session}'s Pod names no template (label {})", vdi_crds::labels::TEMPLATE));
    };
    let Some(template) = state.templates.get(template_name) else {
        return Some(format!("session {session}'s Pod names the template `{template_name}`, which does not exist"));
    };
    let spec = p.spec.as_ref()?;
    let desktop = spec.containers.iter().find(|c| c.name == pod::DESKTOP_CONTAINER).or(spec.containers.first())?;
    let image = desktop.image.as_deref().unwrap_or("");
    (image != template.spec.image).then(|| {
        format!(
            "session {session}'s Pod must run its template's image {} (template `{template_name}`), not `{image}`",
            template.spec.image
        )
    })
}

/// The Secret's password as text, from `data` or `stringData`.
fn password_of(secret: &Secret) -> Option<String> {
    let data =
        secret.data.as_ref().and_then(|d| d.get(pod::PASSWORD_KEY)).map(|b| String::from_utf8_lossy(&b.0).into_owned());
    data.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(pod::PASSWORD_KEY)).cloned())
}

fn secret(req: &Request<'_>, new: &Secret) -> Result<Option<String>, String> {
    let old: Option<Secret> = match (req.operation == Operation::Update, req.old_object()) {
        (true, Some(o)) => Some(typed(o, "old Secret")?),
        _ => None,
    };
    let (before, after) = (old.as_ref().and_then(password_of), password_of(new));
    if let Some(old) = &old
        && has_password(old)
        && !has_password(new)
    {
        return Ok(Some(format!(
            "this update removes `{}` from the session Secret; the desktop would lose its password. Apply it without touching data (server-side apply), or delete the session",
            pod::PASSWORD_KEY
        )));
    }
    Ok(match (before, after) {
        (Some(b), Some(a)) if a != b => Some(
            "the session password cannot be changed by an update (nobody may choose it); delete the Secret and the session's Pod for a new one".into(),
        ),
        (None, Some(a)) if !password::is_generated(&a) => Some(
            "the session password must be the one vdi-webhook generates (160 random bits); leave `password` out and it is filled in".into(),
        ),
        _ => None,
    })
}
