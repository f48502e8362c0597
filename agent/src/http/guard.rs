//! Who may open the desktop: Basic credentials compared without leaking their length, failed
//! attempts limited per source and overall with backoff (a blocked attempt is refused before its
//! credentials are looked at, so guessing faster gains nothing), and the signalling socket bound
//! to a page this agent served and to that page's origin (a page on another site cannot ride the
//! browser's cached credentials into the desktop).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Failed attempts a source may make before it must wait.
pub const FREE_FAILURES: u32 = 5;
/// Longest wait a source is given.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Failed attempts per second across all sources before every attempt waits.
pub const GLOBAL_FAILURES_PER_SEC: u32 = 20;
/// How long a page's token opens the socket (a tab left open over a working day reconnects).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Sources remembered at most (the oldest are forgotten first).
const MAX_SOURCES: usize = 10_000;

/// Why an attempt is refused before its credentials are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This source failed too often; it may try again after this long.
    Backoff(Duration),
    /// All sources together failed too often in the last second.
    Busy,
}

#[derive(Default)]
struct Source {
    failures: u32,
    blocked_until: Option<Instant>,
    last: Option<Instant>,
}

struct Window {
    started: Instant,
    failures: u32,
}

/// The agent's guard: credentials, attempt limits, page tokens and origins.
pub struct Guard {
    user: String,
    password: String,
    key: [u8; 32],
    sources: Mutex<HashMap<IpAddr, Source>>,
    window: Mutex<Window>,
    /// Origins allowed besides the page's own (`https://portal.example.com`).
    pub allowed_origins: Vec<String>,
    /// Header naming the client when a trusted proxy sets it (`X-Forwarded-For`); without it
    /// the peer address is the source.
    pub proxy_header: Option<HeaderName>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("user", &self.user).field("password", &"<redacted>").finish_non_exhaustive()
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

impl Guard {
    /// A guard for `user:password`, with a fresh random key for page tokens.
    pub fn new(user: &str, password: &str, allowed_origins: Vec<String>, proxy_header: Option<HeaderName>) -> Self {
        let mut key = [0u8; 32];
        // The key only has to be unguessable for the agent's lifetime; the clock and the
        // password's digest stand in if the OS source fails (it does not on Linux).
        if getrandom::fill(&mut key).is_err() {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
            key = digest(format!("{now}:{password}").as_bytes());
        }
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            key,
            sources: Mutex::new(HashMap::new()),
            window: Mutex::new(Window { started: Instant::now(), failures: 0 }),
            allowed_origins: allowed_origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            proxy_header,
        }
    }

    /// True when `Authorization` carries the right user and password. The scheme is matched
    /// case-insensitively; the comparison is of fixed-size digests in constant time, so neither
    /// the content nor the length of the password shows in the timing.
    pub fn authorized(&self, value: Option<&HeaderValue>) -> bool {
        let Some(v) = value.and_then(|v| v.to_str().ok()) else { return false };
        let Some((scheme, given)) = v.trim().split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else { return false };
        let expected = format!("{}:{}", self.user, self.password);
        digest(&decoded).ct_eq(&digest(expected.as_bytes())).into()
    }

    /// The source of a request: the trusted proxy's header when configured, else the peer.
    pub fn source(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if let Some(h) = &self.proxy_header {
            // The proxy appends the client it saw last: that entry is the one it vouches for.
            let named = headers.get(h).and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next());
            if let Some(ip) = named.and_then(|ip| ip.trim().parse().ok()) {
                return Some(ip);
            }
        }
        peer
    }

    /// Whether an attempt from `source` may be checked at all now.
    pub fn admit(&self, source: Option<IpAddr>) -> Result<(), Refusal> {
        let now = Instant::now();
        {
            let w = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if now.duration_since(w.started) < Duration::from_secs(1) && w.failures >= GLOBAL_FAILURES_PER_SEC {
                return Err(Refusal::Busy);
            }
        }
        let Some(ip) = source else { return Ok(()) };
        let sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match sources.get(&ip).and_then(|s| s.blocked_until) {
            Some(until) if until > now => Err(Refusal::Backoff(until - now)),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt: past the free ones, the source waits twice as long each time.
    pub fn failed(&self, source: Option<IpAddr>) {
        let now = Instant::now();
        {
            let mut w = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if now.duration_since(w.started) >= Duration::from_secs(1) {
                *w = Window { started: now, failures: 0 };
            }
            w.failures += 1;
        }
        let Some(ip) = source else { return };
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            let oldest = sources.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k);
            if let Some(k) = oldest {
                sources.remove(&k);
            }
        }
        let s = sources.entry(ip).or_default();
        s.failures += 1;
        s.last = Some(now);
        if s.failures > FREE_FAILURES {
            let doublings = (s.failures - FREE_FAILURES - 1).min(16);
            let wait = Duration::from_secs(1).saturating_mul(1 << doublings).min(MAX_BACKOFF);
            s.blocked_until = Some(now + wait);
        }
    }

    /// A success forgives the source's failures.
    pub fn succeeded(&self, source: Option<IpAddr>) {
        if let Some(ip) = source {
            self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&ip);
        }
    }

    fn mac(&self, issued: u64) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        mac.update(&issued.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A token for a page being served: only pages this agent served can open the socket.
    pub fn issue_token(&self) -> String {
        let issued = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        format!("{issued}.{}", self.mac(issued))
    }

    /// Whether `token` was issued by this agent within its lifetime.
    pub fn token_ok(&self, token: &str) -> bool {
        let Some((issued, mac)) = token.split_once('.') else { return false };
        let Ok(issued) = issued.parse::<u64>() else { return false };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if now.saturating_sub(issued) > TOKEN_LIFETIME.as_secs() || issued > now + 60 {
            return false;
        }
        self.mac(issued).as_bytes().ct_eq(mac.as_bytes()).into()
    }

    /// Whether a WebSocket upgrade's `Origin` may open the desktop: absent (not a browser, so
    /// not a cross-site page), the page's own (same host and port as the request), or one the
    /// settings name.
    pub fn origin_ok(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, a)| a);
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        match (authority, host) {
            (Some(a), Some(h)) => a == h || a == h.trim_end_matches(":80") || a == h.trim_end_matches(":443"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s)))
            .expect("header")
    }

    fn guard() -> Guard {
        Guard::new("user", "pw", vec!["https://portal.example.com/".into()], None)
    }

    #[test]
    fn checks_user_and_password_with_any_scheme_case() {
        let g = guard();
        assert!(g.authorized(Some(&basic("user:pw"))));
        let lower =
            HeaderValue::from_str(&basic("user:pw").to_str().expect("ascii").replace("Basic", "bAsIc")).expect("h");
        assert!(g.authorized(Some(&lower)));
        for bad in ["user:pw2", "other:pw", "user:", "user:pwpw", ""] {
            assert!(!g.authorized(Some(&basic(bad))), "{bad}");
        }
        assert!(!g.authorized(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!g.authorized(None));
        assert!(!format!("{g:?}").contains("pw\""), "Debug never shows the password");
    }

    #[test]
    fn a_source_waits_longer_after_each_failure_and_success_forgives() {
        let g = guard();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for _ in 0..FREE_FAILURES {
            assert_eq!(g.admit(Some(ip)), Ok(()));
            g.failed(Some(ip));
        }
        assert_eq!(g.admit(Some(ip)), Ok(()), "the free attempts are free");
        g.failed(Some(ip));
        assert!(matches!(g.admit(Some(ip)), Err(Refusal::Backoff(_))));
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        assert_eq!(g.admit(Some(other)), Ok(()), "another source is not held back");
        g.succeeded(Some(ip));
        assert_eq!(g.admit(Some(ip)), Ok(()));
    }

    #[test]
    fn many_failures_from_everywhere_hold_everyone_back() {
        let g = guard();
        for i in 0..GLOBAL_FAILURES_PER_SEC {
            g.failed(Some(IpAddr::from([198, 51, 100, u8::try_from(i).unwrap_or(0)])));
        }
        assert_eq!(g.admit(Some("203.0.113.1".parse().expect("ip"))), Err(Refusal::Busy));
    }

    #[test]
    fn tokens_and_origins() {
        let g = guard();
        let t = g.issue_token();
        assert!(g.token_ok(&t));
        assert!(!guard().token_ok(&t), "another agent's key");
        assert!(!g.token_ok("123.abc") && !g.token_ok("") && !g.token_ok(&format!("{t}x")));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("eve-vdi.example.com"));
        assert!(g.origin_ok(&h), "no Origin: not a browser page");
        h.insert(header::ORIGIN, HeaderValue::from_static("https://eve-vdi.example.com"));
        assert!(g.origin_ok(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!g.origin_ok(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://portal.example.com"));
        assert!(g.origin_ok(&h), "named in the settings");
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!g.origin_ok(&h), "a sandboxed or file page");
    }
}
