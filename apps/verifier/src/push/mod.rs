//! The push model's (API 3.0) proof-of-possession sessions (PROTOCOL.md §6.1, §6.6): a
//! push agent asks for a challenge (`POST /v3[.0]/sessions`), answers it with a
//! TPM2_Certify of its AK over the challenge (`PATCH /v3[.0]/sessions/{id}`) and receives a
//! bearer token, which later push routes check with [`token::authenticate`].
//!
//! Owns the pending challenges (in memory, bounded, each used once), the session-creation
//! rate limits, and the verification of the proof. Tokens are stored only as SHA-256
//! hashes, in the store (`verifier_session_tokens`).

pub mod document;
pub mod pop;
pub mod rate_limit;
pub mod sessions;
pub mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keylime_config::VerifierConfig;

use rate_limit::RateLimiter;

/// Largest body of a session request; larger ones get 413.
pub const MAX_SESSION_BODY_BYTES: usize = 64 * 1024;
/// Most challenges waiting for their proof at once; beyond it the oldest is dropped.
pub const MAX_PENDING_SESSIONS: usize = 10_000;
/// Bytes of a challenge (upstream: 16).
pub const CHALLENGE_BYTES: usize = 16;

/// Lifetimes and rate limits of sessions (upstream's `[verifier]` options).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// `nonce_lifetime`: how long a challenge can be answered.
    pub nonce_lifetime: Duration,
    /// `session_lifetime`: how long a token is valid.
    pub session_lifetime: Duration,
    /// `session_create_rate_limit_per_ip` per `session_create_rate_limit_window_ip`.
    pub per_ip: u32,
    pub window_ip: Duration,
    /// `session_create_rate_limit_per_agent` per `session_create_rate_limit_window_agent`.
    pub per_agent: u32,
    pub window_agent: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            nonce_lifetime: Duration::from_secs(60),
            session_lifetime: Duration::from_secs(180),
            per_ip: 50,
            window_ip: Duration::from_secs(60),
            per_agent: 15,
            window_agent: Duration::from_secs(60),
        }
    }
}

impl SessionSettings {
    /// From the verifier's configuration.
    pub fn from_config(cfg: &VerifierConfig) -> Self {
        let secs = Duration::from_secs;
        SessionSettings {
            nonce_lifetime: secs(cfg.nonce_lifetime),
            session_lifetime: secs(cfg.session_lifetime),
            per_ip: cfg.session_create_rate_limit_per_ip,
            window_ip: secs(cfg.session_create_rate_limit_window_ip),
            per_agent: cfg.session_create_rate_limit_per_agent,
            window_agent: secs(cfg.session_create_rate_limit_window_agent),
        }
    }
}

/// A challenge waiting for its proof.
#[derive(Debug, Clone)]
pub struct PendingSession {
    pub agent_id: String,
    pub challenge: [u8; CHALLENGE_BYTES],
    /// Wall-clock creation time (rendered in responses).
    pub created_at: time::OffsetDateTime,
    /// Wall-clock end of the challenge (rendered in responses).
    pub challenges_expire_at: time::OffsetDateTime,
    /// Monotonic deadline of the challenge.
    pub expires: Instant,
    /// When the entry is forgotten (a later PATCH gets 404).
    pub forget_at: Instant,
}

/// Pending challenges and rate limiters, shared by the session handlers.
pub struct SessionRegistry {
    pub settings: SessionSettings,
    pending: Mutex<HashMap<String, PendingSession>>,
    per_ip: RateLimiter,
    per_agent: RateLimiter,
}

impl SessionRegistry {
    pub fn new(settings: SessionSettings) -> Self {
        SessionRegistry {
            per_ip: RateLimiter::new(settings.per_ip, settings.window_ip),
            per_agent: RateLimiter::new(settings.per_agent, settings.window_agent),
            pending: Mutex::new(HashMap::new()),
            settings,
        }
    }

    /// Keep `session` under `id` until answered or forgotten.
    fn insert(&self, id: String, session: PendingSession) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Expired challenges are refused by `take` and only swept out when the table is
        // full, so a request does not scan the whole table.
        if pending.len() >= MAX_PENDING_SESSIONS {
            let now = Instant::now();
            pending.retain(|_, s| s.forget_at > now);
        }
        if pending.len() >= MAX_PENDING_SESSIONS
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(id, session);
    }

    /// Take the session `id` out (each challenge is answered at most once).
    fn take(&self, id: &str) -> Option<PendingSession> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let session = pending.remove(id)?;
        (session.forget_at > Instant::now()).then_some(session)
    }

    /// Put back a session taken by [`Self::take`] whose request was refused before the
    /// proof was looked at (agent id mismatch), so the agent can still answer.
    fn restore(&self, id: String, session: PendingSession) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(id, session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_in: Duration, forget_in: Duration) -> PendingSession {
        let now = Instant::now();
        PendingSession {
            agent_id: "a".into(),
            challenge: [0; CHALLENGE_BYTES],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            challenges_expire_at: time::OffsetDateTime::UNIX_EPOCH,
            expires: now + expires_in,
            forget_at: now + forget_in,
        }
    }

    fn len(registry: &SessionRegistry) -> usize {
        registry.pending.lock().unwrap().len()
    }

    #[test]
    fn the_table_stays_bounded_and_evicts_the_oldest_challenge() {
        let registry = SessionRegistry::new(SessionSettings::default());
        let hour = Duration::from_secs(3600);
        registry.insert("oldest".into(), session(hour, hour));
        for i in 1..MAX_PENDING_SESSIONS {
            registry.insert(format!("s{i}"), session(2 * hour, 2 * hour));
        }
        assert_eq!(len(&registry), MAX_PENDING_SESSIONS);
        registry.insert("newest".into(), session(2 * hour, 2 * hour));
        assert_eq!(
            len(&registry),
            MAX_PENDING_SESSIONS,
            "never above the bound"
        );
        assert!(
            registry.take("oldest").is_none(),
            "the oldest challenge made room"
        );
        assert!(registry.take("newest").is_some());
    }

    #[test]
    fn a_forgotten_challenge_is_refused_and_swept_when_full() {
        let registry = SessionRegistry::new(SessionSettings::default());
        registry.insert("gone".into(), session(Duration::ZERO, Duration::ZERO));
        assert!(registry.take("gone").is_none(), "refused once forgotten");
        let hour = Duration::from_secs(3600);
        for i in 0..MAX_PENDING_SESSIONS {
            let ttl = if i % 2 == 0 { Duration::ZERO } else { hour };
            registry.insert(format!("s{i}"), session(ttl, ttl));
        }
        registry.insert("one more".into(), session(hour, hour));
        assert_eq!(
            len(&registry),
            MAX_PENDING_SESSIONS / 2 + 1,
            "the forgotten half was swept, no live challenge evicted"
        );
    }
}
