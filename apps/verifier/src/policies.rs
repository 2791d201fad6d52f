//! Named runtime and measured-boot policies (PROTOCOL.md §5.8): `/allowlists/{name}` and
//! `/mbpolicies/{name}` create, update, show, list and delete, with upstream's status codes
//! and bodies (§11 Q16: `tmp_policy` in the runtime-policy document, 409 on a measured-boot
//! update of a missing name). Every policy is checked completely (schema, signature,
//! excludes, keys) before anything is stored.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use keylime_api::named_policy::{
    MbPolicyBody, MbPolicyDocument, MbPolicyNames, RuntimePolicyBody, RuntimePolicyDocument,
    RuntimePolicyNames,
};
use keylime_api::{EmptyResults, Envelope};
use keylime_store::{PolicyDelete, PolicyKind};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, envelope};
use crate::policy_cache::{check_mb_policy, check_runtime_policy};
use crate::state::AppState;

fn created() -> Response {
    envelope(
        StatusCode::CREATED,
        &Envelope {
            code: 201,
            status: "Created".into(),
            results: EmptyResults {},
        },
    )
}

fn no_content() -> Response {
    axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
}

fn ok<T: serde::Serialize>(results: T) -> Response {
    envelope(StatusCode::OK, &Envelope::ok(results))
}

fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "Expected non zero content length".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("Invalid JSON: {e}")))
}

/// Decode `runtime_policy` (base64 text) and check it completely; returns the policy text.
///
/// Preparing a large policy (tens of MiB, a regex set) is CPU work: it runs on the blocking
/// pool, not on the async workers that serve requests and polls.
pub async fn decode_runtime_policy(
    state: &AppState,
    b64: &str,
    key_b64: Option<&str>,
) -> Result<String, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ApiError::BadRequest(format!("runtime_policy is not base64: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest("runtime_policy is not UTF-8 text".into()))?;
    let key = match key_b64.map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .map_err(|e| {
                    ApiError::BadRequest(format!("runtime_policy_key is not base64: {e}"))
                })?,
        ),
    };
    let require = state.policy_settings.require_allow_list_signatures;
    tokio::task::spawn_blocking(move || {
        check_runtime_policy(text.as_bytes(), key.as_deref(), require).map(|_| text)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| e.into_api_error())
}

/// The `mb_policy` member as stored text (`None` for null/absent), checked against the
/// configured measured-boot policy.
pub fn mb_policy_text(state: &AppState, value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    check_mb_policy(&state.policy_settings.measured_boot_policy_name, &text)
        .map_err(|e| ApiError::BadRequest(format!("mb_policy is invalid: {e}")))?;
    Ok(Some(text))
}

fn tpm_policy_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// `POST /allowlists/{name}` (create) or `PUT` (replace; `create = false`).
pub async fn put_runtime(
    state: &AppState,
    name: &str,
    body: &[u8],
    create: bool,
) -> Result<Response, ApiError> {
    let req: RuntimePolicyBody = parse_body(body)?;
    let Some(b64) = req.runtime_policy.as_deref() else {
        return Err(ApiError::BadRequest("Runtime policy is missing".into()));
    };
    let text = decode_runtime_policy(state, b64, req.runtime_policy_key.as_deref()).await?;
    let tpm = tpm_policy_text(req.tpm_policy.as_ref());
    let repo = state.store.verifier();
    let kind = PolicyKind::Runtime;
    if create {
        if !repo
            .add_policy(kind, name, Some(&text), tpm.as_deref())
            .await?
        {
            return Err(ApiError::Conflict(format!(
                "Runtime policy with name {name} already exists"
            )));
        }
    } else if !repo
        .update_policy(kind, name, Some(&text), tpm.as_deref())
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "Runtime policy with name {name} does not already exist, use POST to create"
        )));
    }
    Ok(created())
}

/// `POST /mbpolicies/{name}` or `PUT` (409 when absent, as upstream).
pub async fn put_mb(
    state: &AppState,
    name: &str,
    body: &[u8],
    create: bool,
) -> Result<Response, ApiError> {
    let req: MbPolicyBody = parse_body(body)?;
    let text = mb_policy_text(state, req.mb_policy.as_ref())?;
    let repo = state.store.verifier();
    let kind = PolicyKind::MeasuredBoot;
    if create {
        if !repo.add_policy(kind, name, text.as_deref(), None).await? {
            return Err(ApiError::Conflict(format!(
                "Measured boot policy with name {name} already exists"
            )));
        }
    } else if !repo
        .update_policy(kind, name, text.as_deref(), None)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "Measured boot policy with name {name} does not already exist"
        )));
    }
    Ok(created())
}

/// `GET /allowlists/` or `/mbpolicies/`.
pub async fn list(state: &AppState, kind: PolicyKind) -> Result<Response, ApiError> {
    let names = state.store.verifier().policy_names(kind).await?;
    Ok(match kind {
        PolicyKind::Runtime => ok(RuntimePolicyNames { names }),
        PolicyKind::MeasuredBoot => ok(MbPolicyNames { names }),
    })
}

/// `GET /allowlists/{name}` or `/mbpolicies/{name}`.
pub async fn show(state: &AppState, kind: PolicyKind, name: &str) -> Result<Response, ApiError> {
    let Some(p) = state.store.verifier().policy(kind, name).await? else {
        return Err(ApiError::NotFound(not_found(kind, name)));
    };
    Ok(match kind {
        PolicyKind::Runtime => ok(RuntimePolicyDocument {
            name: p.name,
            tmp_policy: None,
            runtime_policy: p.body,
        }),
        PolicyKind::MeasuredBoot => ok(MbPolicyDocument {
            name: p.name,
            mb_policy: p.body,
        }),
    })
}

fn not_found(kind: PolicyKind, name: &str) -> String {
    match kind {
        PolicyKind::Runtime => format!("Runtime policy {name} not found"),
        PolicyKind::MeasuredBoot => format!("Measured boot policy {name} not found"),
    }
}

/// `DELETE /allowlists/{name}` or `/mbpolicies/{name}`: 204, 404, or 409 while in use.
pub async fn delete(state: &AppState, kind: PolicyKind, name: &str) -> Result<Response, ApiError> {
    match state.store.verifier().delete_policy(kind, name).await? {
        PolicyDelete::Deleted => Ok(no_content()),
        PolicyDelete::NotFound => Err(ApiError::NotFound(not_found(kind, name))),
        PolicyDelete::InUse(agent) => Err(ApiError::Conflict(match kind {
            PolicyKind::Runtime => {
                format!("Can't delete allowlist as it's currently in use by agent {agent}")
            }
            PolicyKind::MeasuredBoot => {
                format!("Can't delete mb_policy as it's currently in use by agent {agent}")
            }
        })),
    }
}
