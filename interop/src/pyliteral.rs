//! A reader for the documents upstream's tenant prints: JSON (`json.dumps`) and Python
//! literals (`print` of a `dict`: single-quoted strings, `None`, `True`, `False`). The
//! result keeps the order of keys as printed — the order the server sent them in — so
//! two runs can be compared by value and, separately, by key order.

use serde_json::{Map, Number, Value};

/// A parsed document, dictionaries in printed order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    List(Vec<Node>),
    Dict(Vec<(String, Node)>),
}

/// Why a text is not one document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JSON or Python literal at byte {offset}: {what}")]
pub struct LiteralError {
    pub offset: usize,
    pub what: &'static str,
}

/// Parses exactly one document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Node, LiteralError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let node = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing text"));
    }
    Ok(node)
}

impl Node {
    /// As a JSON value (keys sorted, as `serde_json` keeps them).
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone()),
            Node::List(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Dict(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.clone(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }

    /// Every dictionary's keys in printed order, with its path (`/results/<id>`). List
    /// items are `[i]`.
    pub fn key_orders(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        self.collect_orders(String::new(), &mut out);
        out
    }

    fn collect_orders(&self, path: String, out: &mut Vec<(String, Vec<String>)>) {
        match self {
            Node::Dict(entries) => {
                out.push((
                    if path.is_empty() {
                        "/".into()
                    } else {
                        path.clone()
                    },
                    entries.iter().map(|(k, _)| k.clone()).collect(),
                ));
                for (k, v) in entries {
                    v.collect_orders(format!("{path}/{k}"), out);
                }
            }
            Node::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.collect_orders(format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
}

/// Nesting deeper than this is refused (the tenant's documents are a few levels deep).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> LiteralError {
        LiteralError {
            offset: self.i,
            what,
        }
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Node, LiteralError> {
        self.ws();
        let Some(&b) = self.s.get(self.i) else {
            return Err(self.err("unexpected end"));
        };
        match b {
            b'{' => self.dict(),
            b'[' => self.list(b']'),
            b'(' => self.list(b')'),
            b'\'' | b'"' => Ok(Node::Str(self.string()?)),
            b'-' | b'0'..=b'9' => self.number(),
            _ if self.eat("None") || self.eat("null") => Ok(Node::Null),
            _ if self.eat("True") || self.eat("true") => Ok(Node::Bool(true)),
            _ if self.eat("False") || self.eat("false") => Ok(Node::Bool(false)),
            _ => Err(self.err("unexpected character")),
        }
    }

    fn enter(&mut self) -> Result<(), LiteralError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.i += 1;
        Ok(())
    }

    fn dict(&mut self) -> Result<Node, LiteralError> {
        self.enter()?;
        let mut entries = Vec::new();
        loop {
            self.ws();
            if self.eat("}") {
                break;
            }
            if !entries.is_empty() {
                if !self.eat(",") {
                    return Err(self.err("expected ',' or '}'"));
                }
                self.ws();
                if self.eat("}") {
                    break;
                }
            }
            let key = match self.value()? {
                Node::Str(k) => k,
                _ => return Err(self.err("dictionary key is not a string")),
            };
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected ':'"));
            }
            let v = self.value()?;
            entries.push((key, v));
        }
        self.depth -= 1;
        Ok(Node::Dict(entries))
    }

    fn list(&mut self, close: u8) -> Result<Node, LiteralError> {
        self.enter()?;
        let mut items = Vec::new();
        let close_str = if close == b']' { "]" } else { ")" };
        loop {
            self.ws();
            if self.eat(close_str) {
                break;
            }
            if !items.is_empty() {
                if !self.eat(",") {
                    return Err(self.err("expected ',' or the list's end"));
                }
                self.ws();
                if self.eat(close_str) {
                    break;
                }
            }
            items.push(self.value()?);
        }
        self.depth -= 1;
        Ok(Node::List(items))
    }

    fn number(&mut self) -> Result<Node, LiteralError> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("number"))?;
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Node::Number(n.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Node::Number)
            .ok_or_else(|| self.err("malformed number"))
    }

    fn hex(&mut self, n: usize) -> Result<u32, LiteralError> {
        let digits = self
            .s
            .get(self.i..self.i + n)
            .ok_or_else(|| self.err("short escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("escape"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("escape is not hex"))?;
        self.i += n;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            if b == quote {
                break;
            }
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let Some(&e) = self.s.get(self.i) else {
                return Err(self.err("unterminated escape"));
            };
            self.i += 1;
            let c: char = match e {
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'0' => '\0',
                b'\\' | b'\'' | b'"' | b'/' => e as char,
                b'x' => char::from_u32(self.hex(2)?).unwrap_or('\u{fffd}'),
                b'u' => char::from_u32(self.hex(4)?).unwrap_or('\u{fffd}'),
                b'U' => char::from_u32(self.hex(8)?).unwrap_or('\u{fffd}'),
                _ => return Err(self.err("unknown escape")),
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dict_with_json_inside_a_string() {
        let text = r#"{'code': 200, 'results': {'name': 'rp', 'tmp_policy': None, 'runtime_policy': '{"a": [1]}\n', 'ok': True}}"#;
        let node = parse(text).unwrap();
        assert_eq!(
            node.to_value()["results"]["runtime_policy"],
            "{\"a\": [1]}\n"
        );
        assert_eq!(
            node.key_orders()[1],
            (
                "/results".to_string(),
                vec![
                    "name".into(),
                    "tmp_policy".into(),
                    "runtime_policy".into(),
                    "ok".into()
                ]
            )
        );
    }

    #[test]
    fn json_documents_and_python_quoting() {
        let node = parse(r#"{"uuids": [["a"]], "n": -1.5, "s": "it's \"x\" \u00e9"}"#).unwrap();
        assert_eq!(node.to_value()["s"], "it's \"x\" é");
        assert_eq!(node.to_value()["n"], -1.5);
        let node = parse(r#"{'s': "it's", 't': 'a\'b\\c\x41'}"#).unwrap();
        assert_eq!(node.to_value()["s"], "it's");
        assert_eq!(node.to_value()["t"], "a'b\\cA");
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "{",
            "{'a'",
            "{'a':}",
            "{'a': 1,,}",
            "[1 2]",
            "'abc",
            "{1: 2}",
            "\"\\x4\"",
            "\"\\q\"",
            "nul",
            "1e",
            "{} x",
            "\"\\u12\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(parse(&deep).unwrap_err().what, "nested too deeply");
    }
}
