//! JSON text as upstream's Python tool writes it (`json.dumps` defaults): `", "` and `": "`
//! separators and every non-ASCII character escaped as `\uXXXX`, so our policies and
//! envelopes are byte-for-byte what upstream would print for the same members in the same
//! order.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(|c: char| !c.is_ascii()) {
            w.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

/// `value` as `json.dumps(value)` would print it.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    // the formatter writes only ASCII
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_escapes_match_python() {
        let v = serde_json::json!({"a": [1, "é𝄞"], "b": {"c": null, "d": "x\"\n"}});
        assert_eq!(
            to_string(&v).unwrap(),
            r#"{"a": [1, "\u00e9\ud834\udd1e"], "b": {"c": null, "d": "x\"\n"}}"#
        );
        assert_eq!(to_string(&serde_json::json!([])).unwrap(), "[]");
        assert_eq!(to_string(&serde_json::json!({})).unwrap(), "{}");
    }
}
