//! Output of tenant commands: upstream's printed lines (the JSON parts serialised like
//! Python's `json.dumps`, which scripts parse, e.g. `{"<id>": {"operational_state": "Get
//! Quote", …}}`; the policy commands print the verifier's answer as a Python `dict`) and the
//! `--json` document `{"command", "ok", "results" | "error"}`.

use serde_json::{Value, json};

use crate::pyjson::PyValue;
pub use crate::pyjson::python_dumps;
use crate::{
    AddOutcome, AgentStatusReport, BulkReport, DeleteOutcome, IdList, PolicyKind, PolicyNames,
    PolicyReply, PolicyShow, RegistrarStatusReport, StatusReport,
};

/// A command's output in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Human/upstream text, one entry per printed line (may contain newlines).
    pub lines: Vec<String>,
    /// `results` of the `--json` document.
    pub json: PyValue,
}

/// The `--json` document of a success.
pub fn json_success(command: &str, results: PyValue) -> PyValue {
    object([
        ("command", PyValue::String(command.into())),
        ("ok", PyValue::Bool(true)),
        ("results", results),
    ])
}

/// The `--json` document of a failure.
pub fn json_failure(command: &str, error: &str) -> PyValue {
    object([
        ("command", PyValue::String(command.into())),
        ("error", PyValue::String(error.into())),
        ("ok", PyValue::Bool(false)),
    ])
}

/// An object with these members, in this order.
pub fn object<const N: usize>(members: [(&str, PyValue); N]) -> PyValue {
    PyValue::Object(members.map(|(k, v)| (k.to_owned(), v)).to_vec())
}

fn keyed(id: &str, v: &PyValue) -> PyValue {
    object([(id, v.clone())])
}

/// A document this program makes (members sorted).
fn ours(v: Value) -> PyValue {
    PyValue::from_value(&v)
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
        json: ours(json!({"uuids": r.ids})),
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
        json: ours(json!({"agent_id": id, "outcome": outcome, "status_polls": polls})),
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
        json: ours(json!({
            "agent_id": r.agent_id,
            "agent_ip": r.agent.host,
            "agent_port": r.agent.port,
            "agent_api_version": r.agent_api_version,
            "quote_nonce": r.nonce,
            "key_delivered": r.key_delivered,
            "key_verified": r.key_verified_after.is_some(),
            "operational_state": r.operational_state.map(|s| s.display_name()),
        })),
    }
}

/// Commands whose only result is success (`reactivate`, `regdelete`).
pub fn done(line: String, id: &str) -> Rendered {
    Rendered {
        lines: vec![line],
        json: ours(json!({"agent_id": id})),
    }
}

/// Add, update or delete of a named policy: the verifier's answer as upstream prints it
/// (`{}` for an empty body such as a 204).
pub fn policy_change(r: &PolicyReply) -> Rendered {
    Rendered {
        lines: vec![
            r.response
                .as_ref()
                .map_or_else(|| "{}".into(), PyValue::repr),
        ],
        json: object([
            ("code", PyValue::Number(r.code.into())),
            ("name", PyValue::String(r.name.clone())),
            ("response", r.response.clone().unwrap_or_default()),
        ]),
    }
}

/// `showruntimepolicy` / `showmbpolicy`.
pub fn policy_show(r: &PolicyShow) -> Rendered {
    let header = match r.kind {
        PolicyKind::Runtime => format!("Show allowlist command response: {}.", r.code),
        PolicyKind::MeasuredBoot => format!("showmbpolicy command response: {}.", r.code),
    };
    // The policy text was checked to parse when the answer was read.
    let policy = r
        .policy
        .as_deref()
        .and_then(|t| PyValue::parse(t.as_bytes()).ok());
    Rendered {
        lines: vec![header, r.response.repr()],
        json: object([
            ("name", PyValue::String(r.name.clone())),
            (r.kind.policy_key(), policy.unwrap_or_default()),
        ]),
    }
}

/// `listruntimepolicy` / `listmbpolicy`.
pub fn policy_list(r: &PolicyNames) -> Rendered {
    let header = match r.kind {
        PolicyKind::Runtime => format!("list command response: {}.", r.code),
        PolicyKind::MeasuredBoot => format!("listmbpolicy command response: {}.", r.code),
    };
    Rendered {
        lines: vec![header, r.response.repr()],
        json: ours(json!({ "names": r.names })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_matches_upstream() {
        // The verifier's order, not sorted (upstream prints the document as received).
        let r = AgentStatusReport {
            agent_id: "A".into(),
            operational_state: None,
            results: PyValue::parse(
                br#"{"operational_state": "Get Quote", "attestation_count": 3}"#,
            )
            .unwrap(),
        };
        let out = cvstatus(&r, "Verifier (127.0.0.1:8881)");
        assert_eq!(
            out.lines,
            [
                "Agent Info from Verifier (127.0.0.1:8881):\n{\"A\": {\"operational_state\": \"Get Quote\", \"attestation_count\": 3}}"
            ]
        );
        assert_eq!(
            json_success("cvstatus", out.json).to_string(),
            r#"{"command":"cvstatus","ok":true,"results":{"A":{"operational_state":"Get Quote","attestation_count":3}}}"#
        );
    }

    #[test]
    fn policy_commands_print_the_answer_as_a_python_dict() {
        let answer =
            PyValue::parse(br#"{"code": 201, "status": "Created", "results": {}}"#).unwrap();
        let out = policy_change(&PolicyReply {
            kind: PolicyKind::Runtime,
            name: "p".into(),
            code: 201,
            response: Some(answer),
        });
        assert_eq!(
            out.lines,
            ["{'code': 201, 'status': 'Created', 'results': {}}"]
        );
        assert_eq!(
            out.json.to_string(),
            r#"{"code":201,"name":"p","response":{"code":201,"status":"Created","results":{}}}"#
        );
        let out = policy_change(&PolicyReply {
            kind: PolicyKind::MeasuredBoot,
            name: "p".into(),
            code: 204,
            response: None,
        });
        assert_eq!(out.lines, ["{}"]);
        assert_eq!(out.json.get("response"), Some(&PyValue::Null));

        let body = br#"{"code": 200, "status": "Success", "results": {"name": "p", "tmp_policy": null, "runtime_policy": "{\"meta\": {\"version\": 1}}"}}"#;
        let out = policy_show(&PolicyShow {
            kind: PolicyKind::Runtime,
            name: "p".into(),
            code: 200,
            response: PyValue::parse(body).unwrap(),
            policy: Some(r#"{"meta": {"version": 1}}"#.into()),
        });
        assert_eq!(
            out.lines,
            [
                "Show allowlist command response: 200.",
                r#"{'code': 200, 'status': 'Success', 'results': {'name': 'p', 'tmp_policy': None, 'runtime_policy': '{"meta": {"version": 1}}'}}"#
            ]
        );
        assert_eq!(
            out.json.to_value(),
            json!({"name": "p", "runtime_policy": {"meta": {"version": 1}}})
        );

        let body =
            br#"{"code": 200, "status": "Success", "results": {"mbpolicy names": ["a", "b"]}}"#;
        let out = policy_list(&PolicyNames {
            kind: PolicyKind::MeasuredBoot,
            code: 200,
            response: PyValue::parse(body).unwrap(),
            names: vec!["a".into(), "b".into()],
        });
        assert_eq!(
            out.lines,
            [
                "listmbpolicy command response: 200.",
                "{'code': 200, 'status': 'Success', 'results': {'mbpolicy names': ['a', 'b']}}"
            ]
        );
        assert_eq!(out.json.to_value(), json!({"names": ["a", "b"]}));
    }
}
