//! Output of tenant commands: upstream's printed lines (the JSON parts serialised like
//! Python's `json.dumps`, which scripts parse, e.g. `{"<id>": {"operational_state": "Get
//! Quote", …}}`; the policy commands print the verifier's answer as a Python `dict`) and the
//! `--json` document `{"command", "ok", "results" | "error"}`.

use serde_json::{Value, json};

use crate::outcome::{
    AddOutcome, AgentStatusReport, BulkReport, DeleteOutcome, IdList, PolicyKind, PolicyNames,
    PolicyReply, PolicyShow, RegDeleteOutcome, RegistrarStatusReport, StatusReport,
};
use crate::pyjson::PyValue;
pub use crate::pyjson::python_dumps;
use crate::settings::Endpoint;

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

/// `Agent Info from <verifier>:` and the status as upstream's tenant logs it each time it
/// reads one (printed to the console by the commands that read it).
pub fn agent_info(r: &AgentStatusReport) -> String {
    let doc = keyed(&r.agent_id, &r.results);
    format!("Agent Info from {}:\n{}", r.verifier, python_dumps(&doc))
}

/// `cvstatus`: the status was printed when read ([`agent_info`]).
pub fn cvstatus(r: &AgentStatusReport) -> Rendered {
    Rendered {
        lines: Vec::new(),
        json: keyed(&r.agent_id, &r.results),
    }
}

/// `regstatus`: the registrar's answer as upstream's tenant rebuilds it, then the record.
pub fn regstatus(r: &RegistrarStatusReport) -> Rendered {
    let doc = keyed(&r.agent_id, &r.record);
    let at = &r.endpoint;
    let status = format!(
        "Agent {} exists on registrar {} port {}.",
        r.agent_id, at.host, at.port
    );
    let answer = object([
        ("code", PyValue::Number(200.into())),
        ("status", PyValue::String(status.clone())),
        ("results", doc.clone()),
    ]);
    Rendered {
        lines: vec![
            format!("Status from {}: {status}", r.registrar),
            python_dumps(&answer),
            format!("Agent Info from {}:\n{}", r.registrar, python_dumps(&doc)),
        ],
        json: doc,
    }
}

/// What upstream's tenant logs when the registrar does not have the agent (before failing).
pub fn registrar_absent(id: &str, registrar: &Endpoint) -> String {
    let answer = object([
        ("code", PyValue::Number(404.into())),
        (
            "status",
            PyValue::String(format!(
                "Agent {id} does not exist on registrar {} port {}.",
                registrar.host, registrar.port
            )),
        ),
        ("results", PyValue::Object(Vec::new())),
    ]);
    format!(
        "Agent {id} does not exist on the registrar. Please register the agent with the registrar.\n{}",
        python_dumps(&answer)
    )
}

/// `status`: the registrar's record and the verifier's status were printed when read.
pub fn status(r: &StatusReport) -> Rendered {
    cvstatus(&r.verifier)
}

/// `cvlist`: the verifier's whole answer as a Python `dict`, then the list.
pub fn cvlist(r: &IdList) -> Rendered {
    let first = format!(
        "From verifier {} port {} retrieved: \"{}\"\n",
        r.endpoint.host,
        r.endpoint.port,
        r.response.repr()
    );
    list(r, first)
}

/// `reglist`: the registrar's whole answer as JSON, then the list.
pub fn reglist(r: &IdList) -> Rendered {
    let first = format!(
        "From registrar {} port {} retrieved {}\n",
        r.endpoint.host,
        r.endpoint.port,
        python_dumps(&r.response)
    );
    list(r, first)
}

fn list(r: &IdList, first: String) -> Rendered {
    Rendered {
        lines: vec![
            first,
            format!(
                "Agent list from {} retrieved: \n{}",
                r.source,
                python_dumps(&r.results)
            ),
        ],
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

/// `delete` (`verifier`: the verifier's name before the tenant read the agent's status).
pub fn delete(id: &str, r: DeleteOutcome, verifier: &str) -> Rendered {
    let deleted = format!("Agent {id} deleted from the CV");
    let (line, outcome, polls) = match r {
        DeleteOutcome::Deleted => (deleted, "deleted", 0),
        DeleteOutcome::DeletedAfterPolling { polls } => (deleted, "deleted", polls),
        DeleteOutcome::AlreadyAbsent => (
            format!("The Agent {id} is deleted from {verifier}"),
            "absent",
            0,
        ),
        DeleteOutcome::GoneMeanwhile => (
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

/// `add` (and the add half of `update`): what follows the verifier's status, which was
/// printed when read.
pub fn add(r: &AddOutcome) -> Rendered {
    let fid = format!("Agent {} ({})", r.agent_id, r.agent);
    let mut lines = vec![format!(
        "{fid} added to {} after {} tries",
        r.verifier, r.status_tries
    )];
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

/// `reactivate`: upstream's tenant says it twice (by id, then by its name for the agent,
/// which is the id alone here).
pub fn reactivate(id: &str) -> Rendered {
    let line = format!("Agent {id} re-activated");
    Rendered {
        lines: vec![line.clone(), line],
        json: ours(json!({"agent_id": id})),
    }
}

/// `regdelete`: nothing printed on success (a refusal was logged when answered).
pub fn regdelete(id: &str, r: RegDeleteOutcome) -> Rendered {
    let outcome = match r {
        RegDeleteOutcome::Deleted => "deleted",
        RegDeleteOutcome::Absent => "absent",
    };
    Rendered {
        lines: Vec::new(),
        json: ours(json!({"agent_id": id, "outcome": outcome})),
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

/// The first line of `showruntimepolicy` / `showmbpolicy`, whatever the answer.
pub fn policy_show_header(kind: PolicyKind, code: u16) -> String {
    match kind {
        PolicyKind::Runtime => format!("Show allowlist command response: {code}."),
        PolicyKind::MeasuredBoot => format!("showmbpolicy command response: {code}."),
    }
}

/// The first line of `listruntimepolicy` / `listmbpolicy`, whatever the answer.
pub fn policy_list_header(kind: PolicyKind, code: u16) -> String {
    match kind {
        PolicyKind::Runtime => format!("list command response: {code}."),
        PolicyKind::MeasuredBoot => format!("listmbpolicy command response: {code}."),
    }
}

/// `showruntimepolicy` / `showmbpolicy`.
pub fn policy_show(r: &PolicyShow) -> Rendered {
    let header = policy_show_header(r.kind, r.code);
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
    let header = policy_list_header(r.kind, r.code);
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
            verifier: "Verifier (127.0.0.1:8881)".into(),
        };
        assert_eq!(
            agent_info(&r),
            "Agent Info from Verifier (127.0.0.1:8881):\n{\"A\": {\"operational_state\": \"Get Quote\", \"attestation_count\": 3}}"
        );
        let out = cvstatus(&r);
        assert!(out.lines.is_empty());
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
