//! Embedded migrations, one set per backend, and the schema check made at connect.
//!
//! With `auto_migrate` the pending migrations are applied (sqlx takes a database lock on
//! PostgreSQL and MySQL, so several services starting at once do not race). Without it the
//! schema is only inspected, never written, and anything but an exact match with the
//! embedded migrations refuses to start with an error that says what to do.

use std::collections::HashMap;

use sqlx::migrate::{Migrate, MigrateError, Migrator};

use crate::pool::{Pool, with_pool};
use crate::{Backend, StoreError};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
        Backend::Mysql => &MYSQL,
    }
}

/// Whether sqlx's bookkeeping table exists (checked without creating it).
const MIGRATIONS_TABLE_EXISTS_SQLITE: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
const MIGRATIONS_TABLE_EXISTS_POSTGRES: &str =
    "SELECT COUNT(*) FROM (SELECT to_regclass('_sqlx_migrations') AS t) x WHERE t IS NOT NULL";
const MIGRATIONS_TABLE_EXISTS_MYSQL: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'";

pub(crate) async fn prepare(pool: &Pool, auto_migrate: bool) -> Result<(), StoreError> {
    let backend = pool.backend();
    let migrator = migrator(backend);
    if auto_migrate {
        with_pool!(pool, p => migrator.run(p).await).map_err(|e| from_migrate(backend, e))?;
        tracing::debug!(backend = %backend, "migrations applied");
        return Ok(());
    }
    let exists_sql = match backend {
        Backend::Sqlite => MIGRATIONS_TABLE_EXISTS_SQLITE,
        Backend::Postgres => MIGRATIONS_TABLE_EXISTS_POSTGRES,
        Backend::Mysql => MIGRATIONS_TABLE_EXISTS_MYSQL,
    };
    let applied = with_pool!(pool, p => {
        let mut conn = p.acquire().await.map_err(|e| from_migrate(backend, e.into()))?;
        let exists: i64 = sqlx::query_scalar(exists_sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::db("schema check"))?;
        if exists == 0 {
            Vec::new()
        } else {
            if let Some(version) = conn.dirty_version().await.map_err(|e| from_migrate(backend, e))? {
                return Err(StoreError::SchemaDirty { backend, version });
            }
            conn.list_applied_migrations()
                .await
                .map_err(|e| from_migrate(backend, e))?
                .into_iter()
                .map(|m| (m.version, m.checksum))
                .collect()
        }
    });
    check_applied(backend, migrator, applied)
}

fn check_applied(
    backend: Backend,
    migrator: &Migrator,
    applied: Vec<(i64, std::borrow::Cow<'static, [u8]>)>,
) -> Result<(), StoreError> {
    let applied: HashMap<i64, _> = applied.into_iter().collect();
    let expected: Vec<_> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    if let Some(version) = applied
        .keys()
        .copied()
        .filter(|v| !migrator.version_exists(*v))
        .min()
    {
        return Err(StoreError::SchemaAhead { backend, version });
    }
    let mut missing = Vec::new();
    for m in &expected {
        match applied.get(&m.version) {
            Some(checksum) if *checksum != m.checksum => {
                return Err(StoreError::SchemaMismatch {
                    backend,
                    version: m.version,
                });
            }
            Some(_) => {}
            None => missing.push(m.version),
        }
    }
    if !missing.is_empty() {
        return Err(StoreError::SchemaBehind {
            backend,
            applied: expected.len() - missing.len(),
            expected: expected.len(),
            missing,
        });
    }
    Ok(())
}

fn from_migrate(backend: Backend, e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(version) => StoreError::SchemaAhead { backend, version },
        MigrateError::VersionMismatch(version) => StoreError::SchemaMismatch { backend, version },
        MigrateError::Dirty(version) => StoreError::SchemaDirty { backend, version },
        source => StoreError::Migrate { backend, source },
    }
}
