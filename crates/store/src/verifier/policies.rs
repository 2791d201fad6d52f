//! Named runtime and measured-boot policies (migration 0004; PROTOCOL.md §5.8, upstream's
//! `allowlists` and `mbpolicies` tables).
//!
//! A policy is stored once under a name and shared by every agent that names it
//! (`verifier_agents.runtime_policy_name` / `mb_policy_name`). Every write (create or
//! update) gives the policy the next value of one counter shared by both tables (migration
//! 0005) as its `generation`, which the verifier compares to re-parse a policy once per
//! version; a generation never repeats for a name, even across delete and re-create. A policy
//! in use by an agent cannot be deleted; deleting an agent removes the policies named after
//! it that no other agent uses (as upstream). The policy text is opaque here: the verifier
//! validates it before it is stored.

use sqlx::FromRow;

use super::{Bind, VerifierAgent, VerifierRepo, invalid, validate};
use crate::pool::{
    AttemptFuture, begin_write, is_transient, is_unique_violation, retry, sql, with_pool,
};
use crate::{Backend, StoreError};

/// Longest policy name (upstream `VARCHAR(255)`).
pub const MAX_POLICY_NAME_CHARS: usize = 255;
/// Largest policy text kept (upstream's policies reach about 20 MiB; this leaves room).
pub const MAX_POLICY_BYTES: usize = 64 * 1024 * 1024;

/// Which policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Runtime (IMA) policies: `/allowlists`.
    Runtime,
    /// Measured-boot reference states: `/mbpolicies`.
    MeasuredBoot,
}

/// One stored policy.
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct StoredPolicy {
    pub name: String,
    /// The policy text (runtime: JSON or DSSE envelope; measured boot: JSON, or none).
    pub body: Option<String>,
    /// The `tpm_policy` stored with a runtime policy (upstream keeps it, unused).
    pub tpm_policy: Option<String>,
    /// Taken from a counter on every write: grows on every update and never repeats for a
    /// name, even when the policy is deleted and created again.
    pub generation: i64,
}

impl std::fmt::Debug for StoredPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPolicy")
            .field("name", &self.name)
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("generation", &self.generation)
            .finish()
    }
}

/// Result of deleting a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDelete {
    Deleted,
    NotFound,
    /// An agent still uses it (the id of one such agent).
    InUse(String),
}

/// Policies to create together with an agent, in the same transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPolicies {
    /// `(name, policy text)`.
    pub runtime: Option<(String, String)>,
    /// `(name, reference state or none)`.
    pub mb: Option<(String, Option<String>)>,
}

struct Sql {
    insert: &'static str,
    update: &'static str,
    select: &'static str,
    select_mysql: &'static str,
    generation: &'static str,
    names: &'static str,
    names_mysql: &'static str,
    delete_unused: &'static str,
    user: &'static str,
    user_mysql: &'static str,
}

/// Takes the next generation; runs first in every transaction that writes a policy, which
/// then reads it with the insert and update statements (the row lock orders concurrent writers).
const BUMP_GENERATION: &str =
    "UPDATE verifier_policy_generation SET last_generation = last_generation + 1 WHERE id = 1";

const RUNTIME: Sql = Sql {
    insert: "INSERT INTO verifier_runtime_policies (name, runtime_policy, tpm_policy, generation) \
             VALUES (?, ?, ?, (SELECT last_generation FROM verifier_policy_generation WHERE id = 1))",
    update: "UPDATE verifier_runtime_policies SET runtime_policy = ?, tpm_policy = ?, \
             generation = (SELECT last_generation FROM verifier_policy_generation WHERE id = 1) \
             WHERE name = ?",
    select: "SELECT name, runtime_policy AS body, tpm_policy, generation \
             FROM verifier_runtime_policies WHERE name = ?",
    select_mysql: "SELECT CONVERT(name USING utf8mb4) AS name, \
             CONVERT(runtime_policy USING utf8mb4) AS body, \
             CONVERT(tpm_policy USING utf8mb4) AS tpm_policy, generation \
             FROM verifier_runtime_policies WHERE name = ?",
    generation: "SELECT generation FROM verifier_runtime_policies WHERE name = ?",
    names: "SELECT name FROM verifier_runtime_policies ORDER BY name",
    names_mysql: "SELECT CONVERT(name USING utf8mb4) FROM verifier_runtime_policies ORDER BY name",
    delete_unused: "DELETE FROM verifier_runtime_policies WHERE name = ? AND NOT EXISTS \
             (SELECT 1 FROM verifier_agents WHERE runtime_policy_name = ?)",
    user: "SELECT agent_id FROM verifier_agents WHERE runtime_policy_name = ? \
             ORDER BY agent_id LIMIT 1",
    user_mysql: "SELECT CONVERT(agent_id USING utf8mb4) FROM verifier_agents \
             WHERE runtime_policy_name = ? ORDER BY agent_id LIMIT 1",
};

const MEASURED_BOOT: Sql = Sql {
    insert: "INSERT INTO verifier_mb_policies (name, mb_policy, generation) VALUES (?, ?, \
             (SELECT last_generation FROM verifier_policy_generation WHERE id = 1))",
    update: "UPDATE verifier_mb_policies SET mb_policy = ?, \
             generation = (SELECT last_generation FROM verifier_policy_generation WHERE id = 1) \
             WHERE name = ?",
    select: "SELECT name, mb_policy AS body, CAST(NULL AS TEXT) AS tpm_policy, generation \
             FROM verifier_mb_policies WHERE name = ?",
    select_mysql: "SELECT CONVERT(name USING utf8mb4) AS name, \
             CONVERT(mb_policy USING utf8mb4) AS body, \
             CONVERT(NULL USING utf8mb4) AS tpm_policy, generation \
             FROM verifier_mb_policies WHERE name = ?",
    generation: "SELECT generation FROM verifier_mb_policies WHERE name = ?",
    names: "SELECT name FROM verifier_mb_policies ORDER BY name",
    names_mysql: "SELECT CONVERT(name USING utf8mb4) FROM verifier_mb_policies ORDER BY name",
    delete_unused: "DELETE FROM verifier_mb_policies WHERE name = ? AND NOT EXISTS \
             (SELECT 1 FROM verifier_agents WHERE mb_policy_name = ?)",
    user: "SELECT agent_id FROM verifier_agents WHERE mb_policy_name = ? \
             ORDER BY agent_id LIMIT 1",
    user_mysql: "SELECT CONVERT(agent_id USING utf8mb4) FROM verifier_agents \
             WHERE mb_policy_name = ? ORDER BY agent_id LIMIT 1",
};

impl PolicyKind {
    fn sql(self) -> &'static Sql {
        match self {
            PolicyKind::Runtime => &RUNTIME,
            PolicyKind::MeasuredBoot => &MEASURED_BOOT,
        }
    }

    fn label(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "runtime policy",
            PolicyKind::MeasuredBoot => "measured-boot policy",
        }
    }

    /// Binds of the insert statement.
    fn insert_binds(self, name: &str, body: Option<&str>, tpm_policy: Option<&str>) -> Vec<Bind> {
        match self {
            PolicyKind::Runtime => vec![
                Bind::Text(name.to_owned()),
                Bind::Text(body.unwrap_or_default().to_owned()),
                Bind::OptText(tpm_policy.map(str::to_owned)),
            ],
            PolicyKind::MeasuredBoot => vec![
                Bind::Text(name.to_owned()),
                Bind::OptText(body.map(str::to_owned)),
            ],
        }
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_POLICY_NAME_CHARS {
        return Err(invalid(
            "policy name",
            format!("{n} characters, expected 1 to {MAX_POLICY_NAME_CHARS}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "policy name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_body(body: Option<&str>) -> Result<(), StoreError> {
    match body {
        Some(b) if b.len() > MAX_POLICY_BYTES => Err(invalid(
            "policy",
            format!("{} bytes, at most {MAX_POLICY_BYTES}", b.len()),
        )),
        _ => Ok(()),
    }
}

fn pick(backend: Backend, plain: &'static str, mysql: &'static str) -> &'static str {
    if backend == Backend::Mysql {
        mysql
    } else {
        plain
    }
}

/// A statement and its binds, for [`VerifierRepo::transaction`].
type Statement = (&'static str, Vec<Bind>);

impl VerifierRepo<'_> {
    /// Runs `statements` in one write transaction (retried as a whole on transient errors);
    /// returns the rows each affected.
    pub(super) async fn transaction(
        &self,
        operation: &'static str,
        statements: Vec<Statement>,
    ) -> Result<Vec<u64>, StoreError> {
        let backend = self.backend();
        let prepared: Vec<(String, Vec<Bind>)> = statements
            .into_iter()
            .map(|(q, b)| (sql(backend, q).into_owned(), b))
            .collect();
        retry(operation, is_transient, || {
            let prepared = prepared.clone();
            with_pool!(self.pool, p => Box::pin(async move {
                let mut tx = begin_write(p, backend).await?;
                let mut affected = Vec::with_capacity(prepared.len());
                for (q, values) in prepared {
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
                    affected.push(query.execute(&mut *tx).await?.rows_affected());
                }
                tx.commit().await?;
                Ok(affected)
            }))
        })
        .await
        .map_err(StoreError::db(operation))
    }

    /// Stores a new named policy. `false` (nothing written) if the name is taken.
    pub async fn add_policy(
        &self,
        kind: PolicyKind,
        name: &str,
        body: Option<&str>,
        tpm_policy: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_name(name)?;
        check_body(body)?;
        let stmt = (kind.sql().insert, kind.insert_binds(name, body, tpm_policy));
        match self
            .transaction("add policy", vec![(BUMP_GENERATION, vec![]), stmt])
            .await
        {
            Ok(_) => {
                tracing::info!(policy = name, kind = kind.label(), "policy stored");
                Ok(true)
            }
            Err(StoreError::Database { source, .. }) if is_unique_violation(&source) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces a named policy's text (it takes a new generation). `false` if there is no such
    /// policy.
    pub async fn update_policy(
        &self,
        kind: PolicyKind,
        name: &str,
        body: Option<&str>,
        tpm_policy: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_name(name)?;
        check_body(body)?;
        let binds = match kind {
            PolicyKind::Runtime => vec![
                Bind::Text(body.unwrap_or_default().to_owned()),
                Bind::OptText(tpm_policy.map(str::to_owned)),
                Bind::Text(name.to_owned()),
            ],
            PolicyKind::MeasuredBoot => vec![
                Bind::OptText(body.map(str::to_owned)),
                Bind::Text(name.to_owned()),
            ],
        };
        let n = self
            .transaction(
                "update policy",
                vec![(BUMP_GENERATION, vec![]), (kind.sql().update, binds)],
            )
            .await?;
        let updated = n.get(1).copied().unwrap_or(0) > 0;
        if updated {
            tracing::info!(policy = name, kind = kind.label(), "policy updated");
        }
        Ok(updated)
    }

    /// A named policy, if stored.
    pub async fn policy(
        &self,
        kind: PolicyKind,
        name: &str,
    ) -> Result<Option<StoredPolicy>, StoreError> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        let backend = self.backend();
        let s = kind.sql();
        let q = sql(backend, pick(backend, s.select, s.select_mysql));
        let fetch: AttemptFuture<'_, Option<StoredPolicy>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(name).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get policy"))
    }

    /// The generation of a named policy (cheap: no policy text is read).
    pub async fn policy_generation(
        &self,
        kind: PolicyKind,
        name: &str,
    ) -> Result<Option<i64>, StoreError> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        let q = sql(self.backend(), kind.sql().generation);
        let fetch: AttemptFuture<'_, Option<i64>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(&q).bind(name).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get policy generation"))
    }

    /// Every policy name of `kind`, sorted.
    pub async fn policy_names(&self, kind: PolicyKind) -> Result<Vec<String>, StoreError> {
        let backend = self.backend();
        let s = kind.sql();
        let q = sql(backend, pick(backend, s.names, s.names_mysql));
        let fetch: AttemptFuture<'_, Vec<String>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(&q).fetch_all(p))
        });
        fetch.await.map_err(StoreError::db("list policies"))
    }

    /// Deletes a named policy unless an agent uses it.
    pub async fn delete_policy(
        &self,
        kind: PolicyKind,
        name: &str,
    ) -> Result<PolicyDelete, StoreError> {
        if check_name(name).is_err() {
            return Ok(PolicyDelete::NotFound);
        }
        let s = kind.sql();
        let binds = vec![Bind::Text(name.to_owned()), Bind::Text(name.to_owned())];
        let n = self
            .transaction("delete policy", vec![(s.delete_unused, binds)])
            .await?;
        if n.first().copied().unwrap_or(0) > 0 {
            tracing::info!(policy = name, kind = kind.label(), "policy deleted");
            return Ok(PolicyDelete::Deleted);
        }
        if self.policy_generation(kind, name).await?.is_none() {
            return Ok(PolicyDelete::NotFound);
        }
        let backend = self.backend();
        let q = sql(backend, pick(backend, s.user, s.user_mysql));
        let fetch: AttemptFuture<'_, Option<String>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(&q).bind(name).fetch_optional(p))
        });
        let user = fetch.await.map_err(StoreError::db("find policy user"))?;
        // Deleted by someone else between the two statements: report what is true now.
        Ok(user.map_or(PolicyDelete::NotFound, PolicyDelete::InUse))
    }

    /// Stores a new agent. `false` (nothing written) if the id is already enrolled.
    pub async fn add(&self, agent: &VerifierAgent) -> Result<bool, StoreError> {
        self.add_with_policies(agent, &NewPolicies::default()).await
    }

    /// Stores a new agent and the policies it brings, in one transaction. `false` (nothing
    /// written) if the agent id or a policy name is already taken.
    pub async fn add_with_policies(
        &self,
        agent: &VerifierAgent,
        new: &NewPolicies,
    ) -> Result<bool, StoreError> {
        validate(agent)?;
        let mut statements = Vec::new();
        if new.runtime.is_some() || new.mb.is_some() {
            statements.push((BUMP_GENERATION, vec![]));
        }
        if let Some((name, body)) = &new.runtime {
            check_name(name)?;
            check_body(Some(body))?;
            statements.push((
                RUNTIME.insert,
                PolicyKind::Runtime.insert_binds(name, Some(body), None),
            ));
        }
        if let Some((name, body)) = &new.mb {
            check_name(name)?;
            check_body(body.as_deref())?;
            statements.push((
                MEASURED_BOOT.insert,
                PolicyKind::MeasuredBoot.insert_binds(name, body.as_deref(), None),
            ));
        }
        statements.push((super::INSERT, super::agent_binds(agent)));
        match self.transaction("add agent", statements).await {
            Ok(_) => {
                tracing::info!(
                    agent_id = %agent.agent_id,
                    verifier_id = %agent.verifier_id,
                    runtime_policy = ?agent.runtime_policy_name,
                    mb_policy = ?agent.mb_policy_name,
                    "verifier agent stored"
                );
                Ok(true)
            }
            Err(StoreError::Database { source, .. }) if is_unique_violation(&source) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The statements that remove an agent and the policies named after it that no other
    /// agent uses.
    pub(super) fn delete_agent_statements(agent_id: &str) -> Vec<Statement> {
        let id = || Bind::Text(agent_id.to_owned());
        vec![
            (super::DELETE, vec![id()]),
            (RUNTIME.delete_unused, vec![id(), id()]),
            (MEASURED_BOOT.delete_unused, vec![id(), id()]),
        ]
    }
}
