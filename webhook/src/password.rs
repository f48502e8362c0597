//! Session passwords: 160 bits from the OS random source, written as lowercase base32 in groups
//! of four (`k7mq-3xr9-...`) so a person can read and type one.

/// Random bytes per password (160 bits, above the 128 the design asks for).
pub const BYTES: usize = 20;

/// A new random password.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; BYTES];
    getrandom::fill(&mut raw)?;
    let text = data_encoding::BASE32_NOPAD.encode(&raw).to_ascii_lowercase();
    let groups: Vec<&str> = text.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    Ok(groups.join("-"))
}

/// Whether `p` has the generated form: 32 base32 symbols (160 bits) in groups of four. A password
/// a person chose (`hunter2`) never has it.
pub fn is_generated(p: &str) -> bool {
    let groups: Vec<&str> = p.split('-').collect();
    groups.len() == 8
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_generated_form_passes() {
        assert!(is_generated(&generate().expect("random")));
        for chosen in [
            "",
            "a",
            "hunter2",
            "aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa",
            "AAAA-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa",
            "aaa1-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa",
        ] {
            assert!(!is_generated(chosen), "{chosen}");
        }
    }

    #[test]
    fn typable_and_unique() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 32 + 7);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c) || c == '-'), "{a}");
    }
}
