//! vdi-render: turns VDISession and VDITemplate documents into Kubernetes manifests for Argo CD
//! and Flux. `render` does the whole job in memory; `output` writes or checks a folder.

pub mod cluster;
pub mod flux;
pub mod gitops;
pub mod layout;
pub mod objects;
pub mod output;
pub mod settings;
pub mod shared_gpu;
pub mod template;
pub mod yaml;

use std::{collections::BTreeMap, path::PathBuf};

use rayon::prelude::*;
use vdi_crds::{FieldErrors, VDITemplate, defaults};

pub use layout::{Rendered, RenderedSession};
pub use settings::Settings;
pub use vdi_documents::{Diagnostic, Diagnostics, Kind as DiagnosticKind};

use vdi_documents::{Kind, Origin, read as input, schema};

use crate::template::UrlTemplate;

/// Renders everything under `paths` with `settings`: the cluster-level files (CRDs, templates,
/// namespaces) and every session, sorted by namespace and name whatever the order of the input.
/// Every problem in the input is reported, not only the first.
pub fn render(paths: &[PathBuf], settings: &Settings) -> Result<Rendered, Diagnostics> {
    let settings_error = |(field, message): (String, String)| {
        Diagnostic::new(Kind::Invalid, "<settings>", message).object(Some("settings".into())).field(Some(field))
    };
    let problems = settings.check();
    if !problems.is_empty() {
        return Err(Diagnostics(problems.into_iter().map(settings_error).collect()));
    }
    let url = UrlTemplate::new(&settings.url_template, &settings.domain)
        .map_err(|e| Diagnostics(vec![settings_error(("urlTemplate".into(), e))]))?;
    let files = input::collect_files(paths)?;
    let schemas = schema::Schemas::new();
    let mut input = input::read(&files, &schemas);
    let mut diags = std::mem::take(&mut input.diagnostics);

    let mut report = |input: &mut input::Input, origin: &Origin, object: String, errs: FieldErrors| {
        for e in errs.0 {
            let pos = input.locate(origin, &e.path);
            diags.push(
                Diagnostic::new(Kind::Invalid, &origin.file, e.message)
                    .at(pos)
                    .object(Some(object.clone()))
                    .field(Some(e.path)),
            );
        }
    };

    let mut templates: BTreeMap<String, (VDITemplate, Origin)> = BTreeMap::new();
    for (t, origin) in std::mem::take(&mut input.templates) {
        let name = t.metadata.name.clone().unwrap_or_default();
        let object = format!("VDITemplate {name}");
        report(&mut input, &origin, object.clone(), defaults::check_template(&t));
        report(&mut input, &origin, object.clone(), shared_gpu::check_template(&t, settings));
        if let Some((_, first)) = templates.get(&name) {
            let errs = FieldErrors(vec![vdi_crds::FieldError::new(
                "metadata.name",
                format!(
                    "template `{name}` is defined twice (first in {}); template names are cluster-wide",
                    first.file.display()
                ),
            )]);
            report(&mut input, &origin, object, errs);
            continue;
        }
        templates.insert(name, (t, origin));
    }

    let mut resolved = Vec::new();
    // Host → the session that has it: two sessions on one host would share their traffic.
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), Origin> = BTreeMap::new();
    let mut sessions = std::mem::take(&mut input.sessions);
    sessions.sort_by(|a, b| (&a.1.file, a.1.doc).cmp(&(&b.1.file, b.1.doc)));
    for (s, origin) in sessions {
        let ns = s.metadata.namespace.clone().unwrap_or_else(|| settings.namespace.clone());
        let name = s.metadata.name.clone().unwrap_or_default();
        let object = format!("VDISession {ns}/{name}");
        if let Some(first) = seen.get(&(ns.clone(), name.clone())) {
            let errs = FieldErrors(vec![vdi_crds::FieldError::new(
                "metadata.name",
                format!(
                    "a session named `{name}` in namespace `{ns}` is already defined in {} (document {})",
                    first.file.display(),
                    first.doc + 1
                ),
            )]);
            report(&mut input, &origin, object, errs);
            continue;
        }
        seen.insert((ns.clone(), name.clone()), origin.clone());
        let template = templates.get(&s.spec.template).map(|(t, _)| t);
        match defaults::resolve(&s, template, &ns) {
            Err(errs) => report(&mut input, &origin, object, errs),
            Ok(r) if shared_gpu::too_many(r.gpu, settings) => {
                let errs =
                    FieldErrors(vec![vdi_crds::FieldError::new("spec.resources.gpu", shared_gpu::message(r.gpu))]);
                report(&mut input, &origin, object, errs)
            }
            Ok(r) => match url
                .render(&r)
                .map_err(|e| format!("settings urlTemplate {e}"))
                .and_then(|link| check_host(&link, &r, &mut hosts).map(|()| link))
            {
                Ok(link) => {
                    let mut session = s;
                    defaults::fill_defaults(&mut session, template);
                    resolved.push((r, link, session))
                }
                Err(e) => report(
                    &mut input,
                    &origin,
                    object,
                    FieldErrors(vec![vdi_crds::FieldError::new("metadata.name", e)]),
                ),
            },
        }
    }
    if !diags.is_empty() {
        diags.sort();
        diags.dedup();
        return Err(Diagnostics(diags));
    }
    resolved.sort_by(|a, b| (&a.0.namespace, &a.0.name).cmp(&(&b.0.namespace, &b.0.name)));
    let templates = templates.into_iter().map(|(name, (t, _))| (name, t)).collect();
    let cluster = cluster::render(resolved.iter().map(|(r, _, _)| r.namespace.as_str()), &templates);
    let sessions = resolved
        .par_iter()
        .map(|(r, link, session)| RenderedSession {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            yaml: objects::render(r, session, settings, link).to_yaml().into(),
        })
        .collect();
    Ok(Rendered { cluster, sessions })
}

/// Refuses a URL whose host another session has, or with a DNS label over 63 characters.
fn check_host(link: &str, r: &vdi_crds::ResolvedSession, hosts: &mut BTreeMap<String, String>) -> Result<(), String> {
    let Some(host) = template::host_of(link) else { return Ok(()) };
    if let Some(label) = host.split('.').find(|l| l.len() > 63) {
        return Err(format!(
            "its URL {link} has the DNS label `{label}` of {} characters (at most 63): shorten the session or namespace name, or change settings urlTemplate",
            label.len()
        ));
    }
    let me = format!("{}/{}", r.namespace, r.name);
    match hosts.get(&host) {
        Some(other) if *other != me => Err(format!(
            "its URL host {host} is also session {other}'s: one would receive the other's traffic. Rename one, or make settings urlTemplate tell them apart (for example with a `.` between session and namespace)"
        )),
        _ => {
            hosts.insert(host, me);
            Ok(())
        }
    }
}
