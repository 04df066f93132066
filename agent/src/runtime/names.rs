//! Docker-style generated names (`brave_turing`) and name/ID validation.

const LEFT: [&str; 24] = [
    "admiring", "agitated", "amazing", "bold", "brave", "busy", "clever", "cool", "dazzling", "eager", "elastic",
    "epic", "focused", "gallant", "happy", "jolly", "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp",
    "zen",
];
const RIGHT: [&str; 24] = [
    "babbage", "bell", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermat", "feynman", "gauss",
    "hopper", "kepler", "knuth", "lamport", "lovelace", "newton", "noether", "pascal", "ritchie", "shannon", "tesla",
    "thompson", "turing",
];

/// A random `adjective_name`.
pub fn generate() -> String {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    format!("{}_{}", LEFT[b[0] as usize % LEFT.len()], RIGHT[b[1] as usize % RIGHT.len()])
}

/// A new 64-hex container ID.
pub fn new_id() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("random ID: {e}"))?;
    Ok(hex::encode(b))
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, here at most 128 characters.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// RFC 1123 hostname label(s), at most 64 characters.
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("a.b_c-1"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        assert!(valid_name(&generate()));
        assert_eq!(new_id().unwrap().len(), 64);
        assert!(valid_hostname("box-1.local"));
        assert!(!valid_hostname("bad_host"));
        assert!(!valid_hostname(&"a".repeat(65)));
    }
}
