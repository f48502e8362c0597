//! Kubernetes resource quantities (`4Gi`, `500m`, `2`), accepted as YAML strings or numbers like
//! the API server does, and parsed with `kube_quantity` (a real parser of the apimachinery
//! grammar) rather than a pattern alone.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern the API server uses for `resource.Quantity`, repeated in the CRD schema so the
/// API server rejects malformed values even without the webhook.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Why a quantity did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a Kubernetes quantity (expected a number with an optional suffix such as 4Gi, 512Mi, 500m or 2)"
)]
pub struct QuantityError {
    /// The text that was given.
    pub input: String,
}

/// A Kubernetes quantity, kept as written (so rendering reproduces the author's spelling) and
/// validated on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(String);

impl Quantity {
    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value in base units (bytes for memory, cores for CPU), as a float for comparisons.
    pub fn value(&self) -> f64 {
        parse_value(&self.0).unwrap_or(f64::NAN)
    }

    /// The k8s-openapi form, for building objects.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.0.clone())
    }
}

fn parse_value(s: &str) -> Option<f64> {
    let parsed = kube_quantity::ParsedQuantity::try_from(s).ok()?;
    parsed.to_bytes_f64()
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || QuantityError { input: s.to_owned() };
        let trimmed = s.trim();
        // kube_quantity accepts a bare suffix ("Gi") as zero; the apimachinery grammar needs digits.
        let number = s.strip_prefix(['+', '-']).unwrap_or(s);
        let starts_numeric = number.starts_with(|c: char| c.is_ascii_digit())
            || (number.starts_with('.') && number[1..].starts_with(|c: char| c.is_ascii_digit()));
        if trimmed != s || !starts_numeric {
            return Err(err());
        }
        match parse_value(s) {
            Some(v) if v.is_finite() => Ok(Self(s.to_owned())),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Str(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Str(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_suffixes() {
        assert_eq!("4Gi".parse::<Quantity>().map(|q| q.value()), Ok(4.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!("500m".parse::<Quantity>().map(|q| q.value()), Ok(0.5));
        assert_eq!("2".parse::<Quantity>().map(|q| q.value()), Ok(2.0));
        assert_eq!("1.5G".parse::<Quantity>().map(|q| q.value()), Ok(1.5e9));
        assert_eq!("1e3".parse::<Quantity>().map(|q| q.value()), Ok(1000.0));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "4GB", "Gi", "four", " 4Gi", "4 Gi", "4Gi ", "--1", "1.2.3"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn accepts_yaml_numbers() {
        let q: Quantity = serde_saphyr::from_str("2").expect("integer quantity");
        assert_eq!(q.as_str(), "2");
        let q: Quantity = serde_saphyr::from_str("0.5").expect("float quantity");
        assert_eq!(q.value(), 0.5);
    }

    proptest::proptest! {
        /// Whatever a stranger writes is a quantity or an error, never a panic (the duration
        /// parser's dependency panicked on non-ASCII text; `kube_quantity` is asked the same).
        #[test]
        fn any_text_parses_or_is_refused(text in "[0-9.+-]{0,3}\\PC{0,10}") {
            let _ = text.parse::<Quantity>();
        }

        #[test]
        fn binary_suffix_round_trips(n in 1u32..100_000, suffix in proptest::sample::select(vec!["Ki", "Mi", "Gi", "Ti"])) {
            let q: Quantity = format!("{n}{suffix}").parse().expect("valid");
            let mult = match suffix { "Ki" => 1024f64, "Mi" => 1024f64.powi(2), "Gi" => 1024f64.powi(3), _ => 1024f64.powi(4) };
            proptest::prop_assert_eq!(q.value(), f64::from(n) * mult);
        }
    }
}
