//! The store's error type. Every variant names the input or the operation that failed;
//! none of them carries a secret (database URLs are never rendered with their password,
//! activation keys never appear).

use std::path::PathBuf;

use crate::Backend;

/// Everything that can go wrong in `keylime-store`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `database_url` uses a scheme we do not speak.
    #[error(
        "unsupported database_url scheme '{scheme}': expected 'sqlite', 'sqlite:///…', \
         'postgresql://…' or 'mysql://…'"
    )]
    UnsupportedScheme { scheme: String },

    /// `database_url` has a known scheme but a malformed remainder.
    #[error("invalid database_url ({backend}): {reason}")]
    InvalidDatabaseUrl { backend: Backend, reason: String },

    /// The directory that should hold the SQLite file does not exist.
    #[error("SQLite database directory '{}' does not exist", path.display())]
    SqliteDirectoryMissing { path: PathBuf },

    /// The SQLite file could not be created or restricted to its owner.
    #[error("cannot create or restrict SQLite database file '{}': {source}", path.display())]
    SqliteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Opening the pool (or its first connection) failed.
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },

    /// Applying or inspecting migrations failed.
    #[error("database migration failed on {backend}: {source}")]
    Migrate {
        backend: Backend,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// `auto_migrate` is off and the schema lacks migrations this binary needs.
    #[error(
        "database schema on {backend} is behind: {applied} of {expected} migrations applied \
         (missing versions {missing:?}); set auto_migrate_db = True or apply the migrations first"
    )]
    SchemaBehind {
        backend: Backend,
        applied: usize,
        expected: usize,
        missing: Vec<i64>,
    },

    /// The database has a migration this binary does not know (written by a newer version).
    #[error(
        "database schema on {backend} has migration {version} unknown to this binary \
         (was it written by a newer version?)"
    )]
    SchemaAhead { backend: Backend, version: i64 },

    /// An applied migration differs from the one embedded here (migrations were edited).
    #[error(
        "database migration {version} on {backend} differs from the embedded one (checksum mismatch)"
    )]
    SchemaMismatch { backend: Backend, version: i64 },

    /// A migration was started but did not finish.
    #[error(
        "database migration {version} on {backend} is partially applied (dirty); repair it manually"
    )]
    SchemaDirty { backend: Backend, version: i64 },

    /// A field failed validation before anything was written.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },

    /// Re-registration tried to change the TPM identity (EK, EK certificate or AK) of an
    /// agent, or lost a uniqueness race against a concurrent registration.
    #[error(
        "agent '{agent_id}': re-registration with a different TPM identity is forbidden \
         (ek_tpm, ekcert or aik_tpm differs from the stored value)"
    )]
    IdentityConflict { agent_id: String },

    /// A query failed.
    #[error("database error during {operation}: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Whether the database could not be reached: the server is down, restarting or
    /// refusing connections, a connection broke mid-query, or no connection came free within
    /// the pool's acquire timeout. Such a failure passes without any change to the request,
    /// so services answer it with 503 and `Retry-After` rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } | StoreError::Database { source, .. } => {
                crate::pool::is_unreachable(source)
            }
            _ => false,
        }
    }

    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { operation, source }
    }
}
