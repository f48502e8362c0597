//! String interpolation for settings (the session URL pattern), with minijinja in strict mode so
//! a misspelt variable is an error, never an empty string in a hostname.

use minijinja::{Environment, UndefinedBehavior, context};

use vdi_crds::ResolvedSession;

/// A compiled URL pattern.
pub struct UrlTemplate {
    env: Environment<'static>,
    domain: String,
}

impl UrlTemplate {
    /// Compiles `source` and renders it once with sample values, so undefined variables and
    /// results that are not `https://host` URLs are found before any session is rendered.
    pub fn new(source: &str, domain: &str) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned("url", source.to_owned()).map_err(|e| format!("does not parse: {e}"))?;
        let t = Self { env, domain: domain.to_owned() };
        let sample = t.render_vars("session", "namespace", "user@example.com", "template")?;
        host_of(&sample).ok_or_else(|| format!("renders to `{sample}`, which is not an http(s) URL with a host"))?;
        Ok(t)
    }

    /// The URL of one session.
    pub fn render(&self, s: &ResolvedSession) -> Result<String, String> {
        self.render_vars(&s.name, &s.namespace, &s.user, &s.template)
    }

    fn render_vars(&self, session: &str, namespace: &str, user: &str, template: &str) -> Result<String, String> {
        let tmpl = self.env.get_template("url").map_err(|e| e.to_string())?;
        tmpl.render(context! {
            session, namespace, user, template,
            user_slug => vdi_crds::names::user_slug(user),
            domain => &self.domain,
        })
        .map_err(|e| format!("cannot be rendered: {e}"))
    }
}

/// The host of an `http(s)://host[:port]/...` URL.
pub fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    parsed.host_str().filter(|h| !h.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_variables_are_errors() {
        let e = UrlTemplate::new("https://{{ sesion }}.{{ domain }}", "d.io").err().expect("strict");
        assert!(e.contains("undefined"), "{e}");
        assert!(UrlTemplate::new("https://{{ user_slug }}.{{ domain }}", "d.io").is_ok());
        assert!(UrlTemplate::new("{{ session }}", "d.io").is_err(), "not a URL");
    }
}
