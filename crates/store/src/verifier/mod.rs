//! Verifier agent records (table `verifier_agents`; upstream's `verifiermain`).
//!
//! One row per agent enrolled at a verifier: the tenant's add-agent body and the
//! attestation engine's per-agent state (both opaque JSON text to this crate), the
//! operational state with upstream's numbers, the counters and timestamps the status API
//! reports, and the id of the verifier that polls the agent. Everything the pull loop needs
//! to resume after a restart is here.
//!
//! The loop's writes ([`VerifierRepo::save_progress`]) never overwrite a TERMINATED (8) or
//! TENANT_FAILED (10) state set by an operator meanwhile, and operator state changes are
//! compare-and-set ([`VerifierRepo::compare_and_set_state`]), so a delete or stop racing a
//! poll cannot be lost. Fields are bounded before any write.
//!
//! `notifications` adds the revocation webhook outbox and the per-agent V-delivery
//! marker (migration 0003); `session_tokens` the push agents' bearer tokens (migration
//! 0008).

mod notifications;
mod policies;
mod session_tokens;

use std::fmt;

use sqlx::FromRow;

use crate::pool::{AttemptFuture, Pool, is_transient, retry, sql, with_pool};
use crate::{Backend, StoreError};

pub use notifications::{
    MAX_DELIVERY_MARKER_CHARS, MAX_OUTBOX_ID_CHARS, MAX_WEBHOOK_BODY_BYTES, PendingWebhook,
};
pub use policies::{
    MAX_POLICY_BYTES, MAX_POLICY_NAME_CHARS, NewPolicies, PolicyDelete, PolicyKind, StoredPolicy,
};
pub use session_tokens::{SessionToken, TOKEN_HASH_CHARS};

/// Longest agent or verifier id (upstream `VARCHAR(80)`).
pub const MAX_ID_CHARS: usize = 80;
/// Longest contact address or event id.
pub const MAX_SHORT_TEXT_CHARS: usize = 255;
/// Largest add-agent body kept (upstream's default `max_upload_size`).
pub const MAX_ADD_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// Largest engine state kept.
pub const MAX_ENGINE_STATE_BYTES: usize = 1024 * 1024;
/// TERMINATED: delete pending.
pub const STATE_TERMINATED: i32 = 8;
/// TENANT_FAILED: stopped by an operator.
pub const STATE_TENANT_FAILED: i32 = 10;

/// One agent as the verifier stores it. `Debug` shows only the sizes of the JSON texts
/// (the add request carries the revocation key and V).
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct VerifierAgent {
    pub agent_id: String,
    /// The verifier instance that polls this agent (`[verifier] uuid`).
    pub verifier_id: String,
    /// 0–10, upstream's numbers.
    pub operational_state: i32,
    /// Agent contact address (none in push mode).
    pub ip: Option<String>,
    pub port: Option<i32>,
    /// The add-agent request as JSON text.
    pub add_request: String,
    /// The attestation engine's per-agent state as JSON text.
    pub engine_state: String,
    pub attestation_count: i64,
    /// Unix seconds; 0 = never.
    pub last_received_quote: i64,
    /// Unix seconds; 0 = never.
    pub last_successful_attestation: i64,
    pub severity_level: Option<i32>,
    pub last_event_id: Option<String>,
    /// The named runtime policy the agent is attested against (migration 0004).
    pub runtime_policy_name: Option<String>,
    /// The named measured-boot policy the agent is attested against (migration 0004).
    pub mb_policy_name: Option<String>,
}

impl fmt::Debug for VerifierAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierAgent")
            .field("agent_id", &self.agent_id)
            .field("verifier_id", &self.verifier_id)
            .field("operational_state", &self.operational_state)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("add_request_len", &self.add_request.len())
            .field("engine_state_len", &self.engine_state.len())
            .field("attestation_count", &self.attestation_count)
            .field("last_received_quote", &self.last_received_quote)
            .field(
                "last_successful_attestation",
                &self.last_successful_attestation,
            )
            .field("severity_level", &self.severity_level)
            .field("last_event_id", &self.last_event_id)
            .field("runtime_policy_name", &self.runtime_policy_name)
            .field("mb_policy_name", &self.mb_policy_name)
            .finish()
    }
}

/// What one poll changed, written by the pull loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationProgress {
    pub operational_state: i32,
    pub engine_state: String,
    pub attestation_count: i64,
    pub last_received_quote: i64,
    pub last_successful_attestation: i64,
    pub severity_level: Option<i32>,
    pub last_event_id: Option<String>,
}

/// Queries on `verifier_agents`. Obtained from [`crate::Store::verifier`].
#[derive(Clone, Copy)]
pub struct VerifierRepo<'s> {
    pool: &'s Pool,
}

macro_rules! columns {
    () => {
        "agent_id, verifier_id, operational_state, ip, port, add_request, engine_state, \
         attestation_count, last_received_quote, last_successful_attestation, severity_level, \
         last_event_id, runtime_policy_name, mb_policy_name"
    };
}

/// MySQL's binary-collated text columns must be converted to decode as `String`.
macro_rules! mysql_columns {
    () => {
        "CONVERT(agent_id USING utf8mb4) AS agent_id, \
         CONVERT(verifier_id USING utf8mb4) AS verifier_id, operational_state, \
         CONVERT(ip USING utf8mb4) AS ip, port, \
         CONVERT(add_request USING utf8mb4) AS add_request, \
         CONVERT(engine_state USING utf8mb4) AS engine_state, \
         attestation_count, last_received_quote, last_successful_attestation, severity_level, \
         CONVERT(last_event_id USING utf8mb4) AS last_event_id, \
         CONVERT(runtime_policy_name USING utf8mb4) AS runtime_policy_name, \
         CONVERT(mb_policy_name USING utf8mb4) AS mb_policy_name"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO verifier_agents (",
    columns!(),
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
const SELECT_ONE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM verifier_agents WHERE agent_id = ?"
);
const SELECT_ONE_MYSQL: &str = concat!(
    "SELECT ",
    mysql_columns!(),
    " FROM verifier_agents WHERE agent_id = ?"
);
const SELECT_ALL: &str = concat!("SELECT ", columns!(), " FROM verifier_agents");
const SELECT_ALL_MYSQL: &str = concat!("SELECT ", mysql_columns!(), " FROM verifier_agents");
const SAVE_PROGRESS: &str = "UPDATE verifier_agents SET operational_state = ?, engine_state = ?, \
     attestation_count = ?, last_received_quote = ?, last_successful_attestation = ?, \
     severity_level = ?, last_event_id = ? \
     WHERE agent_id = ? AND operational_state NOT IN (8, 10)";
const SET_STATE: &str = "UPDATE verifier_agents SET operational_state = ? WHERE agent_id = ?";
const SET_ADD_REQUEST: &str = "UPDATE verifier_agents SET add_request = ? WHERE agent_id = ?";
const CAS_STATE: &str = "UPDATE verifier_agents SET operational_state = ? \
     WHERE agent_id = ? AND operational_state = ?";
const RESET_FOR_RESTART: &str = "UPDATE verifier_agents SET operational_state = 1 \
     WHERE verifier_id = ? AND operational_state IN (1, 3, 4, 5, 6)";
const DELETE: &str = "DELETE FROM verifier_agents WHERE agent_id = ?";

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidField {
        field,
        reason: reason.into(),
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), StoreError> {
    let n = id.chars().count();
    if n == 0 || n > MAX_ID_CHARS {
        return Err(invalid(
            field,
            format!("{n} characters, expected 1 to {MAX_ID_CHARS}"),
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

fn check_state(state: i32) -> Result<(), StoreError> {
    if (0..=10).contains(&state) {
        Ok(())
    } else {
        Err(invalid("operational_state", format!("{state} is not 0-10")))
    }
}

fn check_progress(p: &AttestationProgress) -> Result<(), StoreError> {
    check_state(p.operational_state)?;
    if p.engine_state.len() > MAX_ENGINE_STATE_BYTES {
        return Err(invalid(
            "engine_state",
            format!(
                "{} bytes, at most {MAX_ENGINE_STATE_BYTES}",
                p.engine_state.len()
            ),
        ));
    }
    if p.attestation_count < 0 {
        return Err(invalid("attestation_count", "must not be negative"));
    }
    if p.last_event_id
        .as_ref()
        .is_some_and(|e| e.chars().count() > MAX_SHORT_TEXT_CHARS)
    {
        return Err(invalid(
            "last_event_id",
            format!("longer than {MAX_SHORT_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

fn validate(agent: &VerifierAgent) -> Result<(), StoreError> {
    check_id("agent_id", &agent.agent_id)?;
    check_id("verifier_id", &agent.verifier_id)?;
    if agent
        .ip
        .as_ref()
        .is_some_and(|ip| ip.chars().count() > MAX_SHORT_TEXT_CHARS)
    {
        return Err(invalid(
            "ip",
            format!("longer than {MAX_SHORT_TEXT_CHARS} characters"),
        ));
    }
    if agent.port.is_some_and(|p| !(1..=65535).contains(&p)) {
        return Err(invalid("port", "must be 1-65535"));
    }
    if agent.add_request.len() > MAX_ADD_REQUEST_BYTES {
        return Err(invalid(
            "add_request",
            format!(
                "{} bytes, at most {MAX_ADD_REQUEST_BYTES}",
                agent.add_request.len()
            ),
        ));
    }
    check_progress(&AttestationProgress {
        operational_state: agent.operational_state,
        engine_state: agent.engine_state.clone(),
        attestation_count: agent.attestation_count,
        last_received_quote: agent.last_received_quote,
        last_successful_attestation: agent.last_successful_attestation,
        severity_level: agent.severity_level,
        last_event_id: agent.last_event_id.clone(),
    })
}

impl<'s> VerifierRepo<'s> {
    pub(crate) fn new(pool: &'s Pool) -> Self {
        VerifierRepo { pool }
    }

    fn backend(&self) -> Backend {
        self.pool.backend()
    }

    async fn execute(
        &self,
        operation: &'static str,
        q: &'static str,
        bind: impl Fn(&mut Vec<Bind>) + Send + Sync,
    ) -> Result<u64, StoreError> {
        let q = sql(self.backend(), q);
        let mut values = Vec::new();
        bind(&mut values);
        retry(operation, is_transient, || {
            let q = q.clone();
            let values = values.clone();
            with_pool!(self.pool, p => Box::pin(async move {
                let mut query = sqlx::query(&q);
                for v in values {
                    query = match v {
                        Bind::Text(t) => query.bind(t),
                        Bind::OptText(t) => query.bind(t),
                        Bind::Int(i) => query.bind(i),
                        Bind::OptInt(i) => query.bind(i),
                        Bind::Big(i) => query.bind(i),
                    };
                }
                query.execute(p).await.map(|r| r.rows_affected())
            }))
        })
        .await
        .map_err(StoreError::db(operation))
    }

    /// The agent's record, if enrolled.
    pub async fn get(&self, agent_id: &str) -> Result<Option<VerifierAgent>, StoreError> {
        if check_id("agent_id", agent_id).is_err() {
            return Ok(None);
        }
        let backend = self.backend();
        let q = sql(
            backend,
            if backend == Backend::Mysql {
                SELECT_ONE_MYSQL
            } else {
                SELECT_ONE
            },
        );
        let fetch: AttemptFuture<'_, Option<VerifierAgent>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(agent_id).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get verifier agent"))
    }

    /// Every agent (of `verifier_id` when given), sorted by id.
    pub async fn list(&self, verifier_id: Option<&str>) -> Result<Vec<VerifierAgent>, StoreError> {
        let backend = self.backend();
        let base = if backend == Backend::Mysql {
            SELECT_ALL_MYSQL
        } else {
            SELECT_ALL
        };
        let fetch: AttemptFuture<'_, Vec<VerifierAgent>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(base).fetch_all(p))
        });
        let mut rows = fetch
            .await
            .map_err(StoreError::db("list verifier agents"))?;
        if let Some(v) = verifier_id {
            rows.retain(|a| a.verifier_id == v);
        }
        rows.sort_unstable_by(|a, b| a.agent_id.cmp(&b.agent_id));
        Ok(rows)
    }

    /// Every agent id (of `verifier_id` when given), sorted.
    pub async fn list_ids(&self, verifier_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list(verifier_id)
            .await?
            .into_iter()
            .map(|a| a.agent_id)
            .collect())
    }

    /// Records one poll's outcome. `false` (nothing written) when the agent is gone or an
    /// operator moved it to TERMINATED or TENANT_FAILED meanwhile: the loop must stop.
    pub async fn save_progress(
        &self,
        agent_id: &str,
        progress: &AttestationProgress,
    ) -> Result<bool, StoreError> {
        check_progress(progress)?;
        let (id, p) = (agent_id.to_owned(), progress.clone());
        let n = self
            .execute("save attestation progress", SAVE_PROGRESS, move |b| {
                b.extend([
                    Bind::Int(p.operational_state),
                    Bind::Text(p.engine_state.clone()),
                    Bind::Big(p.attestation_count),
                    Bind::Big(p.last_received_quote),
                    Bind::Big(p.last_successful_attestation),
                    Bind::OptInt(p.severity_level),
                    Bind::OptText(p.last_event_id.clone()),
                    Bind::Text(id.clone()),
                ])
            })
            .await?;
        Ok(n > 0)
    }

    /// Sets the state unconditionally. `false` if the agent is not enrolled.
    pub async fn set_state(&self, agent_id: &str, state: i32) -> Result<bool, StoreError> {
        check_state(state)?;
        let id = agent_id.to_owned();
        let n = self
            .execute("set operational state", SET_STATE, move |b| {
                b.extend([Bind::Int(state), Bind::Text(id.clone())])
            })
            .await?;
        Ok(n > 0)
    }

    /// Replaces the stored add-agent request (e.g. with a renegotiated `supported_version`).
    /// `false` if the agent is not enrolled.
    pub async fn set_add_request(
        &self,
        agent_id: &str,
        add_request: &str,
    ) -> Result<bool, StoreError> {
        if add_request.len() > MAX_ADD_REQUEST_BYTES {
            return Err(StoreError::InvalidField {
                field: "add_request",
                reason: format!(
                    "{} bytes, more than {MAX_ADD_REQUEST_BYTES}",
                    add_request.len()
                ),
            });
        }
        let (id, body) = (agent_id.to_owned(), add_request.to_owned());
        let n = self
            .execute("replace add request", SET_ADD_REQUEST, move |b| {
                b.extend([Bind::Text(body.clone()), Bind::Text(id.clone())])
            })
            .await?;
        Ok(n > 0)
    }

    /// Sets the state to `new` only if it is still `expected`.
    pub async fn compare_and_set_state(
        &self,
        agent_id: &str,
        expected: i32,
        new: i32,
    ) -> Result<bool, StoreError> {
        check_state(new)?;
        let id = agent_id.to_owned();
        let n = self
            .execute("compare and set operational state", CAS_STATE, move |b| {
                b.extend([Bind::Int(new), Bind::Text(id.clone()), Bind::Int(expected)])
            })
            .await?;
        Ok(n > 0)
    }

    /// On verifier start: agents of `verifier_id` in START, GET_QUOTE(_RETRY) or
    /// PROVIDE_V(_RETRY) go back to START (upstream). Returns how many.
    pub async fn reset_for_restart(&self, verifier_id: &str) -> Result<u64, StoreError> {
        let id = verifier_id.to_owned();
        self.execute("reset agents for restart", RESET_FOR_RESTART, move |b| {
            b.push(Bind::Text(id.clone()))
        })
        .await
    }

    /// Removes the agent; `false` if it was not enrolled.
    pub async fn delete(&self, agent_id: &str) -> Result<bool, StoreError> {
        if check_id("agent_id", agent_id).is_err() {
            return Ok(false);
        }
        let n = self
            .transaction(
                "delete verifier agent",
                Self::delete_agent_statements(agent_id),
            )
            .await?
            .first()
            .copied()
            .unwrap_or(0);
        self.forget_v_delivery(agent_id).await?;
        if n > 0 {
            tracing::info!(agent_id, "verifier agent deleted");
        }
        Ok(n > 0)
    }
}

/// The binds of [`INSERT`], in column order.
fn agent_binds(a: &VerifierAgent) -> Vec<Bind> {
    vec![
        Bind::Text(a.agent_id.clone()),
        Bind::Text(a.verifier_id.clone()),
        Bind::Int(a.operational_state),
        Bind::OptText(a.ip.clone()),
        Bind::OptInt(a.port),
        Bind::Text(a.add_request.clone()),
        Bind::Text(a.engine_state.clone()),
        Bind::Big(a.attestation_count),
        Bind::Big(a.last_received_quote),
        Bind::Big(a.last_successful_attestation),
        Bind::OptInt(a.severity_level),
        Bind::OptText(a.last_event_id.clone()),
        Bind::OptText(a.runtime_policy_name.clone()),
        Bind::OptText(a.mb_policy_name.clone()),
    ]
}

/// A bind value; queries are built once for all three drivers.
#[derive(Clone)]
enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i32),
    OptInt(Option<i32>),
    Big(i64),
}
