//! Reference states carry Python regular expressions (`kernel_cmdline`), written by
//! `re.escape` or by hand. This module escapes text exactly as Python's `re.escape` does
//! (so our reference states equal upstream's byte for byte) and translates a Python
//! pattern into the `regex` crate's syntax with Python's `fullmatch` semantics.
//!
//! The translation only rewrites escapes: a backslash before a character that is not an
//! ASCII letter or digit is a literal in Python, and becomes `\x{..}` (Rust rejects some
//! of them, such as `\ `); `\Z` becomes `\z`. Constructs Rust does not have (look-around,
//! back-references) are reported as errors, never approximated.

use regex::{Regex, RegexBuilder};

/// Compiled-size bound for one pattern (the `regex` default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Longest pattern accepted (a kernel command line is at most a few KiB, doubled by
/// escaping).
pub(crate) const MAX_PATTERN_LEN: usize = 64 * 1024;

/// Python's `re.escape` (3.7+): a backslash before each special character.
pub(crate) fn python_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if matches!(
            c,
            '(' | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '?'
                | '*'
                | '+'
                | '-'
                | '|'
                | '^'
                | '$'
                | '\\'
                | '.'
                | '&'
                | '~'
                | '#'
                | ' '
                | '\t'
                | '\n'
                | '\r'
                | '\u{0b}'
                | '\u{0c}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rewrite a Python pattern's escapes into the `regex` crate's syntax.
fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Err("pattern ends with a lone backslash".into()),
            Some('Z') => out.push_str(r"\z"),
            Some(e) if e.is_ascii_alphanumeric() => {
                out.push('\\');
                out.push(e);
            }
            Some(e) => out.push_str(&format!("\\x{{{:x}}}", u32::from(e))),
        }
    }
    Ok(out)
}

/// Compile `prefix` (a literal) followed by the Python pattern `pattern`, anchored at
/// both ends: Python's `re.fullmatch(prefix + pattern, subject)`. `dot_all` is `re.DOTALL`.
pub(crate) fn compile_fullmatch(
    prefix: &str,
    pattern: &str,
    dot_all: bool,
) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "pattern of {} bytes is longer than {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    let body = translate(&format!("{}{pattern}", python_escape(prefix)))?;
    RegexBuilder::new(&format!("^(?:{body})$"))
        .dot_matches_new_line(dot_all)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_matches_python() {
        // re.escape('BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.11 root=UUID=ab ro quiet')
        assert_eq!(
            python_escape("BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.11 root=UUID=ab ro quiet"),
            r"BOOT_IMAGE=\(hd0,gpt2\)/vmlinuz\-5\.11\ root=UUID=ab\ ro\ quiet"
        );
        assert_eq!(python_escape("a_b:c/d=e,f"), "a_b:c/d=e,f");
    }

    #[test]
    fn escaped_text_matches_itself_only() {
        let cmdline = r"BOOT_IMAGE=/vmlinuz-6.1 root=/dev/mapper/x+y ro quiet (x) [y] {z} $a ^b \c";
        let re = compile_fullmatch("kernel_cmdline: ", &python_escape(cmdline), false)
            .expect("compiles");
        assert!(re.is_match(&format!("kernel_cmdline: {cmdline}")));
        assert!(!re.is_match(&format!("kernel_cmdline: {cmdline} single")));
        assert!(!re.is_match(&format!("xkernel_cmdline: {cmdline}")));
    }

    #[test]
    fn python_semantics_kept() {
        // Top-level alternation binds as in Python's concatenated pattern.
        let re = compile_fullmatch("kernel_cmdline: ", "a|b", false).expect("compiles");
        assert!(re.is_match("kernel_cmdline: a"));
        assert!(re.is_match("b"));
        // '.' does not cross newlines unless DOTALL.
        let re = compile_fullmatch("grub_cmd: ", ".*", false).expect("compiles");
        assert!(!re.is_match("grub_cmd: a\nb"));
        let re = compile_fullmatch("grub_cmd: ", ".*", true).expect("compiles");
        assert!(re.is_match("grub_cmd: a\nb"));
        let re = compile_fullmatch("", r"ro\Z", false).expect("compiles");
        assert!(re.is_match("ro"));
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        assert!(compile_fullmatch("", r"(?=x)x", false).is_err());
        assert!(compile_fullmatch("", r"(a)\1", false).is_err());
        assert!(compile_fullmatch("", "(", false).is_err());
        assert!(compile_fullmatch("", "x\\", false).is_err());
        assert!(compile_fullmatch("", &"a".repeat(MAX_PATTERN_LEN + 1), false).is_err());
        // Compiles small but expands past the size limit.
        assert!(compile_fullmatch("", r"(\w{100}){100}", false).is_err());
    }
}
