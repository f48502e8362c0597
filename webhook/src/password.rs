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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typable_and_unique() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 32 + 7);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c) || c == '-'), "{a}");
    }
}
