#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod migrate;
mod pool;
pub mod registrar;
mod sqlite_file;
mod url;
pub mod verifier;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

pub use error::StoreError;
pub use registrar::{RegisterOutcome, RegistrarAgent, RegistrarRepo};
pub use url::DatabaseUrl;
pub use verifier::{
    AttestationProgress, MAX_POLICY_BYTES, MAX_POLICY_NAME_CHARS, NewPolicies, PolicyDelete,
    PolicyKind, SessionToken, StoredPolicy, VerifierAgent, VerifierRepo,
};

use pool::{Pool, with_pool};

/// How long a SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a PostgreSQL or MySQL connection. While the server is
/// down sqlx keeps trying to connect until then, so this is also how long a request takes
/// to learn that the database is unavailable ([`StoreError::is_unavailable`]); its
/// queries take milliseconds, so a healthy pool frees a connection well within it.
const NETWORK_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MySQL",
        })
    }
}

/// Connection settings that are not part of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Apply pending migrations at connect (upstream `auto_migrate_db`). When false, connecting
    /// to a schema that lacks migrations fails with [`StoreError::SchemaBehind`].
    pub auto_migrate: bool,
    /// Upper bound of the connection pool (at least 1 is used).
    pub max_connections: u32,
}

impl Default for StoreOptions {
    /// Upstream defaults: `auto_migrate_db = True`; a pool of 10.
    fn default() -> Self {
        StoreOptions {
            auto_migrate: true,
            max_connections: 10,
        }
    }
}

/// A connection pool plus the schema it was checked against. Cheap to clone (shared pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the pool, then applies migrations (`auto_migrate`) or verifies that none is
    /// pending. A SQLite file is created if missing (mode 0600; an existing file readable by
    /// others is narrowed to 0600) and opened in WAL mode with `foreign_keys=on` and a busy
    /// timeout; its directory must exist.
    pub async fn connect(url: &DatabaseUrl, opts: &StoreOptions) -> Result<Store, StoreError> {
        let backend = url.backend();
        let max = opts.max_connections.max(1);
        let connect_err = |source| StoreError::Connect { backend, source };
        let pool = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.is_dir()
                {
                    return Err(StoreError::SqliteDirectoryMissing {
                        path: dir.to_path_buf(),
                    });
                }
                sqlite_file::ensure_owner_only(path).map_err(|source| StoreError::SqliteFile {
                    path: path.clone(),
                    source,
                })?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Pool::Sqlite(pool)
            }
            DatabaseUrl::Postgres(u) => {
                let options = PgConnectOptions::from_str(u).map_err(connect_err)?;
                probe::<sqlx::PgConnection>(&options)
                    .await
                    .map_err(connect_err)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(NETWORK_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Pool::Postgres(pool)
            }
            DatabaseUrl::Mysql(u) => {
                let options = MySqlConnectOptions::from_str(u).map_err(connect_err)?;
                probe::<sqlx::MySqlConnection>(&options)
                    .await
                    .map_err(connect_err)?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(NETWORK_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Pool::Mysql(pool)
            }
        };
        if let Err(e) = migrate::prepare(&pool, opts.auto_migrate).await {
            pool.close().await;
            return Err(e);
        }
        tracing::info!(
            backend = %backend,
            database = %url,
            auto_migrate = opts.auto_migrate,
            "database ready"
        );
        Ok(Store { pool })
    }

    /// Connections of the pool in use right now, each by one running operation.
    pub fn connections_in_use(&self) -> u32 {
        with_pool!(&self.pool, p => p
            .size()
            .saturating_sub(u32::try_from(p.num_idle()).unwrap_or(u32::MAX)))
    }

    /// Which engine this store talks to.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Registrar agent records.
    pub fn registrar(&self) -> RegistrarRepo<'_> {
        RegistrarRepo::new(&self.pool)
    }

    /// Verifier agent records.
    pub fn verifier(&self) -> VerifierRepo<'_> {
        VerifierRepo::new(&self.pool)
    }

    /// Waits for in-flight queries, then closes every connection. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Opens and closes one connection, so an unreachable server or bad credentials fail at
/// once with the driver's own error instead of after the pool's acquire timeout.
async fn probe<C: sqlx::Connection>(options: &C::Options) -> Result<(), sqlx::Error> {
    C::connect_with(options).await?.close().await
}

/// Every public future must be `Send` for any caller lifetime: services run them in
/// `tokio::spawn`ed tasks and axum handlers. This only has to compile.
#[cfg(test)]
#[allow(dead_code, clippy::let_underscore_future)]
fn public_futures_are_spawnable(url: DatabaseUrl, opts: StoreOptions, agent: RegistrarAgent) {
    let _ = tokio::spawn(async move {
        let store = Store::connect(&url, &opts).await?;
        store.registrar().register(&agent).await?;
        store.registrar().get(&agent.agent_id).await?;
        store.registrar().list_ids().await?;
        store.registrar().activate(&agent.agent_id, "k").await?;
        store.registrar().delete(&agent.agent_id).await?;
        store.close().await;
        Ok::<_, StoreError>(())
    });
}
