//! Registrar agent records (table `registrar_agents`; upstream's `registrarmain`).
//!
//! Owns the registration rules that need the database to be enforced atomically
//! (PROTOCOL.md §2.2–2.4): a first registration creates an inactive record; a
//! re-registration may not change the TPM identity (EK, EK certificate, AK); an inactive
//! record is reset with a fresh activation key, while an active one is kept and the new
//! registration is held beside it (`pending`) until its activation succeeds, so nobody
//! can deactivate an agent by replaying its public keys; activation is a compare-and-set
//! on the key so a replayed or raced activation cannot succeed twice. It does not parse TPM
//! structures or certificates — callers validate those — but it does bound every field's
//! size before writing, so a bad value is a typed error and never a half-written row.

mod agent;
mod pending;
mod validate;

pub use agent::RegistrarAgent;
pub use validate::{
    MAX_ACTIVATION_KEY_CHARS, MAX_AGENT_ID_CHARS, MAX_CERT_BYTES, MAX_IP_CHARS,
    MAX_MTLS_CERT_BYTES, MAX_TPM_PUBLIC_BYTES,
};
use validate::{validate_activation_key, validate_agent_id, validate_registration};

use crate::pool::{
    AttemptFuture, Pool, begin_write, is_transient, is_unique_violation, retry, sql, with_pool,
};
use crate::{Backend, StoreError};

/// What [`RegistrarRepo::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// No record existed; one was created (inactive, `regcount` 1).
    Created,
    /// An inactive record with the same TPM identity existed and was overwritten (new
    /// activation key, `regcount` + 1).
    Replaced,
    /// An ACTIVE record with the same TPM identity exists: it is kept as it is, and the
    /// registration (with its activation key) is held beside it until
    /// [`RegistrarRepo::activate`] succeeds with that key, which applies it.
    Held,
}

/// Queries on `registrar_agents`. Obtained from [`crate::Store::registrar`].
#[derive(Clone, Copy)]
pub struct RegistrarRepo<'s> {
    pool: &'s Pool,
}

macro_rules! columns {
    () => {
        "agent_id, ek_tpm, ekcert, aik_tpm, iak_tpm, iak_cert, idevid_tpm, idevid_cert, \
         mtls_cert, ip, port, activation_key, active, regcount"
    };
}

/// The same columns for MySQL: its text columns use a binary collation (exact comparison,
/// like the other backends), which sqlx refuses to decode as `String`; converting them in
/// the select list keeps the stored bytes and drops the binary flag.
macro_rules! mysql_columns {
    () => {
        "CONVERT(agent_id USING utf8mb4) AS agent_id, ek_tpm, ekcert, aik_tpm, iak_tpm, \
         iak_cert, idevid_tpm, idevid_cert, CONVERT(mtls_cert USING utf8mb4) AS mtls_cert, \
         CONVERT(ip USING utf8mb4) AS ip, port, \
         CONVERT(activation_key USING utf8mb4) AS activation_key, active, regcount"
    };
}

/// Binds, in this order, the fields a re-registration with the same TPM identity may
/// replace: `iak_tpm, iak_cert, idevid_tpm, idevid_cert, mtls_cert, ip, port` (of a
/// [`RegistrarAgent`] or a held registration).
macro_rules! bind_replaceable {
    ($query:expr, $from:expr) => {
        $query
            .bind(&$from.iak_tpm)
            .bind(&$from.iak_cert)
            .bind(&$from.idevid_tpm)
            .bind(&$from.idevid_cert)
            .bind(&$from.mtls_cert)
            .bind(&$from.ip)
            .bind($from.port)
    };
}

const SELECT_ONE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM registrar_agents WHERE agent_id = ?"
);
const SELECT_ONE_MYSQL: &str = concat!(
    "SELECT ",
    mysql_columns!(),
    " FROM registrar_agents WHERE agent_id = ?"
);
const SELECT_ONE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM registrar_agents WHERE agent_id = ? FOR UPDATE"
);
const SELECT_ONE_FOR_UPDATE_MYSQL: &str = concat!(
    "SELECT ",
    mysql_columns!(),
    " FROM registrar_agents WHERE agent_id = ? FOR UPDATE"
);
const INSERT: &str = concat!(
    "INSERT INTO registrar_agents (",
    columns!(),
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, 1)"
);
const UPDATE_REREGISTER: &str = "UPDATE registrar_agents SET ek_tpm = ?, ekcert = ?, \
     aik_tpm = ?, iak_tpm = ?, iak_cert = ?, idevid_tpm = ?, idevid_cert = ?, mtls_cert = ?, \
     ip = ?, port = ?, activation_key = ?, active = FALSE, \
     regcount = CASE WHEN regcount < 2147483647 THEN regcount + 1 ELSE regcount END \
     WHERE agent_id = ?";
const ACTIVATE: &str = "UPDATE registrar_agents SET active = TRUE, activation_key = NULL \
     WHERE agent_id = ? AND active = FALSE AND activation_key = ?";
const DELETE: &str = "DELETE FROM registrar_agents WHERE agent_id = ?";
const LIST_IDS: &str = "SELECT agent_id FROM registrar_agents";
const LIST_IDS_MYSQL: &str = "SELECT CONVERT(agent_id USING utf8mb4) FROM registrar_agents";

/// Result of one registration attempt that did not fail in the database.
enum Attempt {
    Done(RegisterOutcome),
    Conflict,
}

impl<'s> RegistrarRepo<'s> {
    pub(crate) fn new(pool: &'s Pool) -> Self {
        RegistrarRepo { pool }
    }

    fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Creates or re-registers `agent` in one transaction (see [`RegisterOutcome`]).
    ///
    /// `agent.active` and `agent.regcount` are ignored: a new or replaced record is
    /// inactive, a held one leaves the active record as it is, and the count is kept by the
    /// store. `activation_key` is required. A stored non-null
    /// `ek_tpm`, `ekcert` or `aik_tpm` that differs from the new value (including a new
    /// `None`) fails with [`StoreError::IdentityConflict`] and leaves the record as it was.
    /// Concurrent registrations of one id serialize on the row; a uniqueness race that
    /// persists past the retries is reported as an identity conflict.
    pub async fn register(&self, agent: &RegistrarAgent) -> Result<RegisterOutcome, StoreError> {
        validate_registration(agent)?;
        let result = retry(
            "register agent",
            |e| is_transient(e) || is_unique_violation(e),
            || self.try_register(agent),
        )
        .await;
        match result {
            Ok(Attempt::Done(outcome)) => {
                tracing::info!(agent_id = %agent.agent_id, ?outcome, "agent registration stored");
                Ok(outcome)
            }
            Ok(Attempt::Conflict) => {
                tracing::warn!(
                    agent_id = %agent.agent_id,
                    "re-registration with a different TPM identity refused"
                );
                Err(StoreError::IdentityConflict {
                    agent_id: agent.agent_id.clone(),
                })
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::IdentityConflict {
                agent_id: agent.agent_id.clone(),
            }),
            Err(source) => Err(StoreError::Database {
                operation: "register agent",
                source,
            }),
        }
    }

    fn try_register<'a>(&'a self, agent: &'a RegistrarAgent) -> AttemptFuture<'a, Attempt> {
        let backend = self.backend();
        let select = sql(
            backend,
            match backend {
                // SQLite has no row locks; BEGIN IMMEDIATE already holds the write lock.
                Backend::Sqlite => SELECT_ONE,
                Backend::Postgres => SELECT_ONE_FOR_UPDATE,
                Backend::Mysql => SELECT_ONE_FOR_UPDATE_MYSQL,
            },
        );
        with_pool!(self.pool, p => Box::pin(async move {
            let mut tx = begin_write(p, backend).await?;
            let stored: Option<RegistrarAgent> = sqlx::query_as(&select)
                .bind(&agent.agent_id)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match stored {
                None => {
                    let statement = sql(backend, INSERT);
                    let query = sqlx::query(&statement)
                        .bind(&agent.agent_id)
                        .bind(&agent.ek_tpm)
                        .bind(&agent.ekcert)
                        .bind(&agent.aik_tpm);
                    bind_replaceable!(query, agent)
                        .bind(&agent.activation_key)
                        .execute(&mut *tx)
                        .await?;
                    RegisterOutcome::Created
                }
                Some(stored) if identity_changes(&stored, agent) => {
                    tx.rollback().await?;
                    return Ok(Attempt::Conflict);
                }
                Some(stored) if stored.active => {
                    sqlx::query(&sql(backend, pending::DELETE))
                        .bind(&agent.agent_id)
                        .execute(&mut *tx)
                        .await?;
                    let statement = sql(backend, pending::INSERT);
                    let query = sqlx::query(&statement)
                        .bind(&agent.agent_id)
                        .bind(&agent.ekcert);
                    bind_replaceable!(query, agent)
                        .bind(&agent.activation_key)
                        .execute(&mut *tx)
                        .await?;
                    RegisterOutcome::Held
                }
                Some(_) => {
                    let statement = sql(backend, UPDATE_REREGISTER);
                    let query = sqlx::query(&statement)
                        .bind(&agent.ek_tpm)
                        .bind(&agent.ekcert)
                        .bind(&agent.aik_tpm);
                    bind_replaceable!(query, agent)
                        .bind(&agent.activation_key)
                        .bind(&agent.agent_id)
                        .execute(&mut *tx)
                        .await?;
                    RegisterOutcome::Replaced
                }
            };
            tx.commit().await?;
            Ok(Attempt::Done(outcome))
        }))
    }

    /// The record for `agent_id`, active or not. An id that could never be stored (too
    /// long, whitespace, control characters) is simply not found.
    pub async fn get(&self, agent_id: &str) -> Result<Option<RegistrarAgent>, StoreError> {
        if validate_agent_id(agent_id).is_err() {
            return Ok(None);
        }
        let backend = self.backend();
        let q = sql(
            backend,
            match backend {
                Backend::Mysql => SELECT_ONE_MYSQL,
                Backend::Sqlite | Backend::Postgres => SELECT_ONE,
            },
        );
        let fetch: AttemptFuture<'_, Option<RegistrarAgent>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(agent_id).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get agent"))
    }

    /// Every stored agent id, sorted bytewise (the same order on every backend).
    pub async fn list_ids(&self) -> Result<Vec<String>, StoreError> {
        let list = match self.backend() {
            Backend::Mysql => LIST_IDS_MYSQL,
            Backend::Sqlite | Backend::Postgres => LIST_IDS,
        };
        let fetch: AttemptFuture<'_, Vec<String>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(list).fetch_all(p))
        });
        let mut ids = fetch.await.map_err(StoreError::db("list agents"))?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Removes the record; `false` if there was none.
    pub async fn delete(&self, agent_id: &str) -> Result<bool, StoreError> {
        if validate_agent_id(agent_id).is_err() {
            return Ok(false);
        }
        let q = sql(self.backend(), DELETE);
        let affected = retry("delete agent", is_transient, || {
            with_pool!(self.pool, p => {
                let q = &q;
                Box::pin(async move {
                    sqlx::query(q).bind(agent_id).execute(p).await.map(|r| r.rows_affected())
                })
            })
        })
        .await
        .map_err(StoreError::db("delete agent"))?;
        if affected > 0 {
            tracing::info!(agent_id, "agent deleted");
        }
        Ok(affected > 0)
    }

    /// Compare-and-set activation with the key the caller checked the agent's proof
    /// against (constant time). For an inactive record: marks it active and clears its key
    /// if the key is still `expected_key`. For an active record with a held
    /// re-registration under `expected_key`: applies that registration (contact address,
    /// mTLS certificate, IAK/IDevID, `regcount` + 1) and drops it. `false` means no such
    /// pending registration (unknown id, already activated, superseded, wrong key), so an
    /// activation raced by a re-registration cannot succeed.
    pub async fn activate(&self, agent_id: &str, expected_key: &str) -> Result<bool, StoreError> {
        if validate_agent_id(agent_id).is_err() || validate_activation_key(expected_key).is_err() {
            return Ok(false);
        }
        let activated = retry("activate agent", is_transient, || {
            self.try_activate(agent_id, expected_key)
        })
        .await
        .map_err(StoreError::db("activate agent"))?;
        if activated {
            tracing::info!(agent_id, "agent activated");
        }
        Ok(activated)
    }

    fn try_activate<'a>(&'a self, agent_id: &'a str, key: &'a str) -> AttemptFuture<'a, bool> {
        let backend = self.backend();
        let select_held = sql(
            backend,
            match backend {
                Backend::Sqlite => pending::SELECT,
                Backend::Postgres => pending::SELECT_FOR_UPDATE,
                Backend::Mysql => pending::SELECT_FOR_UPDATE_MYSQL,
            },
        );
        with_pool!(self.pool, p => Box::pin(async move {
            let mut tx = begin_write(p, backend).await?;
            let first = sqlx::query(&sql(backend, ACTIVATE))
                .bind(agent_id)
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if first > 0 {
                tx.commit().await?;
                return Ok(true);
            }
            let held: Option<pending::Held> = sqlx::query_as(&select_held)
                .bind(agent_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(held) = held else {
                tx.rollback().await?;
                return Ok(false);
            };
            let statement = sql(backend, pending::APPLY);
            let query = sqlx::query(&statement).bind(&held.ekcert);
            let applied = bind_replaceable!(query, held)
                .bind(agent_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(&sql(backend, pending::DELETE))
                .bind(agent_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(applied > 0)
        }))
    }

    /// The activation key of the re-registration held for an active agent, if any.
    pub async fn held_key(&self, agent_id: &str) -> Result<Option<String>, StoreError> {
        if validate_agent_id(agent_id).is_err() {
            return Ok(None);
        }
        let q = sql(
            self.backend(),
            match self.backend() {
                Backend::Mysql => pending::KEY_MYSQL,
                Backend::Sqlite | Backend::Postgres => pending::KEY,
            },
        );
        let fetch: AttemptFuture<'_, Option<String>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(&q).bind(agent_id).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get held registration"))
    }

    /// Drops the re-registration held for an active agent under `key` (its activation
    /// failed); the active record is untouched. `false` if there was none.
    pub async fn discard_held(&self, agent_id: &str, key: &str) -> Result<bool, StoreError> {
        if validate_agent_id(agent_id).is_err() {
            return Ok(false);
        }
        let q = sql(self.backend(), pending::DISCARD);
        let affected = retry("discard held registration", is_transient, || {
            with_pool!(self.pool, p => {
                let q = &q;
                Box::pin(async move {
                    sqlx::query(q)
                        .bind(agent_id)
                        .bind(key)
                        .execute(p)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
        })
        .await
        .map_err(StoreError::db("discard held registration"))?;
        Ok(affected > 0)
    }
}

/// True if `new` would change a TPM identity field that is already set.
fn identity_changes(stored: &RegistrarAgent, new: &RegistrarAgent) -> bool {
    fn changes(stored: Option<&[u8]>, new: Option<&[u8]>) -> bool {
        stored.is_some() && stored != new
    }
    changes(stored.ek_tpm.as_deref(), new.ek_tpm.as_deref())
        || changes(stored.ekcert.as_deref(), new.ekcert.as_deref())
        || stored.aik_tpm != new.aik_tpm
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn agent() -> RegistrarAgent {
        RegistrarAgent {
            agent_id: "d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into(),
            ek_tpm: Some(vec![1; 300]),
            ekcert: Some(vec![2; 900]),
            aik_tpm: vec![3; 280],
            iak_tpm: None,
            iak_cert: None,
            idevid_tpm: None,
            idevid_cert: None,
            mtls_cert: Some(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ),
            ip: Some("10.0.0.5".into()),
            port: Some(9002),
            activation_key: Some("c2VjcmV0".into()),
            active: false,
            regcount: 0,
        }
    }

    #[test]
    fn identity_rules() {
        let stored = agent();
        let mut new = agent();
        new.ip = Some("10.0.0.6".into());
        new.iak_tpm = Some(vec![9; 10]);
        assert!(!identity_changes(&stored, &new));
        new.ekcert = None;
        assert!(identity_changes(&stored, &new), "dropping a stored EK cert");
        let mut stored_no_cert = agent();
        stored_no_cert.ekcert = None;
        assert!(
            !identity_changes(&stored_no_cert, &agent()),
            "adding an EK cert"
        );
        let mut new = agent();
        new.aik_tpm[0] ^= 1;
        assert!(identity_changes(&stored, &new));
        let mut new = agent();
        new.ek_tpm = Some(vec![7; 300]);
        assert!(identity_changes(&stored, &new));
    }

    #[test]
    fn debug_hides_activation_key() {
        let shown = format!("{:?}", agent());
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
