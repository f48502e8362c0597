//! Durations in the Go/Kubernetes syntax (`8h`, `90m`, `1h30m`, `45s`), the form `metav1.Duration`
//! and CEL's `duration()` accept, parsed with `go-parse-duration` (a port of Go's
//! `time.ParseDuration`) so the API server's CEL rules and this code agree on every input.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A coarse shape check repeated in the CRD schema; the CEL rule and this parser do the rest.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not in the Go duration syntax.
    #[error("`{0}` is not a duration (expected a positive duration such as 8h, 90m or 1h30m)")]
    Syntax(String),
    /// Zero or negative.
    #[error("`{0}` must be longer than zero")]
    NotPositive(String),
}

/// A positive duration, kept as written and as whole seconds (rounded up).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    nanos: i64,
}

impl Duration {
    /// The duration as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds, rounded up so a timeout never ends early.
    pub fn as_secs(&self) -> i64 {
        (self.nanos + 999_999_999) / 1_000_000_000
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Go accepts signs and a bare "0"; a timeout is neither, so refuse them up front.
        if s.is_empty() || s.starts_with(['+', '-']) {
            return Err(DurationError::Syntax(s.to_owned()));
        }
        // `go-parse-duration` 0.1.1 indexes characters by byte offset and panics on any other
        // non-ASCII character (found by the webhook's fuzz test: `"0\u{a980}"` in a session's
        // spec panicked the review and dropped the API server's call; `vdi-render` checks the
        // schema's pattern first). Go's only non-ASCII units are the two spellings of `µs`, so
        // they become `us`, and anything else outside ASCII is refused before the port sees it.
        let ascii = s.replace(['\u{b5}', '\u{3bc}'], "u");
        if !ascii.is_ascii() {
            return Err(DurationError::Syntax(s.to_owned()));
        }
        let nanos = go_parse_duration::parse_duration(&ascii).map_err(|_| DurationError::Syntax(s.to_owned()))?;
        if nanos <= 0 {
            return Err(DurationError::NotPositive(s.to_owned()));
        }
        Ok(Self { text: s.to_owned(), nanos })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<i64, DurationError> {
        s.parse::<Duration>().map(|d| d.as_secs())
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(secs("8h"), Ok(8 * 3600));
        assert_eq!(secs("90m"), Ok(90 * 60));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1.5h"), Ok(5400));
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("1500ms"), Ok(2), "rounded up");
        assert_eq!(secs("168h"), Ok(7 * 24 * 3600));
    }

    #[test]
    fn rejects_what_go_rejects_and_non_positive() {
        for bad in ["", "8", "8 h", "8hours", "1d", "h", "-1h", "+1h", "1h-30m", "abc"] {
            assert!(matches!(bad.parse::<Duration>(), Err(DurationError::Syntax(_))), "{bad:?}");
        }
        assert_eq!("0s".parse::<Duration>(), Err(DurationError::NotPositive("0s".into())));
    }

    #[test]
    fn non_ascii_is_refused_without_a_panic_and_both_micro_signs_are_go_s() {
        assert_eq!(secs("1500000\u{b5}s"), Ok(2));
        assert_eq!(secs("1500000\u{3bc}s"), Ok(2));
        for bad in ["1\u{e9}", "1h\u{e9}", "\u{e9}h", "1\u{b5}", "1\u{b5}h", "1s\u{1f600}", "\u{660}s", "1\u{2003}s"] {
            assert!(matches!(bad.parse::<Duration>(), Err(DurationError::Syntax(_))), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever a stranger writes is a duration or a syntax error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,12}") {
            let _ = text.parse::<Duration>();
        }

        #[test]
        fn hours_and_minutes_add_up(h in 0i64..200, m in 0i64..600) {
            let text = format!("{h}h{m}m");
            let parsed = text.parse::<Duration>();
            if h == 0 && m == 0 {
                proptest::prop_assert!(parsed.is_err());
            } else {
                proptest::prop_assert_eq!(parsed.map(|d| d.as_secs()), Ok(h * 3600 + m * 60));
            }
        }
    }
}
