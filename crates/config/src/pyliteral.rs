//! A parser for the Python literals upstream writes in its INI files and
//! reads with `ast.literal_eval`: lists such as `['agent', 'webhook']` and
//! `[{"event_id": ".*", "severity_label": "emergency"}]`.
//!
//! Supported: strings in single or double quotes (with the common backslash
//! escapes), integers, floats, `True`, `False`, `None`, lists, tuples and
//! dicts, with trailing commas. Nesting depth and input size are bounded.

use std::fmt;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 32;

/// A parsed Python literal.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list or a tuple.
    List(Vec<PyValue>),
    /// A dict (keys in written order).
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a literal could not be parsed; `offset` is a byte offset in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyLiteralError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was expected or wrong.
    pub message: String,
}

impl fmt::Display for PyLiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a Python literal: {} at offset {}",
            self.message, self.offset
        )
    }
}

impl std::error::Error for PyLiteralError {}

/// Parses one complete literal.
pub fn parse(input: &str) -> Result<PyValue, PyLiteralError> {
    let mut p = Parser {
        s: input.as_bytes(),
        src: input,
        pos: 0,
    };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> PyLiteralError {
        PyLiteralError {
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, PyLiteralError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.skip_ws();
        match self.peek() {
            None => Err(self.err("expected a value, found the end")),
            Some(b'[') => self.sequence(b']', depth).map(PyValue::List),
            Some(b'(') => self.sequence(b')', depth).map(PyValue::List),
            Some(b'{') => self.dict(depth),
            Some(q @ (b'\'' | b'"')) => self.string(q).map(PyValue::Str),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    "None" => Ok(PyValue::None),
                    _ => {
                        self.pos = start;
                        Err(self.err("bare word (strings must be quoted)"))
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<PyValue>, PyLiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err("expected `,` or the closing bracket")),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, PyLiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            let key = self.value(depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after a dict key"));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            items.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, PyLiteralError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Ok(out),
                '\n' => return Err(self.err("newline inside a string")),
                '\\' => {
                    let Some(e) = self.src[self.pos..].chars().next() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' => out.push(self.hex_escape(2)?),
                        'u' => out.push(self.hex_escape(4)?),
                        // Python keeps unknown escapes verbatim (`\d` in regexes).
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, PyLiteralError> {
        let hex = self
            .src
            .get(self.pos..self.pos + digits)
            .ok_or_else(|| self.err("truncated escape"))?;
        let code = u32::from_str_radix(hex, 16).map_err(|_| self.err("bad hex escape"))?;
        self.pos += digits;
        char::from_u32(code).ok_or_else(|| self.err("escape is not a character"))
    }

    fn number(&mut self) -> Result<PyValue, PyLiteralError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_'))
        {
            self.pos += 1;
        }
        let text: String = self.src[start..self.pos]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(PyValue::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(PyValue::Float(f)),
            _ => {
                self.pos = start;
                Err(self.err("bad number"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_strings() {
        assert_eq!(
            parse("['agent', \"webhook\",]"),
            Ok(PyValue::List(vec![
                PyValue::Str("agent".into()),
                PyValue::Str("webhook".into())
            ]))
        );
        assert_eq!(parse(" [ ] "), Ok(PyValue::List(vec![])));
    }

    #[test]
    fn severity_policy_shape() {
        let v = parse(r#"[{"event_id": ".*", "severity_label" : "emergency"}]"#).expect("parses");
        let PyValue::List(items) = v else {
            panic!("not a list")
        };
        assert_eq!(
            items[0].get("event_id").and_then(PyValue::as_str),
            Some(".*")
        );
        assert_eq!(
            items[0].get("severity_label").and_then(PyValue::as_str),
            Some("emergency")
        );
    }

    #[test]
    fn scalars_and_escapes() {
        assert_eq!(parse("True"), Ok(PyValue::Bool(true)));
        assert_eq!(parse("None"), Ok(PyValue::None));
        assert_eq!(parse("-12"), Ok(PyValue::Int(-12)));
        assert_eq!(parse("2.5"), Ok(PyValue::Float(2.5)));
        assert_eq!(parse(r"'a\'b\x41\d'"), Ok(PyValue::Str("a'bA\\d".into())));
        assert_eq!(
            parse("(1, 2)"),
            Ok(PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)]))
        );
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "[a, b]",
            "['a'",
            "['a' 'b']",
            "{'a' 1}",
            "'abc",
            "[1] x",
            "",
            "1e999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
