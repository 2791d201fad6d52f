//! `/keys/pubkey`, `/keys/ukey`, `/keys/vkey`, `/keys/verify` (PROTOCOL.md §4.6). The
//! shares are RSA-OAEP-SHA1-decrypted (blinded) with NK here, every unusable share getting
//! the same answer; pairing them is `key_exchange`'s job; delivering the payload runs in
//! the background, one delivery at a time. Over plain HTTP the shares are refused (403)
//! unless `enable_insecure_payload` is set.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_api::agent::{KeyVerifyResponse, PubkeyResponse, UkeyRequest, VkeyRequest};
use keylime_payload::{KEY_LEN, decrypt_key_share, key_auth_tag};

use super::api::PullApi;
use super::respond;
use crate::key_exchange::{DerivedKey, UShare};
use crate::secure_payload;

/// Longest `/keys/verify` challenge accepted.
const MAX_CHALLENGE_LEN: usize = 1024;

pub(super) async fn pubkey(State(api): State<Arc<PullApi>>) -> Response {
    respond::ok(PubkeyResponse {
        pubkey: api.payload_key.pubkey_pem().to_string(),
    })
}

/// Decodes and decrypts a share; `Err` is the 400 reason. Every share that does not
/// decrypt to exactly [`KEY_LEN`] bytes gets the same reason, so the answer is no
/// padding or length oracle on NK.
fn decrypt_share(api: &PullApi, encrypted_key: &str) -> Result<[u8; KEY_LEN], String> {
    let ct = STANDARD
        .decode(encrypted_key.trim())
        .map_err(|e| format!("Invalid base64 encoding in encrypted_key: {e}"))?;
    decrypt_key_share(api.payload_key.private_key(), &ct).map_err(|_| UNUSABLE_SHARE.to_string())
}

/// The one answer for a share that cannot be used.
const UNUSABLE_SHARE: &str =
    "Failed to decrypt encrypted_key: not a key share for this agent's payload key";

/// `Some(refusal)` when shares may not be taken on this transport: over plain HTTP anyone
/// could drive decryptions with NK and plant a payload, so that needs
/// `enable_insecure_payload` (module docs of `pull`).
fn refuse_insecure_shares(api: &PullApi) -> Option<Response> {
    if api.accepts_key_shares {
        return None;
    }
    tracing::warn!(
        agent_id = api.agent_id,
        "key share refused: served over plain HTTP and enable_insecure_payload is not set"
    );
    Some(respond::error(
        StatusCode::FORBIDDEN,
        "Key shares are not accepted over plain HTTP: enable_agent_mtls is false and \
         enable_insecure_payload is not set",
    ))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))
}

pub(super) async fn ukey(State(api): State<Arc<PullApi>>, body: Bytes) -> Response {
    if let Some(refused) = refuse_insecure_shares(&api) {
        return refused;
    }
    let req: UkeyRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(reason) => return respond::bad_request(reason),
    };
    let u = match decrypt_share(&api, &req.encrypted_key) {
        Ok(u) => u,
        Err(reason) => return respond::bad_request(reason),
    };
    if let Err(e) = hex::decode(req.auth_tag.trim()) {
        return respond::bad_request(format!("Invalid hex encoding in auth_tag: {e}"));
    }
    if let Some(payload) = &req.payload
        && let Err(e) = STANDARD.decode(payload.trim())
    {
        return respond::bad_request(format!("Invalid base64 encoding in payload: {e}"));
    }
    tracing::info!(
        agent_id = api.agent_id,
        payload = req.payload.is_some(),
        "received U key share"
    );
    let derived = match api.keys.lock() {
        Ok(mut keys) => keys.add_u(UShare {
            u,
            auth_tag: req.auth_tag,
            payload: req.payload,
        }),
        Err(_) => return poisoned(),
    };
    if let Some(derived) = derived {
        spawn_delivery(Arc::clone(&api), derived);
    }
    respond::ok_null()
}

pub(super) async fn vkey(State(api): State<Arc<PullApi>>, body: Bytes) -> Response {
    if let Some(refused) = refuse_insecure_shares(&api) {
        return refused;
    }
    let req: VkeyRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(reason) => return respond::bad_request(reason),
    };
    let v = match decrypt_share(&api, &req.encrypted_key) {
        Ok(v) => v,
        Err(reason) => return respond::bad_request(reason),
    };
    tracing::info!(agent_id = api.agent_id, "received V key share");
    let derived = match api.keys.lock() {
        Ok(mut keys) => keys.add_v(v),
        Err(_) => return poisoned(),
    };
    if let Some(derived) = derived {
        spawn_delivery(Arc::clone(&api), derived);
    }
    respond::ok_null()
}

pub(super) async fn verify(
    State(api): State<Arc<PullApi>>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return respond::bad_request("malformed query string");
    };
    let Some(challenge) = q.get("challenge").filter(|c| !c.is_empty()) else {
        return respond::bad_request("No challenge provided.");
    };
    if !challenge.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return respond::bad_request(format!(
            "Parameters should be strictly alphanumeric: {challenge}"
        ));
    }
    if challenge.len() > MAX_CHALLENGE_LEN {
        return respond::bad_request(format!(
            "challenge is longer than {MAX_CHALLENGE_LEN} characters"
        ));
    }
    match api.bootstrap_key() {
        None => respond::bad_request("Bootstrap key not yet available."),
        Some(k) => respond::ok(KeyVerifyResponse {
            hmac: key_auth_tag(&k, challenge),
        }),
    }
}

fn poisoned() -> Response {
    respond::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "key exchange state is unusable",
    )
}

/// Delivers the payload of a freshly derived K in the background (module docs).
fn spawn_delivery(api: Arc<PullApi>, derived: DerivedKey) {
    tracing::info!(agent_id = api.agent_id, "bootstrap key derived");
    tokio::spawn(async move {
        let _one_at_a_time = api.delivery.lock().await;
        let settings = api.payload.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            secure_payload::prepare(&settings, &derived.key, derived.payload.as_deref())
        })
        .await;
        match prepared {
            Ok(Ok(prepared)) => {
                if let Some(script) = prepared.script {
                    secure_payload::run_script(&script, &prepared.unzipped).await;
                }
            }
            Ok(Err(e)) => {
                tracing::error!(agent_id = api.agent_id, error = %e, "payload delivery failed")
            }
            Err(e) => {
                tracing::error!(agent_id = api.agent_id, error = %e, "payload delivery task failed")
            }
        }
    });
}
