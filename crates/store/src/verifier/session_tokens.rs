//! Bearer tokens of push agents' proof-of-possession sessions (table
//! `verifier_session_tokens`, migration 0008).
//!
//! Only a token's SHA-256 (lower-case hex) is stored, never the token, with the agent it
//! authenticates and its expiry (Unix seconds). Saving a token replaces the agent's older
//! ones in one transaction, so an agent holds at most one valid token.

use crate::StoreError;
use crate::pool::{AttemptFuture, is_transient, retry, sql, with_pool};

use super::{VerifierRepo, check_id, invalid};

/// Length of a stored token hash (hex SHA-256).
pub const TOKEN_HASH_CHARS: usize = 64;

/// A stored session token: whom it authenticates and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub agent_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

const DELETE_AGENT: &str = "DELETE FROM verifier_session_tokens WHERE agent_id = ?";
const INSERT: &str =
    "INSERT INTO verifier_session_tokens (token_hash, agent_id, expires_at) VALUES (?, ?, ?)";
const COUNT_AGENT: &str = "SELECT COUNT(*) FROM verifier_session_tokens WHERE agent_id = ?";
const SELECT: &str =
    "SELECT agent_id, expires_at FROM verifier_session_tokens WHERE token_hash = ?";

fn check_hash(token_hash: &str) -> Result<(), StoreError> {
    if token_hash.len() == TOKEN_HASH_CHARS
        && token_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(invalid(
            "token_hash",
            format!("expected {TOKEN_HASH_CHARS} lower-case hex characters"),
        ))
    }
}

impl VerifierRepo<'_> {
    /// Store `token_hash` as `agent_id`'s only session token, valid until `expires_at`.
    pub async fn replace_session_token(
        &self,
        agent_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        check_id("agent_id", agent_id)?;
        check_hash(token_hash)?;
        let backend = self.backend();
        let delete = sql(backend, DELETE_AGENT);
        let insert = sql(backend, INSERT);
        retry("save session token", is_transient, || {
            let (delete, insert) = (delete.clone(), insert.clone());
            let (agent_id, token_hash) = (agent_id.to_owned(), token_hash.to_owned());
            with_pool!(self.pool, p => Box::pin(async move {
                let mut tx = p.begin().await?;
                sqlx::query(&delete).bind(agent_id.clone()).execute(&mut *tx).await?;
                sqlx::query(&insert)
                    .bind(token_hash)
                    .bind(agent_id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }) as AttemptFuture<'_, ()>)
        })
        .await
        .map_err(StoreError::db("save session token"))
    }

    /// The session token whose hash is `token_hash`, if stored (expired or not).
    pub async fn session_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<SessionToken>, StoreError> {
        if check_hash(token_hash).is_err() {
            return Ok(None);
        }
        let q = sql(self.backend(), SELECT);
        let fetch: AttemptFuture<'_, Option<(String, i64)>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(token_hash).fetch_optional(p))
        });
        let row = fetch.await.map_err(StoreError::db("get session token"))?;
        Ok(row.map(|(agent_id, expires_at)| SessionToken {
            agent_id,
            expires_at,
        }))
    }

    /// How many session tokens `agent_id` holds (expired or not).
    pub async fn session_token_count(&self, agent_id: &str) -> Result<i64, StoreError> {
        let q = sql(self.backend(), COUNT_AGENT);
        let fetch: AttemptFuture<'_, (i64,)> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(agent_id).fetch_one(p))
        });
        Ok(fetch
            .await
            .map_err(StoreError::db("count session tokens"))?
            .0)
    }
}
