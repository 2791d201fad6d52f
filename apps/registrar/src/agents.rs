//! The registrar's operations, one function per route (PROTOCOL.md §2.2–§2.4): register
//! (checks, MakeCredential, store; an active agent's re-registration is held beside its
//! record), activate (constant-time tag check, compare-and-set; a wrong tag deletes a
//! never-activated record but only discards a held re-registration), and the admin
//! list/show/delete. Handlers stay thin: parsing and checks live in
//! [`crate::registration_checks`], persistence in `keylime-store`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use keylime_api::{
    ActivateRequest, AgentList, AgentRecord, EmptyResults, Envelope, RegisterRequest,
    RegisterResponse, VersionInfo, activation_auth_tag_with_key, encode_b64,
};
use keylime_store::{RegisterOutcome, RegistrarAgent, StoreError};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use subtle::ConstantTimeEq as _;

use crate::error::{ApiError, json_response};
use crate::registration_checks::{CheckedRegistration, KeyAndCert, check_registration, der_to_pem};
use crate::state::AppState;

/// Length of the MakeCredential secret, `[A-Za-z0-9]` (§3.1).
const CREDENTIAL_CHARS: usize = 32;

fn ok<T: serde::Serialize>(results: T) -> Response {
    json_response(StatusCode::OK, &Envelope::ok(results), "application/json")
}

/// `GET /version`.
pub fn version() -> Response {
    ok(VersionInfo::registrar())
}

/// A fresh credential of 32 alphanumeric characters from the OS RNG.
fn fresh_credential() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(CREDENTIAL_CHARS)
        .map(char::from)
        .collect()
}

/// `POST /v2.x/agents[/{id}]`.
pub async fn register(
    state: &AppState,
    path_id: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let req: RegisterRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRegistration(format!("body is not a valid registration JSON object: {e}"))
    })?;
    let checked = check_registration(path_id, &req, &state.policy)
        .map_err(|e| ApiError::InvalidRegistration(e.to_string()))?;
    let agent_id = checked.agent_id.clone();

    let credential = fresh_credential();
    let blob = keylime_tpm::make_credential(&checked.ek, &checked.ak.name(), credential.as_bytes())
        .map_err(|e| {
            ApiError::InvalidRegistration(format!("cannot make a credential for 'ek_tpm': {e}"))
        })?
        .to_tpm2_tools();

    let record = stored_record(checked, &req, encode_b64(credential.as_bytes()));
    match state.store.registrar().register(&record).await {
        Ok(RegisterOutcome::Held) => {
            tracing::info!(agent_id = %agent_id, outcome = "held", "active agent re-registered; challenge issued, record kept until it is answered");
            Ok(ok(RegisterResponse {
                blob: encode_b64(&blob),
            }))
        }
        Ok(_) => {
            tracing::info!(agent_id = %agent_id, outcome = "registered", "agent registered, challenge issued");
            Ok(ok(RegisterResponse {
                blob: encode_b64(&blob),
            }))
        }
        Err(StoreError::IdentityConflict { .. }) => {
            tracing::warn!(agent_id = %agent_id, outcome = "identity_conflict", "re-registration with a different TPM identity refused");
            Err(ApiError::IdentityConflict)
        }
        // The checks above mirror the store's; should one be missed, the store's own
        // check (made before any write) is still the client's fault, not the server's.
        Err(e @ StoreError::InvalidField { .. }) => {
            Err(ApiError::InvalidRegistration(e.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

fn stored_record(
    checked: CheckedRegistration,
    req: &RegisterRequest,
    key: String,
) -> RegistrarAgent {
    let split = |pair: Option<KeyAndCert>| match pair {
        Some(p) => (Some(p.tpm2b), Some(p.cert_der)),
        None => (None, None),
    };
    let (iak_tpm, iak_cert) = split(checked.iak);
    let (idevid_tpm, idevid_cert) = split(checked.idevid);
    RegistrarAgent {
        agent_id: checked.agent_id,
        ek_tpm: Some(checked.ek_tpm),
        ekcert: checked.ekcert,
        aik_tpm: checked.aik_tpm,
        iak_tpm,
        iak_cert,
        idevid_tpm,
        idevid_cert,
        mtls_cert: checked.mtls_cert,
        ip: req.ip.clone(),
        port: req.port.map(i32::from),
        activation_key: Some(key),
        active: false,
        regcount: 0,
    }
}

/// `PUT /v2.x/agents/{id}`, `PUT|POST /v2.x/agents/{id}/activate`.
pub async fn activate(
    state: &AppState,
    agent_id: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let req: ActivateRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "Activation body must be a JSON object with 'auth_tag': {e}"
        ))
    })?;
    let repo = state.store.registrar();
    let agent = repo
        .get(agent_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::AgentNotFound(crate::error::truncate(agent_id)))?;
    // An active agent's challenge is held beside its record (re-registration).
    let held = agent.active;
    let key = if held {
        repo.held_key(agent_id).await.map_err(ApiError::from)?
    } else {
        agent.activation_key
    };
    let Some(key) = key.as_deref() else {
        tracing::warn!(
            agent_id,
            outcome = "no_pending_challenge",
            "activation without a pending challenge"
        );
        return Err(ApiError::NoPendingActivation(crate::error::truncate(
            agent_id,
        )));
    };
    let expected = activation_auth_tag_with_key(key, agent_id);
    let matches: bool = expected.as_bytes().ct_eq(req.auth_tag.as_bytes()).into();
    if !matches && held {
        // Anyone can re-post an agent's public keys: a wrong answer to that challenge
        // drops the challenge, never the agent that proved itself before.
        repo.discard_held(agent_id, key)
            .await
            .map_err(ApiError::from)?;
        tracing::warn!(
            agent_id,
            outcome = "auth_tag_mismatch_kept",
            "activation of a re-registration failed; re-registration discarded, active record kept"
        );
        return Err(ApiError::held_tag_mismatch(&req.auth_tag, agent_id));
    }
    if !matches {
        // Upstream deletes the record so the agent must start over (§11 Q20).
        repo.delete(agent_id).await.map_err(ApiError::from)?;
        tracing::warn!(
            agent_id,
            outcome = "auth_tag_mismatch",
            "activation failed, agent deleted"
        );
        return Err(ApiError::auth_tag_mismatch(&req.auth_tag, agent_id));
    }
    let activated = repo.activate(agent_id, key).await.map_err(ApiError::from)?;
    if !activated {
        tracing::warn!(
            agent_id,
            outcome = "challenge_superseded",
            "activation raced with another activation or registration"
        );
        return Err(ApiError::NoPendingActivation(crate::error::truncate(
            agent_id,
        )));
    }
    tracing::info!(
        agent_id,
        outcome = "activated",
        "AK bound to EK, agent active"
    );
    Ok(ok(EmptyResults {}))
}

/// `GET /v2.x/agents`.
pub async fn list(state: &AppState) -> Result<Response, ApiError> {
    let uuids = state
        .store
        .registrar()
        .list_ids()
        .await
        .map_err(ApiError::from)?;
    Ok(ok(AgentList { uuids }))
}

/// `GET /v2.x/agents/{id}`.
pub async fn show(state: &AppState, agent_id: &str) -> Result<Response, ApiError> {
    let agent = state
        .store
        .registrar()
        .get(agent_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::AgentNotFound(crate::error::truncate(agent_id)))?;
    if !agent.active {
        return Err(ApiError::AgentNotActivated(crate::error::truncate(
            agent_id,
        )));
    }
    Ok(ok(render(agent)))
}

/// The show rendering: TPM keys b64, `ekcert` b64 DER, `mtls_cert` PEM (§2.4).
fn render(agent: RegistrarAgent) -> AgentRecord {
    AgentRecord {
        ek_tpm: agent.ek_tpm.as_deref().map(encode_b64),
        ekcert: agent.ekcert.as_deref().map(encode_b64),
        aik_tpm: Some(encode_b64(&agent.aik_tpm)),
        ip: agent.ip,
        port: agent.port.and_then(|p| u16::try_from(p).ok()),
        mtls_cert: agent.mtls_cert.map(|m| {
            if m == "disabled" || m.contains("-----BEGIN") {
                m
            } else {
                der_to_pem(m.as_bytes())
            }
        }),
        regcount: u32::try_from(agent.regcount).unwrap_or(0),
        agent_id: agent.agent_id,
    }
}

/// `DELETE /v2.x/agents/{id}`.
pub async fn delete(state: &AppState, agent_id: &str) -> Result<Response, ApiError> {
    let deleted = state
        .store
        .registrar()
        .delete(agent_id)
        .await
        .map_err(ApiError::from)?;
    if !deleted {
        return Err(ApiError::AgentNotFound(crate::error::truncate(agent_id)));
    }
    tracing::info!(agent_id, outcome = "deleted", "agent deleted by admin");
    Ok(ok(EmptyResults {}))
}
