//! YAML output, straight from the typed objects with serde-saphyr's serializer: five times
//! faster than serde_yaml's libyaml emitter on our output (measured with scripts/bench-render),
//! and it quotes every string a YAML reader could take for something else.

use serde::Serialize;

/// One YAML document, starting with `---` and ending with a newline.
pub fn document<T: Serialize>(v: &T) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("---\n");
    serde_saphyr::to_fmt_writer(&mut out, v).unwrap_or_else(|e| unreachable!("rendered objects serialize: {e}"));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use serde_json::Value;

    proptest! {
        /// Whatever the strings, the YAML reads back as the same value.
        #[test]
        fn round_trips(keys in prop::collection::vec("\\PC{0,12}", 1..6), values in prop::collection::vec("\\PC{0,16}|[0-9.e+-]{1,6}|true|no|~|null|:0", 1..6), n in any::<i64>()) {
            let mut map = serde_json::Map::new();
            for (k, v) in keys.iter().zip(values.iter()) {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            map.insert("n".into(), Value::from(n));
            map.insert("list".into(), Value::Array(values.iter().cloned().map(Value::String).collect()));
            let original = Value::Object(map);
            let text = document(&original);
            let back: Value = serde_saphyr::from_str(&text).expect("parses");
            prop_assert_eq!(back, original, "{}", text);
        }
    }
}
