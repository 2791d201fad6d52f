//! Session bearer tokens: `"{session id}.{secret}"`, the secret 32 random bytes in URL-safe
//! base64 (PROTOCOL.md §6.1). Only the SHA-256 of a token is stored; [`authenticate`] is
//! what push routes use to accept a request as coming from an agent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use keylime_store::Store;

use crate::clock::unix_now;

/// A new token for session `session_id`.
pub fn new_token(session_id: &str) -> String {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(secret))
}

/// The stored form of `token`: lower-case hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown token")]
    Unknown,
    #[error("token expired")]
    Expired,
    #[error("token belongs to another agent")]
    OtherAgent,
    #[error(transparent)]
    Store(#[from] keylime_store::StoreError),
}

/// Accept `token` (the bearer token, without `Bearer `) for `agent_id`: it must be stored,
/// unexpired and issued to that agent.
pub async fn authenticate(store: &Store, token: &str, agent_id: &str) -> Result<(), AuthError> {
    let Some(stored) = store.verifier().session_token(&token_hash(token)).await? else {
        return Err(AuthError::Unknown);
    };
    if stored.agent_id != agent_id {
        return Err(AuthError::OtherAgent);
    }
    if stored.expires_at <= unix_now() {
        return Err(AuthError::Expired);
    }
    Ok(())
}
