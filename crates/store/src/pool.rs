//! The typed pool behind a `Store` and the few differences between backends that queries
//! must care about: placeholder syntax, how a write transaction starts, and which errors
//! are worth retrying.
//!
//! Queries are written once with `?` placeholders (SQLite and MySQL syntax) and rewritten to
//! `$1, $2, …` for PostgreSQL; [`with_pool!`] runs the same body against whichever typed
//! pool is present, so each query is type-checked for all three drivers.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Database, MySqlPool, PgPool, SqlitePool, Transaction};

use crate::Backend;

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// Runs `$body` with `$p` bound to the concrete `sqlx::Pool<DB>`.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite($p) => $body,
            $crate::pool::Pool::Postgres($p) => $body,
            $crate::pool::Pool::Mysql($p) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Mysql(_) => Backend::Mysql,
        }
    }

    pub(crate) async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

/// `sql` with its `?` placeholders in the syntax of `backend`. Our SQL never contains a
/// literal `?` inside a string, so a plain rewrite is exact.
pub(crate) fn sql(backend: Backend, sql: &'static str) -> Cow<'static, str> {
    if backend != Backend::Postgres {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Starts a transaction that will write. SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`) so two writers queue on the busy timeout instead of one failing
/// when it upgrades a read snapshot that has gone stale.
pub(crate) async fn begin_write<DB: Database>(
    pool: &sqlx::Pool<DB>,
    backend: Backend,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres | Backend::Mysql => pool.begin().await,
    }
}

/// A deadlock, serialization failure or lock timeout: the transaction was rolled back as a
/// whole and running it again may succeed.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
        // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
        return matches!(my.number(), 1213 | 1205);
    }
    match db.code().as_deref() {
        // PostgreSQL serialization_failure, deadlock_detected
        Some("40001" | "40P01") => true,
        // SQLite BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT
        Some("5" | "6" | "261" | "517" | "773") => true,
        _ => false,
    }
}

/// The server could not be reached or the connection was lost: refused or reset
/// connections, no pooled connection within the acquire timeout (sqlx keeps trying to
/// connect until then), a closed pool, or the server saying it is shutting down, starting up
/// or out of connections.
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
                // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN
                return matches!(my.number(), 1040 | 1053);
            }
            match db.code().as_deref() {
                // PostgreSQL class 08 (connection exception), too_many_connections,
                // admin_shutdown, crash_shutdown, cannot_connect_now.
                Some(code) if code.starts_with("08") && code.len() == 5 => true,
                Some("53300" | "57P01" | "57P02" | "57P03") => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// A uniqueness violation: another transaction inserted the same key first.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// How many times a write transaction is attempted before a transient error is reported.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// One attempt of a database operation. Boxed so the futures of the public API stay
/// `Send` for any caller lifetime (rustc cannot prove that through sqlx's higher-ranked
/// executor bounds otherwise, which breaks `tokio::spawn` and axum handlers).
pub(crate) type AttemptFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'a>>;

/// Runs `attempt` until it succeeds, fails permanently, or `MAX_ATTEMPTS` is reached.
/// `retryable` decides which errors start another attempt.
pub(crate) async fn retry<'a, T>(
    operation: &'static str,
    retryable: fn(&sqlx::Error) -> bool,
    mut attempt: impl FnMut() -> AttemptFuture<'a, T> + Send,
) -> Result<T, sqlx::Error> {
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < MAX_ATTEMPTS && retryable(&e) => {
                tracing::debug!(operation, attempt = n, error = %e, "retrying transaction");
                tokio::time::sleep(backoff(n)).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// Exponential backoff from 2 ms with a little jitter, so deadlocked peers do not retry in
/// lock step.
fn backoff(attempt: u32) -> Duration {
    let jitter = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 4_000_000));
    Duration::from_millis(2u64 << attempt.min(8)) + Duration::from_nanos(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unreachable_other_failures_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unreachable(&sqlx::Error::Io(refused)));
        assert!(is_unreachable(&sqlx::Error::PoolTimedOut));
        assert!(is_unreachable(&sqlx::Error::PoolClosed));
        assert!(!is_unreachable(&sqlx::Error::RowNotFound));
        assert!(!is_unreachable(&sqlx::Error::Protocol(
            "bad message".into()
        )));
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let q = "UPDATE t SET a = ?, b = ? WHERE c = ?";
        assert_eq!(sql(Backend::Sqlite, q), q);
        assert_eq!(sql(Backend::Mysql, q), q);
        assert_eq!(
            sql(Backend::Postgres, q),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
    }
}
