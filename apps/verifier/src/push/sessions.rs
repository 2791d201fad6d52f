//! The two session operations (PROTOCOL.md §6.1): create a challenge, and check its proof
//! and issue a token. Responses are plain JSON in JSON:API shape; refusals are
//! `{"errors":[{"status","title","detail"}]}` documents.

use std::net::IpAddr;
use std::time::Instant;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_api::verifier::AddAgentRequest;
use rand::RngCore as _;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::document::{self, PopProof};
use super::pop::{PopError, verify_certify};
use super::token::{new_token, token_hash};
use super::{CHALLENGE_BYTES, PendingSession};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v3[.0]/sessions`: a fresh challenge for the agent named in the body.
pub fn create(state: &AppState, client_ip: Option<IpAddr>, body: &[u8]) -> Response {
    let registry = &state.sessions;
    if let Some(ip) = client_ip
        && let Err(wait) = registry.per_ip.check(&ip.to_string())
    {
        tracing::info!(client_ip = %ip, retry_after = wait, "session creation rate limited");
        return too_many("Rate limit exceeded. Please try again later.", wait);
    }
    let attributes = match document::parse(body) {
        Ok(a) => a,
        Err(reason) => return bad_request(&reason),
    };
    let agent_id = attributes.agent_id.clone();
    if let Err(wait) = registry.per_agent.check(&agent_id) {
        tracing::info!(
            agent_id,
            retry_after = wait,
            "session creation rate limited"
        );
        return too_many(
            "Rate limit exceeded for this agent. Please try again later.",
            wait,
        );
    }
    if let Err(reason) = attributes.require_tpm_pop_supported() {
        return bad_request(&reason);
    }
    let mut challenge = [0u8; CHALLENGE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut challenge);
    let session_id = new_session_id();
    let created_at = OffsetDateTime::now_utc();
    let lifetime = registry.settings.nonce_lifetime;
    let now = Instant::now();
    let session = PendingSession {
        agent_id: agent_id.clone(),
        challenge,
        created_at,
        challenges_expire_at: created_at + lifetime,
        expires: now + lifetime,
        forget_at: now + lifetime + lifetime.max(std::time::Duration::from_secs(60)),
    };
    let body = json!({"data": {"type": "session", "id": session_id, "attributes": {
        "agent_id": agent_id,
        "authentication_requested": [{
            "authentication_class": "pop",
            "authentication_type": "tpm_pop",
            "chosen_parameters": {"challenge": STANDARD.encode(challenge)},
        }],
        "created_at": iso(created_at),
        "challenges_expire_at": iso(created_at + lifetime),
    }}});
    registry.insert(session_id.clone(), session);
    tracing::info!(agent_id, session_id, "session challenge issued");
    json_response(StatusCode::OK, &body)
}

/// `PATCH /v3[.0]/sessions/{id}`: check the proof; on success store and return a token.
pub async fn prove(state: &AppState, session_id: &str, body: &[u8]) -> Result<Response, ApiError> {
    let registry = &state.sessions;
    let attributes = match document::parse(body) {
        Ok(a) => a,
        Err(reason) => return Ok(bad_request(&reason)),
    };
    let Some(session) = registry.take(session_id) else {
        return Ok(errors(
            StatusCode::NOT_FOUND,
            "Not Found",
            "Session not found",
        ));
    };
    let agent_id = attributes.agent_id.clone();
    if session.agent_id != agent_id {
        registry.restore(session_id.to_owned(), session);
        return Ok(bad_request("Agent ID mismatch"));
    }
    let proof = attributes.tpm_pop_proof();
    let received_at = OffsetDateTime::now_utc();
    let outcome = Outcome {
        session_id,
        session: &session,
        proof: proof.as_ref().ok(),
        received_at,
    };
    if session.expires <= Instant::now() {
        tracing::info!(agent_id, session_id, "session challenge expired");
        return Ok(outcome.fail(StatusCode::OK, "challenge expired"));
    }
    let proof = match &proof {
        Ok(p) => p,
        Err(reason) => return Ok(bad_request(reason)),
    };
    let Some(agent) = state.store.verifier().get(&agent_id).await? else {
        tracing::info!(agent_id, session_id, "session refused: agent not enrolled");
        return Ok(outcome.fail(StatusCode::OK, "agent is not enrolled at this verifier"));
    };
    let checked = serde_json::from_str::<AddAgentRequest>(&agent.add_request)
        .map_err(|e| PopError::Ak(e.to_string()))
        .and_then(|r| {
            keylime_api::decode_binary(&r.ak_tpm).map_err(|e| PopError::Ak(e.to_string()))
        })
        .and_then(|ak| {
            let message = STANDARD
                .decode(&proof.message)
                .map_err(|e| PopError::Message(format!("not base64: {e}")))?;
            let signature = STANDARD
                .decode(&proof.signature)
                .map_err(|e| PopError::SignatureFormat(format!("not base64: {e}")))?;
            verify_certify(&ak, &session.challenge, &message, &signature)
        });
    if let Err(reason) = checked {
        tracing::warn!(agent_id, session_id, reason = %reason, "proof of possession refused");
        return Ok(outcome.fail(StatusCode::UNAUTHORIZED, &reason.to_string()));
    }
    let token = new_token(session_id);
    let lifetime = registry.settings.session_lifetime;
    let expires_at = received_at + lifetime;
    state
        .store
        .verifier()
        .replace_session_token(&agent_id, &token_hash(&token), expires_at.unix_timestamp())
        .await?;
    tracing::info!(
        agent_id,
        session_id,
        "proof of possession accepted; token issued"
    );
    let mut body = outcome.document("pass");
    body["data"]["attributes"]["token"] = Value::String(token);
    body["data"]["attributes"]["token_expires_at"] = Value::String(iso(expires_at));
    Ok(json_response(StatusCode::OK, &body))
}

/// What a PATCH response reports about the session.
struct Outcome<'a> {
    session_id: &'a str,
    session: &'a PendingSession,
    proof: Option<&'a PopProof>,
    received_at: OffsetDateTime,
}

impl Outcome<'_> {
    fn document(&self, evaluation: &str) -> Value {
        let s = self.session;
        let (message, signature) = self
            .proof
            .map_or(("", ""), |p| (p.message.as_str(), p.signature.as_str()));
        json!({"data": {"type": "session", "id": self.session_id, "attributes": {
            "agent_id": s.agent_id,
            "evaluation": evaluation,
            "authentication": [{
                "authentication_class": "pop",
                "authentication_type": "tpm_pop",
                "chosen_parameters": {"challenge": STANDARD.encode(s.challenge)},
                "data": {"message": message, "signature": signature},
            }],
            "created_at": iso(s.created_at),
            "challenges_expire_at": iso(s.challenges_expire_at),
            "response_received_at": iso(self.received_at),
            "token_expires_at": Value::Null,
        }}})
    }

    /// A failed evaluation, with the reason in `meta`.
    fn fail(&self, status: StatusCode, reason: &str) -> Response {
        let mut body = self.document("fail");
        body["meta"] = json!({ "reason": reason });
        json_response(status, &body)
    }
}

/// A random UUID (v4) as the session id.
fn new_session_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// ISO 8601 in UTC as Python's `isoformat()` prints it: `+00:00`, microseconds only when
/// not zero (PROTOCOL.md §0.5).
pub fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let micros = t.microsecond();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A `{"errors":[…]}` document.
pub fn errors(status: StatusCode, title: &str, detail: &str) -> Response {
    json_response(
        status,
        &json!({"errors": [{"status": status.as_str(), "title": title, "detail": detail}]}),
    )
}

fn bad_request(detail: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, "Bad Request", detail)
}

fn too_many(detail: &str, retry_after: u64) -> Response {
    let mut response = errors(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", detail);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_python_isoformat() {
        let t = OffsetDateTime::from_unix_timestamp(1_795_865_132).unwrap();
        assert_eq!(iso(t), "2026-11-28T11:25:32+00:00");
        let t = t + time::Duration::microseconds(481_739);
        assert_eq!(iso(t), "2026-11-28T11:25:32.481739+00:00");
    }

    #[test]
    fn session_ids_are_uuid4() {
        let id = new_session_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
