//! TURN credentials the TURN REST way (coturn's `use-auth-secret`): user name `EXPIRY:USER`,
//! password the base64 HMAC-SHA1 of the user name keyed with the shared secret. In a cluster the
//! webhook alone holds the shared secret: it mints one pair per session, valid until the
//! session's deadline, into the session's Secret, and the agent hands the browser that pair. Only
//! a standalone agent (no webhook) mints its own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};

/// A TURN user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `EXPIRY:USER` (minted) or the static user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Mints credentials valid until `now + lifetime` (Unix seconds) for `user`.
pub fn mint(secret: &[u8], user: &str, now_unix: u64, lifetime: Duration) -> Credentials {
    let username = format!("{}:{user}", now_unix.saturating_add(lifetime.as_secs()));
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Credentials { username, password }
}

/// Key of the TURN user name in the session Secret.
pub const USERNAME_KEY: &str = "turn-username";
/// Key of the TURN password in the session Secret.
pub const PASSWORD_KEY: &str = "turn-password";
/// Environment variable the agent reads the TURN user name from (Selkies-GStreamer's name).
pub const USERNAME_ENV: &str = crate::agent::env::TURN_USERNAME;
/// Environment variable the agent reads the TURN password from (Selkies-GStreamer's name).
pub const PASSWORD_ENV: &str = crate::agent::env::TURN_PASSWORD;

/// Mints credentials starting now.
pub fn mint_now(secret: &[u8], user: &str, lifetime: Duration) -> Credentials {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    mint(secret, user, now, lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_turn_rest_recipe() {
        // Expected value computed independently with Python's hmac/hashlib.
        let c = mint(b"s3cret", "alice@example.com", 1_700_000_000, Duration::from_secs(4 * 3600));
        assert_eq!(c.username, "1700014400:alice@example.com");
        assert_eq!(c.password, "bHKAEauaSfj4lC7kOepnsIpnHXw=");
        assert!(!format!("{c:?}").contains(&c.password), "Debug never shows the password");
    }
}
