//! The public verification endpoints: `GET /v2.x/verify/identity` (PROTOCOL.md §5.9: an
//! enrolled agent's identity quote checked with its stored AK — signature, nonce, PCR
//! digest; no policy, no clock) and `POST /v2.x/verify/evidence` (§5.10: TPM evidence
//! checked against a `tpm_policy` with the attestation engine's quote and PCR checks; the
//! data-PCR and clock checks are skipped). Runtime and measured-boot policies are not
//! evaluated here yet: such requests get a clear "not supported" failure.

use std::collections::HashMap;

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use keylime_api::Envelope;
use keylime_api::verifier::AddAgentRequest;
use std::sync::Arc;

use keylime_attestation::{
    AcceptedAlgorithms, AgentPolicy, AgentState, Component, Nonce, Outcome, PreparedAk,
    PreparedPolicy, QuoteEvidence, TpmPolicy, attest,
};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, envelope};
use crate::policy_cache::{check_mb_policy, prepare_runtime_policy_within};
use crate::state::AppState;

/// Required `/verify/evidence` data fields, in upstream's order.
const EVIDENCE_FIELDS: [&str; 5] = ["quote", "nonce", "hash_alg", "tpm_ek", "tpm_ak"];

fn ok(results: Value) -> Response {
    envelope(StatusCode::OK, &Envelope::ok(results))
}

/// `GET /v2.x/verify/identity?agent_uuid=&quote=&nonce=&hash_alg=`.
pub async fn identity(state: &AppState, uri: &Uri) -> Result<Response, ApiError> {
    let params: HashMap<String, String> = axum::extract::Query::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    let get = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter '{name}'")))
    };
    let agent_id = get("agent_uuid")?;
    let quote = get("quote")?;
    let nonce = get("nonce")?;
    let hash_alg = get("hash_alg")?;
    let Some(agent) = state.store.verifier().get(&agent_id).await? else {
        return Err(ApiError::NotFound("agent id not found".into()));
    };
    let invalid = |reason: String| ok(json!({ "valid": 0, "reason": reason }));
    let engine: AgentState = serde_json::from_str(&agent.engine_state).unwrap_or_default();
    if engine.pubkey_pem.is_none() {
        return Ok(invalid(
            "agent has no stored public key yet (it has not passed a pull attestation)".into(),
        ));
    }
    let ak = serde_json::from_str::<AddAgentRequest>(&agent.add_request)
        .map_err(|e| e.to_string())
        .and_then(|r| keylime_api::decode_binary(&r.ak_tpm).map_err(|e| e.to_string()))
        .and_then(|b| PreparedAk::from_tpm2b(&b).map_err(|e| e.to_string()));
    let ak = match ak {
        Ok(ak) => ak,
        Err(e) => return Ok(invalid(format!("stored ak_tpm is unusable: {e}"))),
    };
    let Ok(hash) = hash_alg.parse::<keylime_tpm::HashAlg>() else {
        return Ok(invalid(format!(
            "hash_alg {hash_alg:?} is not a known algorithm"
        )));
    };
    match keylime_attestation::verify_quote(&quote, &ak, &Nonce::Text(nonce), hash, None) {
        Ok(_) => Ok(ok(json!({ "valid": 1 }))),
        Err(e) => Ok(invalid(format!("identity quote is invalid: {e}"))),
    }
}

/// A failure entry of the evidence response.
fn failure(event_id: &str, context: Value) -> Value {
    json!({ "type": event_id, "context": context })
}

fn evidence_response(code: StatusCode, status: &str, results: Value) -> Response {
    envelope(
        code,
        &Envelope {
            code: code.as_u16(),
            status: status.to_owned(),
            results,
        },
    )
}

fn bad_request(failures: Vec<Value>) -> Response {
    evidence_response(
        StatusCode::BAD_REQUEST,
        "Bad Request",
        json!({ "valid": false, "claims": {}, "failures": failures }),
    )
}

fn text_field<'d>(data: &'d Map<String, Value>, name: &str) -> Option<&'d str> {
    data.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `POST /v2.x/verify/evidence`.
pub fn evidence(state: &AppState, body: &[u8]) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Exception error: {e}")))?;
    match request.get("type").and_then(Value::as_str) {
        Some("tpm") => {}
        Some("tee") => {
            return Ok(bad_request(vec![failure(
                "default.unsupported_evidence",
                json!({ "message": "tee evidence is not supported by this verifier" }),
            )]));
        }
        _ => return Err(ApiError::BadRequest("invalid evidence type".into())),
    }
    let Some(data) = request.get("data").and_then(Value::as_object) else {
        return Ok(bad_request(vec![failure(
            "default.missing_param",
            json!({ "message": "missing parameter 'data'" }),
        )]));
    };
    let missing: Vec<Value> = EVIDENCE_FIELDS
        .iter()
        .filter(|f| text_field(data, f).is_none())
        .map(|f| {
            failure(
                "default.missing_param",
                json!({ "message": format!("missing parameter '{f}'") }),
            )
        })
        .collect();
    if !missing.is_empty() {
        return Ok(bad_request(missing));
    }
    let tpm_policy = text_field(data, "tpm_policy");
    let runtime_policy = text_field(data, "runtime_policy");
    let mb_policy = text_field(data, "mb_policy");
    if tpm_policy.is_none() && runtime_policy.is_none() && mb_policy.is_none() {
        return Ok(bad_request(vec![failure(
            "default.missing_policy",
            json!({ "message": "at least one of tpm_policy, runtime_policy, mb_policy is required" }),
        )]));
    }
    let field = |name| text_field(data, name).unwrap_or_default();
    let severity = &*state.supervisor.ctx.severity;
    let qv = |context: Value| {
        severity
            .event(
                Component::QuoteValidation,
                "quote_validation",
                context,
                false,
            )
            .into_failure_value()
    };
    let policy = match tpm_policy.map_or(Ok(TpmPolicy::default()), TpmPolicy::from_json_str) {
        Ok(p) => p,
        Err(e) => {
            return Ok(bad_request(vec![failure(
                "default.invalid_policy",
                json!({ "message": format!("tpm_policy is invalid: {e}") }),
            )]));
        }
    };
    let ak_tpm = match keylime_api::decode_binary(field("tpm_ak")) {
        Ok(b) => b,
        Err(e) => {
            return Ok(bad_request(vec![failure(
                "default.invalid_param",
                json!({ "message": format!("tpm_ak is not base64: {e}") }),
            )]));
        }
    };
    let hash_alg = field("hash_alg");
    if hash_alg.parse::<keylime_tpm::HashAlg>().is_err() {
        return Ok(verdict(
            vec![qv(
                json!({ "message": format!("unknown hash_alg {hash_alg:?}") }),
            )],
            data,
        ));
    }
    let agent_policy = AgentPolicy {
        ak_tpm,
        tpm_policy: policy,
        accept: AcceptedAlgorithms::default(),
        check_pcr16: false,
        check_clock: false,
    };
    let mut prepared =
        match PreparedPolicy::new(&agent_policy, state.supervisor.ctx.severity.clone()) {
            Ok(p) => p,
            Err(e) => {
                return Ok(bad_request(vec![failure(
                    "default.invalid_param",
                    json!({ "message": format!("tpm_ak is not a usable attestation key: {e}") }),
                )]));
            }
        };
    prepared.check_algorithms = false;
    prepared.ignore_tomtou_errors = state.policy_settings.ignore_tomtou_errors;
    prepared.mb_evaluate_always = true;
    if let Some(text) = runtime_policy {
        match prepare_runtime_policy_within(text, |p| state.evidence.check_runtime_policy(p)) {
            Ok(p) => prepared.runtime_policy = Some(Arc::new(p)),
            Err(e) => {
                return Ok(bad_request(vec![failure(
                    "default.invalid_policy",
                    json!({ "message": format!("runtime_policy is invalid: {e}") }),
                )]));
            }
        }
    }
    if let Some(text) = mb_policy {
        match check_mb_policy(&state.policy_settings.measured_boot_policy_name, text) {
            Ok(p) => prepared.mb_policy = Some(Arc::new(p)),
            Err(e) => {
                return Ok(bad_request(vec![failure(
                    "default.invalid_policy",
                    json!({ "message": format!("mb_policy is invalid: {e}") }),
                )]));
            }
        }
    }
    let evidence = QuoteEvidence {
        quote: field("quote").into(),
        hash_alg: hash_alg.into(),
        ima_measurement_list: text_field(data, "ima_measurement_list").map(Into::into),
        mb_measurement_list: text_field(data, "mb_log").map(Into::into),
        ..QuoteEvidence::default()
    };
    let nonce = Nonce::Text(field("nonce").to_owned());
    let result = attest(&evidence, &nonce, &prepared, &AgentState::default());
    let failures = match result.outcome {
        Outcome::Pass => Vec::new(),
        Outcome::Fail(f) => f
            .events
            .into_iter()
            .map(FailureValue::into_failure_value)
            .collect(),
    };
    Ok(verdict(failures, data))
}

/// 200 with `valid`, the echoed `claims` on success, and the failures.
fn verdict(failures: Vec<Value>, data: &Map<String, Value>) -> Response {
    let valid = failures.is_empty();
    let claims = if valid {
        Value::Object(data.clone())
    } else {
        json!({})
    };
    evidence_response(
        StatusCode::OK,
        "Success",
        json!({ "valid": valid, "claims": claims, "failures": failures }),
    )
}

trait FailureValue {
    fn into_failure_value(self) -> Value;
}

impl FailureValue for keylime_attestation::FailureEvent {
    fn into_failure_value(self) -> Value {
        failure(&self.event_id, self.context)
    }
}
