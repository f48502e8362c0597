//! Kubernetes name rules (DNS-1123 labels) and the names derived from a session name, so the
//! renderer and the webhook agree on `S-auth`, `S-home`, and the limits those suffixes impose.

/// Longest session name: `S-home` and `S-auth` must still be valid 63-character labels, and the
/// Service name must stay a DNS label.
pub const MAX_SESSION_NAME: usize = 58;

/// Checks a DNS-1123 label (lowercase alphanumerics and `-`, starting and ending alphanumeric,
/// at most `max` characters); returns what is wrong.
pub fn check_dns_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!("`{value}` is {} characters long; at most {max} are allowed", value.len()));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !value.chars().all(ok_char) || !value.starts_with(alnum) || !value.ends_with(alnum) {
        return Err(format!(
            "`{value}` is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// Name of the session's auth Secret.
pub fn auth_secret(session: &str) -> String {
    format!("{session}-auth")
}

/// Name of the session's home PersistentVolumeClaim.
pub fn home_claim(session: &str) -> String {
    format!("{session}-home")
}

/// A user's email made into a DNS label (`Jane.Doe@Example.com` → `jane-doe`), for URL patterns.
pub fn user_slug(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let mut slug = String::with_capacity(local.len());
    for c in local.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let slug = if slug.len() > 63 { slug[..63].trim_end_matches('-') } else { slug };
    if slug.is_empty() { "user".to_owned() } else { slug.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(check_dns_label("alice-1", 63).is_ok());
        for bad in ["", "Alice", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_dns_label(bad, 63).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(user_slug("Jane.Doe+vdi@Example.com"), "jane-doe-vdi");
        assert_eq!(user_slug("..@x.io"), "user");
    }

    proptest::proptest! {
        #[test]
        fn slug_is_always_a_label(email in "\\PC{0,80}@[a-z]{1,10}\\.io") {
            let slug = user_slug(&email);
            proptest::prop_assert!(check_dns_label(&slug, 63).is_ok(), "{slug}");
        }
    }
}
