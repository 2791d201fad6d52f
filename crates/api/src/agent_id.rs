//! Agent ids: upstream's rule (`[\w.-]+`, matched in full) with upstream's column width,
//! the same for the registrar, the verifier and the tenant so an id one of them accepts is
//! usable with the others.

/// Longest agent id (upstream's `agent_id VARCHAR(80)` in both services).
pub const MAX_AGENT_ID_CHARS: usize = 80;

/// Whether `id` is 1 to [`MAX_AGENT_ID_CHARS`] letters, digits, `_`, `.` or `-` (Unicode
/// letters and digits included, as Python's `\w`).
pub fn is_valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_AGENT_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_rule() {
        for good in [
            "d432fbb3-d2f1-4a97-9ef7-75bd81c00000",
            "ägent2",
            "host.example_1",
            &"a".repeat(80),
        ] {
            assert!(is_valid_agent_id(good), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a\tb",
            "a/b",
            "%41BC",
            "a@b",
            &"a".repeat(81),
            "ab\n",
        ] {
            assert!(!is_valid_agent_id(bad), "{bad:?}");
        }
    }
}
