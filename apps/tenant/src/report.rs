//! Output of tenant commands: upstream's printed lines (the JSON parts serialised like
//! Python's `json.dumps`, which scripts parse, e.g. `{"<id>": {"operational_state": "Get
//! Quote", …}}`) and the `--json` document `{"command", "ok", "results" | "error"}`.

use std::io;

use serde_json::{Value, json};

use crate::{
    AddOutcome, AgentStatusReport, BulkReport, DeleteOutcome, IdList, RegistrarStatusReport,
    StatusReport,
};

/// A command's output in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Human/upstream text, one entry per printed line (may contain newlines).
    pub lines: Vec<String>,
    /// `results` of the `--json` document.
    pub json: Value,
}

/// The `--json` document of a success.
pub fn json_success(command: &str, results: Value) -> Value {
    json!({"command": command, "ok": true, "results": results})
}

/// The `--json` document of a failure.
pub fn json_failure(command: &str, error: &str) -> Value {
    json!({"command": command, "ok": false, "error": error})
}

/// `value` as Python's `json.dumps` writes it (`", "` and `": "` separators, non-ASCII
/// escaped as `\uXXXX`).
pub fn python_dumps(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    // Serialising a Value into a Vec cannot fail.
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return value.to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_string())
}

struct PyFormatter;

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

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                let mut buf = [0u8; 1];
                w.write_all(c.encode_utf8(&mut buf).as_bytes())?;
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

fn keyed(id: &str, v: &Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(id.to_string(), v.clone());
    Value::Object(m)
}

/// `cvstatus` (and `status` when the verifier has the agent).
pub fn cvstatus(r: &AgentStatusReport, verifier: &str) -> Rendered {
    let doc = keyed(&r.agent_id, &r.results);
    Rendered {
        lines: vec![format!(
            "Agent Info from {verifier}:\n{}",
            python_dumps(&doc)
        )],
        json: doc,
    }
}

/// `regstatus`.
pub fn regstatus(r: &RegistrarStatusReport, registrar: &str) -> Rendered {
    let doc = keyed(&r.agent_id, &r.record);
    Rendered {
        lines: vec![
            format!(
                "Status from {registrar}: Agent {} exists on the registrar.",
                r.agent_id
            ),
            format!("Agent Info from {registrar}:\n{}", python_dumps(&doc)),
        ],
        json: doc,
    }
}

/// `status`.
pub fn status(r: &StatusReport, verifier: &str, registrar: &str) -> Rendered {
    match r {
        StatusReport::Verifier(s) => cvstatus(s, verifier),
        StatusReport::RegistrarOnly(reg) => {
            let mut out = regstatus(reg, registrar);
            out.lines
                .push(format!("{verifier} does not have agent {}.", reg.agent_id));
            out
        }
    }
}

/// `cvlist` / `reglist`.
pub fn list(r: &IdList, source: &str) -> Rendered {
    Rendered {
        lines: vec![format!(
            "Agent list from {source} retrieved: \n{}",
            python_dumps(&r.results)
        )],
        json: json!({"uuids": r.ids}),
    }
}

/// `bulkinfo`.
pub fn bulkinfo(r: &BulkReport) -> Rendered {
    Rendered {
        lines: vec![format!("Bulk Agent Info:\n{}", python_dumps(&r.results))],
        json: r.results.clone(),
    }
}

/// `delete`.
pub fn delete(id: &str, r: DeleteOutcome) -> Rendered {
    let (line, outcome, polls) = match r {
        DeleteOutcome::Deleted => (format!("Agent {id} deleted from the CV"), "deleted", 0),
        DeleteOutcome::DeletedAfterPolling { polls } => {
            (format!("Agent {id} deleted from the CV"), "deleted", polls)
        }
        DeleteOutcome::AlreadyAbsent => (
            format!("Agent {id} is already absent from the CV"),
            "absent",
            0,
        ),
    };
    Rendered {
        lines: vec![line],
        json: json!({"agent_id": id, "outcome": outcome, "status_polls": polls}),
    }
}

/// `add` (and the add half of `update`).
pub fn add(r: &AddOutcome, verifier: &str) -> Rendered {
    let fid = format!("Agent {} ({})", r.agent_id, r.agent);
    let mut lines = vec![
        format!("Quote from {fid} validated"),
        format!("{fid} added to {verifier}"),
    ];
    if r.key_verified_after.is_some() {
        lines.push(format!("Successful key derivation for {fid}"));
    }
    Rendered {
        lines,
        json: json!({
            "agent_id": r.agent_id,
            "agent_ip": r.agent.host,
            "agent_port": r.agent.port,
            "agent_api_version": r.agent_api_version,
            "quote_nonce": r.nonce,
            "key_delivered": r.key_delivered,
            "key_verified": r.key_verified_after.is_some(),
            "operational_state": r.operational_state.map(|s| s.display_name()),
        }),
    }
}

/// Commands whose only result is success (`reactivate`, `regdelete`).
pub fn done(line: String, id: &str) -> Rendered {
    Rendered {
        lines: vec![line],
        json: json!({"agent_id": id}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_style() {
        let v = json!({"a": [1, {"b": null}], "c": "é"});
        assert_eq!(
            python_dumps(&v),
            r#"{"a": [1, {"b": null}], "c": "\u00e9"}"#
        );
        assert_eq!(python_dumps(&json!("😀")), r#""\ud83d\ude00""#);
        assert_eq!(python_dumps(&json!({"q": "x\"\n"})), r#"{"q": "x\"\n"}"#);
    }

    #[test]
    fn status_line_matches_upstream() {
        let r = AgentStatusReport {
            agent_id: "A".into(),
            operational_state: None,
            results: json!({"operational_state": "Get Quote", "attestation_count": 3}),
        };
        let out = cvstatus(&r, "Verifier (127.0.0.1:8881)");
        assert_eq!(
            out.lines,
            [
                "Agent Info from Verifier (127.0.0.1:8881):\n{\"A\": {\"attestation_count\": 3, \"operational_state\": \"Get Quote\"}}"
            ]
        );
    }
}
