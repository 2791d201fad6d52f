//! JSON the way the upstream (Python) tenant writes and prints it: `json.dumps` text (`", "`
//! and `": "` separators, non-ASCII as `\uXXXX`, floats as Python's `repr`) and `str()` of a
//! decoded document — the `{'code': 201, 'status': 'Created', 'results': {}}` lines that the
//! policy commands print. [`PyValue`] keeps object members in document order, as a Python
//! `dict` does, so both renderings list keys the way the peer or the file wrote them.
//!
//! Printable-character detection follows Python's rule (Unicode "Other" and "Separator"
//! categories are escaped) for the ranges that occur in practice; unassigned code points are
//! printed as they are.

use std::fmt::{self, Write as _};

pub use keylime_api::pyjson::{dumps, py_float_repr};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

/// A JSON document with object members in document order (later duplicates replace the
/// value of the first, as `json.loads` does).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PyValue {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<PyValue>),
    Object(Vec<(String, PyValue)>),
}

impl PyValue {
    /// Parses JSON text (serde_json's nesting limit applies, so hostile input cannot
    /// exhaust the stack).
    pub fn parse(bytes: &[u8]) -> Result<PyValue, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PyValue::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, PyValue::Object(_))
    }

    /// The members of an object, in document order.
    pub fn members_mut(&mut self) -> Option<&mut Vec<(String, PyValue)>> {
        match self {
            PyValue::Object(members) => Some(members),
            _ => None,
        }
    }

    /// `d[key] = value` on an object, as Python does it: a member already there keeps its
    /// place, a new one goes last. `false` (nothing changed) if this is not an object.
    pub fn set(&mut self, key: &str, value: PyValue) -> bool {
        let Some(members) = self.members_mut() else {
            return false;
        };
        match members.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => members.push((key.to_owned(), value)),
        }
        true
    }

    /// A [`serde_json::Value`] as a `PyValue` (members in the value's order, which is
    /// sorted: for documents this program makes, not for ones it re-prints).
    pub fn from_value(value: &Value) -> PyValue {
        match value {
            Value::Null => PyValue::Null,
            Value::Bool(b) => PyValue::Bool(*b),
            Value::Number(n) => PyValue::Number(n.clone()),
            Value::String(s) => PyValue::String(s.clone()),
            Value::Array(items) => PyValue::Array(items.iter().map(PyValue::from_value).collect()),
            Value::Object(map) => PyValue::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), PyValue::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// `json.dumps(value)`.
    pub fn dumps(&self) -> String {
        dumps(self)
    }

    /// `str(value)` of the decoded document, e.g. `{'code': 200, 'results': None}`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// The value as Python formats it into text (`f"{value}"`): a string as it is,
    /// anything else as [`PyValue::repr`].
    pub fn text(&self) -> String {
        match self {
            PyValue::String(s) => s.clone(),
            other => other.repr(),
        }
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::Null => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => out.push_str(&py_float_repr(f)),
                _ => out.push_str(&n.to_string()),
            },
            PyValue::String(s) => py_str_repr(s, out),
            PyValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_repr(out);
                }
                out.push(']');
            }
            PyValue::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_str_repr(k, out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// The same document as a [`serde_json::Value`] (member order is not kept).
    pub fn to_value(&self) -> Value {
        match self {
            PyValue::Null => Value::Null,
            PyValue::Bool(b) => Value::Bool(*b),
            PyValue::Number(n) => Value::Number(n.clone()),
            PyValue::String(s) => Value::String(s.clone()),
            PyValue::Array(items) => Value::Array(items.iter().map(PyValue::to_value).collect()),
            PyValue::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Compact JSON (as `serde_json::Value` displays), members in document order.
impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for PyValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PyValue::Null => s.serialize_unit(),
            PyValue::Bool(b) => s.serialize_bool(*b),
            PyValue::Number(n) => n.serialize(s),
            PyValue::String(v) => s.serialize_str(v),
            PyValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            PyValue::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct PyValueVisitor;

impl<'de> Visitor<'de> for PyValueVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<PyValue, E> {
        Ok(PyValue::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PyValue, E> {
        Number::from_f64(v)
            .map(PyValue::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::String(v))
    }

    fn visit_unit<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }

    fn visit_none<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PyValue, D::Error> {
        PyValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(PyValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut members: Vec<(String, PyValue)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, PyValue>()? {
            match members.iter_mut().find(|(existing, _)| *existing == k) {
                Some(slot) => slot.1 = v,
                None => members.push((k, v)),
            }
        }
        Ok(PyValue::Object(members))
    }
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PyValue, D::Error> {
        d.deserialize_any(PyValueVisitor)
    }
}

/// `value` as Python's `json.dumps` writes it.
pub fn python_dumps<T: Serialize + ?Sized>(value: &T) -> String {
    dumps(value)
}

/// Python's `str.isprintable` for one character (Other and Separator categories, except
/// the ASCII space, are not printable).
fn py_printable(c: char) -> bool {
    let n = c as u32;
    !matches!(n,
        0x00..=0x1f
        | 0x7f..=0xa0
        | 0xad
        | 0x1680
        | 0x180e
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x206f
        | 0x3000
        | 0xd800..=0xf8ff
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xe0001..=0xe007f
        | 0xf0000..=0x10ffff
    )
}

/// Python's `repr(str)`: single quotes unless the text has a `'` and no `"`.
fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let n = c as u32;
                // Writing to a String cannot fail.
                let _ = if n <= 0xff {
                    write!(out, "\\x{n:02x}")
                } else if n <= 0xffff {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_like_python() {
        let v = json!({"a": [1, {"b": null}], "c": "é"});
        assert_eq!(
            python_dumps(&v),
            r#"{"a": [1, {"b": null}], "c": "\u00e9"}"#
        );
        assert_eq!(python_dumps(&json!("😀")), r#""\ud83d\ude00""#);
        assert_eq!(
            python_dumps(&json!({"q": "x\"\n\u{7f}"})),
            r#"{"q": "x\"\n\u007f"}"#
        );
        assert_eq!(
            python_dumps(&json!([1.0, 1e16, 0.00001, 2.5])),
            "[1.0, 1e+16, 1e-05, 2.5]"
        );
    }

    #[test]
    fn document_order_is_kept() {
        let v = PyValue::parse(br#"{"z": 1, "a": {"y": true, "b": null}, "z": 2}"#).unwrap();
        assert_eq!(v.dumps(), r#"{"z": 2, "a": {"y": true, "b": null}}"#);
        assert_eq!(v.repr(), "{'z': 2, 'a': {'y': True, 'b': None}}");
        assert_eq!(v.get("z"), Some(&PyValue::Number(2.into())));
        assert_eq!(v.to_value(), json!({"a": {"b": null, "y": true}, "z": 2}));
    }

    #[test]
    fn repr_of_strings_and_numbers() {
        let v = PyValue::parse(
            br#"["it's", "say \"hi\"", "both ' and \"", "tab\tnl\nbs\\", "\u00e9\u00a0\u2028\u0001", -0.0, 1e100, 123456789012345678]"#,
        )
        .unwrap();
        assert_eq!(
            v.repr(),
            r#"["it's", 'say "hi"', 'both \' and "', 'tab\tnl\nbs\\', 'é\xa0\u2028\x01', -0.0, 1e+100, 123456789012345678]"#
        );
        assert_eq!(
            PyValue::parse(br#"{"code": 201, "status": "Created", "results": {}}"#)
                .unwrap()
                .repr(),
            "{'code': 201, 'status': 'Created', 'results': {}}"
        );
    }

    #[test]
    fn hostile_nesting_is_an_error() {
        let deep = "[".repeat(100_000);
        assert!(PyValue::parse(deep.as_bytes()).is_err());
        assert!(PyValue::parse(b"{\"a\": }").is_err());
        assert!(PyValue::parse(b"").is_err());
    }
}
