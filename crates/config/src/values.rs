//! Conversions of option text to typed values, shared by the INI services and
//! the agent.
//!
//! Each function returns `Err(reason)` with a message that names what was
//! expected and what was found; callers add the file, line and option.

use crate::pyliteral::{self, PyValue};

/// Drops surrounding spaces and double quotes the way upstream's
/// `value.strip('" ')` does, then one matching pair of single quotes.
pub fn unquote(raw: &str) -> &str {
    let s = raw.trim().trim_matches(|c| c == '"' || c == ' ').trim();
    match s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner,
        None => s,
    }
}

/// `configparser` booleans: `1/yes/true/on`, `0/no/false/off`, any case.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match unquote(raw).to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!(
            "expected a boolean (true/false, yes/no, on/off, 1/0), found {raw:?}"
        )),
    }
}

/// An integer of type `T` (decimal, optional sign, `_` separators as Python).
pub fn parse_int<T>(raw: &str) -> Result<T, String>
where
    T: IntOption,
{
    let text: String = unquote(raw).chars().filter(|c| *c != '_').collect();
    let text = text.strip_prefix('+').unwrap_or(&text);
    text.parse::<T>()
        .map_err(|_| format!("expected an integer {}, found {raw:?}", T::range_text()))
}

/// A finite, non-negative number of seconds (Python `float()` syntax).
pub fn parse_seconds(raw: &str) -> Result<f64, String> {
    let text = unquote(raw);
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "expected a non-negative number of seconds, found {raw:?}"
        )),
    }
}

/// A list written either as a Python literal (`['a', 'b']`) or as
/// comma-separated words (`a, b` or `"a", "b"`). Empty text is an empty list.
pub fn parse_list(raw: &str) -> Result<Vec<String>, String> {
    let text = raw.trim().trim_matches(|c| c == '"' || c == ' ').trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') || text.starts_with('(') {
        let value = pyliteral::parse(text).map_err(|e| format!("{e} in {raw:?}"))?;
        let PyValue::List(items) = value else {
            return Err(format!("expected a list, found {raw:?}"));
        };
        return items
            .into_iter()
            .map(|item| match item {
                PyValue::Str(s) => Ok(s.trim().to_string()),
                PyValue::Int(i) => Ok(i.to_string()),
                PyValue::Float(f) => Ok(f.to_string()),
                other => Err(format!(
                    "expected a list of strings, found element {other:?} in {raw:?}"
                )),
            })
            .collect();
    }
    Ok(text
        .split(',')
        .map(|item| unquote(item).to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

/// Parses a Python literal list of arbitrary values (for structured options
/// such as `severity_policy`).
pub fn parse_literal_list(raw: &str) -> Result<Vec<PyValue>, String> {
    let text = raw.trim().trim_matches(|c| c == '"' || c == ' ').trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    match pyliteral::parse(text).map_err(|e| format!("{e} in {raw:?}"))? {
        PyValue::List(items) => Ok(items),
        _ => Err(format!("expected a list, found {raw:?}")),
    }
}

/// Integer types accepted by [`parse_int`]; gives their range for messages.
pub trait IntOption: std::str::FromStr {
    /// `from MIN to MAX`.
    fn range_text() -> String;
}

macro_rules! int_option {
    ($($t:ty),*) => {$(
        impl IntOption for $t {
            fn range_text() -> String {
                format!("from {} to {}", <$t>::MIN, <$t>::MAX)
            }
        }
    )*};
}
int_option!(u8, u16, u32, u64, i32, i64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_like_upstream() {
        assert_eq!(unquote(" \"127.0.0.1\" "), "127.0.0.1");
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\"\""), "");
    }

    #[test]
    fn booleans() {
        for t in ["True", "yes", "1", "ON", "\"true\""] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["False", "no", "0", "off"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        let e = parse_bool("maybe").expect_err("not a bool");
        assert!(e.contains("\"maybe\""), "{e}");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int::<u16>("8881"), Ok(8881));
        assert_eq!(parse_int::<u16>(" +8_881 "), Ok(8881));
        assert_eq!(parse_int::<i32>("-1"), Ok(-1));
        let e = parse_int::<u16>("70000").expect_err("too big");
        assert!(e.contains("0 to 65535"), "{e}");
        assert!(parse_int::<u32>("2.0").is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("60.0"), Ok(60.0));
        assert_eq!(parse_seconds("2"), Ok(2.0));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
    }

    #[test]
    fn lists_in_both_spellings() {
        assert_eq!(
            parse_list("['sha512', 'sha384', 'sha256']"),
            Ok(vec!["sha512".into(), "sha384".into(), "sha256".into()])
        );
        assert_eq!(
            parse_list("sha512, sha384,sha256"),
            Ok(vec!["sha512".into(), "sha384".into(), "sha256".into()])
        );
        assert_eq!(parse_list("[]"), Ok(vec![]));
        assert_eq!(parse_list(""), Ok(vec![]));
        assert_eq!(parse_list("\"a\", \"b\""), Ok(vec!["a".into(), "b".into()]));
        assert!(parse_list("['a', [1]]").is_err());
        assert!(parse_list("['a'").is_err());
    }
}
