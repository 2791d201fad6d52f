//! JSON text as upstream's Python code writes it with `json.dumps` defaults: `", "` and
//! `": "` separators, every character outside printable ASCII escaped as `\uXXXX`
//! (`ensure_ascii`), floats as Python's `repr`. The tenant prints documents this way and the
//! policy tool writes policies and envelopes byte for byte as upstream's tools do.

use std::io;

use serde::Serialize;

/// `json.dumps(value)`, or the serializer's error (only non-string map keys fail).
pub fn try_dumps<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    value.serialize(&mut ser)?;
    // the formatter writes only ASCII
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `json.dumps(value)` for any serialisable value; struct fields keep their declared order.
pub fn dumps<T: Serialize + ?Sized>(value: &T) -> String {
    // Only non-string map keys fail, which none of our documents have.
    try_dumps(value).unwrap_or_else(|_| serde_json::to_string(value).unwrap_or_default())
}

/// The `serde_json` formatter behind [`dumps`].
pub struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(py_float_repr(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() && c != '\x7f' {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, positional for exponents -4 to
/// 15 (`0.0001`, `1000000000000000.0`), otherwise `1e-05` / `1.5e+16`.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exp) {
        let sign_exp = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{sign_exp}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() > int_len {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    } else {
        format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_escapes_match_python() {
        let v = serde_json::json!({"a": [1, "é𝄞\u{7f}"], "b": {"c": null, "d": "x\"\n"}});
        assert_eq!(
            dumps(&v),
            r#"{"a": [1, "\u00e9\ud834\udd1e\u007f"], "b": {"c": null, "d": "x\"\n"}}"#
        );
        assert_eq!(try_dumps(&serde_json::json!([])).unwrap(), "[]");
        assert_eq!(dumps(&serde_json::json!({})), "{}");
    }

    #[test]
    fn float_repr() {
        for (f, want) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (123.456, "123.456"),
            (-2.5e-7, "-2.5e-07"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }
}
