//! Defaulting and cross-object validation: a VDISession plus its VDITemplate become one
//! `ResolvedSession` with every value decided. The renderer and the webhook both call `resolve`,
//! so a default is chosen in exactly one place.

use crate::{
    Duration, EnvVar, FieldErrors, Quantity, VDISession, VDITemplate,
    names::{self, MAX_SESSION_NAME},
};

/// GPUs when neither session nor template says.
pub const DEFAULT_GPU: u32 = 1;
/// Upper bound on GPUs when the template sets none (the schema's maximum).
pub const MAX_GPU: u32 = 16;
/// Memory when neither session nor template says.
pub const DEFAULT_MEMORY: &str = "4Gi";
/// Least memory a desktop can run in.
pub const MIN_MEMORY: &str = "512Mi";
/// Most memory when the template sets no bound.
pub const MAX_MEMORY: &str = "512Gi";
/// CPU when neither session nor template says.
pub const DEFAULT_CPU: &str = "2";
/// Session timeout when the session does not say.
pub const DEFAULT_TIMEOUT: &str = "8h";
/// Longest allowed timeout: one week (the CRD's CEL rule says the same).
pub const MAX_TIMEOUT_SECS: i64 = 7 * 24 * 3600;
/// Home volume size when the template does not say.
pub const DEFAULT_HOME_SIZE: &str = "10Gi";
/// Where the home volume is mounted when the template does not say.
pub const DEFAULT_HOME_MOUNT: &str = "/home/user";

/// A session with every default applied and every cross-object rule checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSession {
    /// Session name (a DNS label).
    pub name: String,
    /// Namespace the session's objects go to.
    pub namespace: String,
    /// The user's email.
    pub user: String,
    /// Template name.
    pub template: String,
    /// Desktop image.
    pub image: String,
    /// GPUs (0 for CPU-only).
    pub gpu: u32,
    /// Memory limit.
    pub memory: Quantity,
    /// CPU limit.
    pub cpu: Quantity,
    /// Session lifetime.
    pub timeout: Duration,
    /// Template environment, in template order.
    pub env: Vec<EnvVar>,
    /// Home volume size.
    pub home_size: Quantity,
    /// Home volume StorageClass from the template, if it names one.
    pub home_storage_class: Option<String>,
    /// Mount path of the home volume.
    pub home_mount_path: String,
}

fn builtin(q: &str) -> Quantity {
    // The built-in constants above are valid quantities; a test proves it.
    q.parse().unwrap_or_else(|_| unreachable!("built-in quantity {q} is valid"))
}

/// Fills the session's defaults from `template` (else the built-in ones) and checks the rules that
/// span objects: the template exists, GPUs and memory within its bounds, timeout within a week,
/// names that are DNS labels. `namespace` is the session's namespace after any settings default.
/// Every problem is reported, not only the first.
pub fn resolve(
    session: &VDISession,
    template: Option<&VDITemplate>,
    namespace: &str,
) -> Result<ResolvedSession, FieldErrors> {
    let mut errs = FieldErrors::default();
    let name = session.metadata.name.clone().unwrap_or_default();
    if let Err(e) = names::check_dns_label(&name, MAX_SESSION_NAME) {
        errs.push("metadata.name", e);
    }
    if let Err(e) = names::check_dns_label(namespace, 63) {
        errs.push("metadata.namespace", e);
    }
    let spec = &session.spec;
    if !is_email(&spec.user) {
        errs.push("spec.user", format!("`{}` is not an email address (expected name@domain.tld)", spec.user));
    }
    let sres = spec.resources.clone().unwrap_or_default();
    if let Some(g) = sres.gpu.filter(|g| *g < 0) {
        errs.push("spec.resources.gpu", format!("must be 0 or more, got {g}"));
    }
    let timeout = spec.timeout.clone().unwrap_or_else(default_timeout);
    if timeout.as_secs() > MAX_TIMEOUT_SECS {
        errs.push("spec.timeout", format!("{timeout} is longer than the limit of 168h (one week)"));
    }
    let Some(template) = template else {
        errs.push("spec.template", format!("no VDITemplate named `{}` was found", spec.template));
        return Err(errs);
    };
    let tspec = &template.spec;
    if tspec.image.trim().is_empty() {
        errs.push("spec.template", format!("VDITemplate `{}` has no image", spec.template));
    }
    let tres = tspec.resources.clone().unwrap_or_default();

    let defaults = TemplateDefaults::of(Some(template));
    let max_gpu = defaults.max_gpu;
    let gpu = match sres.gpu {
        None => defaults.gpu,
        Some(g) => u32::try_from(g).unwrap_or(0),
    };
    if gpu > max_gpu {
        errs.push(
            "spec.resources.gpu",
            format!("asks for {gpu} GPUs but template `{}` allows at most {max_gpu}", spec.template),
        );
    }

    let memory = sres.memory.unwrap_or(defaults.memory);
    let max_memory = tres.max_memory.clone().unwrap_or_else(|| builtin(MAX_MEMORY));
    if memory.value() < builtin(MIN_MEMORY).value() || memory.value() > max_memory.value() {
        errs.push(
            "spec.resources.memory",
            format!("{memory} is out of bounds: a desktop needs between {MIN_MEMORY} and {max_memory}"),
        );
    }
    let cpu = sres.cpu.unwrap_or(defaults.cpu);
    if cpu.value() <= 0.0 {
        errs.push("spec.resources.cpu", format!("{cpu} must be more than zero"));
    }

    let home = tspec.home.clone().unwrap_or_default();
    let resolved = ResolvedSession {
        name,
        namespace: namespace.to_owned(),
        user: spec.user.clone(),
        template: spec.template.clone(),
        image: tspec.image.clone(),
        gpu,
        memory,
        cpu,
        timeout,
        env: tspec.env.clone(),
        home_size: home.size.unwrap_or_else(|| builtin(DEFAULT_HOME_SIZE)),
        home_storage_class: home.storage_class_name,
        home_mount_path: home.mount_path.unwrap_or_else(|| DEFAULT_HOME_MOUNT.to_owned()),
    };
    errs.into_result(resolved)
}

/// Checks a template on its own: an image, and defaults within its own bounds.
pub fn check_template(template: &VDITemplate) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if let Err(e) = names::check_dns_label(template.metadata.name.as_deref().unwrap_or(""), 253) {
        errs.push("metadata.name", e);
    }
    if template.spec.image.trim().is_empty() {
        errs.push("spec.image", "a template needs an image (for example ghcr.io/example/desktop:1.0)");
    }
    for (i, e) in template.spec.env.iter().enumerate() {
        if e.name == crate::pod::PASSWORD_ENV {
            errs.push(
                format!("spec.env[{i}].name"),
                format!("{} is set per session from its Secret; a template must not carry a password", e.name),
            );
        }
    }
    if let Some(r) = &template.spec.resources {
        if let (Some(d), Some(m)) = (r.default_gpu, r.max_gpu)
            && d > m
        {
            errs.push("spec.resources.defaultGPU", format!("defaultGPU {d} exceeds maxGPU {m}"));
        }
        if let (Some(d), Some(m)) = (&r.default_memory, &r.max_memory)
            && d.value() > m.value()
        {
            errs.push("spec.resources.defaultMemory", format!("defaultMemory {d} exceeds maxMemory {m}"));
        }
    }
    errs
}

/// The same rule as the schema's `spec.user` pattern.
pub fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && !s.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|p| !p.is_empty())
}

/// What a session gets from its template (else the built-in defaults) when it does not ask.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDefaults {
    /// GPUs.
    pub gpu: u32,
    /// Most GPUs a session may ask for.
    pub max_gpu: u32,
    /// Memory.
    pub memory: Quantity,
    /// CPU.
    pub cpu: Quantity,
}

impl TemplateDefaults {
    /// The defaults of `template`, or the built-in ones without a template.
    pub fn of(template: Option<&VDITemplate>) -> Self {
        let tres = template.and_then(|t| t.spec.resources.clone()).unwrap_or_default();
        let max_gpu = tres.max_gpu.map_or(MAX_GPU, |m| u32::try_from(m).unwrap_or(0));
        Self {
            gpu: tres.default_gpu.map_or(DEFAULT_GPU.min(max_gpu), |g| u32::try_from(g).unwrap_or(0)),
            max_gpu,
            memory: tres.default_memory.unwrap_or_else(|| builtin(DEFAULT_MEMORY)),
            cpu: tres.default_cpu.unwrap_or_else(|| builtin(DEFAULT_CPU)),
        }
    }
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT.parse().unwrap_or_else(|_| unreachable!("the built-in timeout is valid"))
}

/// Writes every unset value of the session's spec from its template (else the built-in
/// defaults): the webhook's defaulting mutation. Never changes a value that is set.
pub fn fill_defaults(session: &mut VDISession, template: Option<&VDITemplate>) {
    let d = TemplateDefaults::of(template);
    let res = session.spec.resources.get_or_insert_with(Default::default);
    res.gpu.get_or_insert(i32::try_from(d.gpu).unwrap_or(i32::MAX));
    res.memory.get_or_insert(d.memory);
    res.cpu.get_or_insert(d.cpu);
    session.spec.timeout.get_or_insert_with(default_timeout);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VDISessionSpec, VDITemplateSpec};

    #[test]
    fn builtins_parse() {
        for q in [DEFAULT_MEMORY, MIN_MEMORY, MAX_MEMORY, DEFAULT_CPU, DEFAULT_HOME_SIZE] {
            assert!(q.parse::<Quantity>().is_ok(), "{q}");
        }
        assert_eq!(DEFAULT_TIMEOUT.parse::<Duration>().map(|d| d.as_secs()), Ok(8 * 3600));
    }

    fn session(gpu: Option<i32>) -> VDISession {
        let mut s = VDISession::new(
            "alice",
            VDISessionSpec { user: "alice@example.com".into(), template: "t".into(), resources: None, timeout: None },
        );
        s.spec.resources = Some(crate::SessionResources { gpu, ..Default::default() });
        s
    }

    fn template(max_gpu: Option<i32>) -> VDITemplate {
        VDITemplate::new(
            "t",
            VDITemplateSpec {
                image: "img:1".into(),
                display_name: None,
                description: None,
                resources: Some(crate::TemplateResources { max_gpu, ..Default::default() }),
                env: vec![],
                home: None,
            },
        )
    }

    #[test]
    fn defaults_come_from_builtins() {
        let r = resolve(&session(None), Some(&template(None)), "ns").expect("valid");
        assert_eq!((r.gpu, r.memory.as_str(), r.cpu.as_str(), r.timeout.as_secs()), (1, "4Gi", "2", 28800));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut s = session(Some(3));
        s.metadata.name = Some("Bad_Name".into());
        s.spec.user = "not-an-email".into();
        let errs = resolve(&s, Some(&template(Some(2))), "ns").expect_err("invalid");
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["metadata.name", "spec.user", "spec.resources.gpu"]);
    }

    #[test]
    fn unknown_template() {
        let errs = resolve(&session(None), None, "ns").expect_err("no template");
        assert!(errs.to_string().contains("no VDITemplate named `t`"));
    }

    #[test]
    fn emails() {
        assert!(is_email("a.b+c@example.co.uk"));
        for bad in ["", "a", "a@b", "@b.c", "a@.c", "a@b.", "a b@c.d", "a@b@c.d"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
