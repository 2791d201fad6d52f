//! Test harness shared by the backend-parametrised integration tests: provisions an
//! isolated database per test (a tempdir file for SQLite, a fresh `CREATE DATABASE` on the
//! PostgreSQL and MariaDB servers, dropped afterwards even if the test panics), and the
//! `backend_tests!` macro that runs one `async fn(TestDb)` on every backend.
//!
//! PostgreSQL and MySQL tests FAIL when their server is unreachable; they never skip.
//! Override the servers with `KEYLIME_TEST_POSTGRES_URL` / `KEYLIME_TEST_MYSQL_URL`.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keylime_store::{Backend, DatabaseUrl, RegistrarAgent, Store, StoreError, StoreOptions};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection, SqliteConnection};
use tempfile::TempDir;

const POSTGRES_ADMIN: &str = "postgresql://postgres@127.0.0.1:5432/test";
const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

/// Runs each listed `async fn(TestDb)` once per backend, as `sqlite::name`,
/// `postgres::name` and `mysql::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $crate::backend_tests!(@backend sqlite, Sqlite, $($name),+);
        $crate::backend_tests!(@backend postgres, Postgres, $($name),+);
        $crate::backend_tests!(@backend mysql, Mysql, $($name),+);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run(keylime_store::Backend::$backend, super::$name).await;
                }
            )+
        }
    };
}

/// One isolated database.
#[derive(Clone)]
pub struct TestDb {
    pub url: DatabaseUrl,
    pub backend: Backend,
    _dir: Option<Arc<TempDir>>,
}

pub fn options(auto_migrate: bool) -> StoreOptions {
    StoreOptions {
        auto_migrate,
        max_connections: 8,
    }
}

impl TestDb {
    /// Connects with `auto_migrate`; panics with the error otherwise.
    pub async fn connect(&self) -> Store {
        self.connect_with(&options(true))
            .await
            .unwrap_or_else(|e| panic!("connect to {} failed: {e}", self.url))
    }

    pub async fn connect_with(&self, opts: &StoreOptions) -> Result<Store, StoreError> {
        Store::connect(&self.url, opts).await
    }

    /// A plain sqlx connection to the same database, for what the store's API does not
    /// offer on purpose (holding locks, installing failing triggers, inspecting the schema).
    pub async fn raw(&self) -> RawConn {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10));
                RawConn::Sqlite(
                    SqliteConnection::connect_with(&opts)
                        .await
                        .expect("raw sqlite"),
                )
            }
            DatabaseUrl::Postgres(u) => {
                RawConn::Postgres(PgConnection::connect(u).await.expect("raw postgres"))
            }
            DatabaseUrl::Mysql(u) => {
                RawConn::Mysql(MySqlConnection::connect(u).await.expect("raw mysql"))
            }
        }
    }

    /// Number of rows of `table` (0 if the table does not exist).
    pub async fn table_exists(&self, table: &str) -> bool {
        let q = match self.backend {
            Backend::Sqlite => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            ),
            Backend::Postgres => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            ),
            Backend::Mysql => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        self.raw().await.scalar(&q).await > 0
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'a>>;

pub enum RawConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

impl RawConn {
    /// Runs one or more statements (simple-query protocol).
    pub async fn execute(&mut self, sql: &str) {
        // `Executor::execute` returns a boxed `Send` future, which keeps callers spawnable.
        let result = match self {
            RawConn::Sqlite(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            RawConn::Postgres(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            RawConn::Mysql(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
        };
        result.unwrap_or_else(|e| panic!("raw SQL `{sql}` failed: {e}"));
    }

    /// The first column of the first row, as an integer.
    pub async fn scalar(&mut self, sql: &str) -> i64 {
        let fut: BoxFut<'_, i64> = match self {
            RawConn::Sqlite(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
            RawConn::Postgres(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
            RawConn::Mysql(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
        };
        fut.await
            .unwrap_or_else(|e| panic!("raw SQL `{sql}` failed: {e}"))
    }

    /// The first column of the first row, as text.
    pub async fn text(&mut self, sql: &str) -> String {
        let fut: BoxFut<'_, String> = match self {
            RawConn::Sqlite(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
            RawConn::Postgres(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
            RawConn::Mysql(c) => Box::pin(sqlx::query_scalar(sql).fetch_one(c)),
        };
        fut.await
            .unwrap_or_else(|e| panic!("raw SQL `{sql}` failed: {e}"))
    }
}

/// Provisions an isolated database for `backend`, runs `test` on it, drops the database,
/// then re-raises the test's panic, if any.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (db, server) = provision(backend).await;
    let outcome = tokio::spawn(test(db)).await;
    if let Some((admin, name)) = server {
        drop_database(backend, &admin, &name).await;
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

fn admin_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Postgres => ("KEYLIME_TEST_POSTGRES_URL", POSTGRES_ADMIN),
        Backend::Mysql => ("KEYLIME_TEST_MYSQL_URL", MYSQL_ADMIN),
        Backend::Sqlite => unreachable!("SQLite needs no server"),
    };
    let raw = std::env::var(var).unwrap_or_else(|_| default.to_string());
    match DatabaseUrl::parse(&raw, Path::new("unused")).expect("admin URL") {
        DatabaseUrl::Postgres(u) | DatabaseUrl::Mysql(u) => u,
        DatabaseUrl::Sqlite(_) => panic!("{var} must name a server"),
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn provision(backend: Backend) -> (TestDb, Option<(String, String)>) {
    if backend == Backend::Sqlite {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = DatabaseUrl::Sqlite(dir.path().join("keylime.sqlite"));
        let db = TestDb {
            url,
            backend,
            _dir: Some(Arc::new(dir)),
        };
        return (db, None);
    }
    let admin = admin_url(backend);
    let name = format!("keylime_store_{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE DATABASE {name}");
    match backend {
        Backend::Postgres => {
            let mut c = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!("PostgreSQL required by this test is unreachable at {admin}: {e}")
            });
            sqlx::raw_sql(&create)
                .execute(&mut c)
                .await
                .expect("CREATE DATABASE");
            c.close().await.ok();
        }
        Backend::Mysql => {
            let mut c = MySqlConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!("MySQL/MariaDB required by this test is unreachable at {admin}: {e}")
            });
            sqlx::raw_sql(&create)
                .execute(&mut c)
                .await
                .expect("CREATE DATABASE");
            c.close().await.ok();
        }
        Backend::Sqlite => unreachable!(),
    }
    let url = with_database(&admin, &name);
    let url = match backend {
        Backend::Postgres => DatabaseUrl::Postgres(url),
        _ => DatabaseUrl::Mysql(url),
    };
    let db = TestDb {
        url,
        backend,
        _dir: None,
    };
    (db, Some((admin, name)))
}

async fn drop_database(backend: Backend, admin: &str, name: &str) {
    let result = match backend {
        Backend::Postgres => match PgConnection::connect(admin).await {
            Ok(mut c) => sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await
                .map(drop),
            Err(e) => Err(e),
        },
        Backend::Mysql => match MySqlConnection::connect(admin).await {
            Ok(mut c) => sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut c)
                .await
                .map(drop),
            Err(e) => Err(e),
        },
        Backend::Sqlite => Ok(()),
    };
    if let Err(e) = result {
        panic!("could not drop test database {name}: {e}");
    }
}

/// Polls `sql` (an integer query) on its own connection every 20 ms until it returns
/// `expected`; panics with `what` after `timeout`, or as soon as `task` has finished (the
/// awaited state can then never come).
pub async fn wait_for_scalar<T>(
    db: &TestDb,
    sql: &str,
    expected: i64,
    what: &str,
    task: &tokio::task::JoinHandle<T>,
) {
    let timeout = Duration::from_secs(20);
    let mut observer = db.raw().await;
    let start = Instant::now();
    loop {
        assert!(
            !task.is_finished(),
            "task finished while waiting for {what}"
        );
        let got = observer.scalar(sql).await;
        if got == expected {
            return;
        }
        if start.elapsed() >= timeout {
            let activity =
                match db.backend {
                    Backend::Mysql => observer
                        .text(
                            "SELECT CAST(COALESCE(GROUP_CONCAT(CONCAT_WS(' | ', id, db, command, \
                             state, info) SEPARATOR '\n'), '') AS CHAR) \
                             FROM information_schema.processlist WHERE db = DATABASE()",
                        )
                        .await,
                    Backend::Postgres => {
                        observer
                            .text(
                                "SELECT COALESCE(string_agg(concat_ws(' | ', pid, state, \
                             wait_event_type, wait_event, query), E'\n'), '') \
                             FROM pg_stat_activity WHERE datname = current_database()",
                            )
                            .await
                    }
                    Backend::Sqlite => String::new(),
                };
            panic!(
                "timed out waiting for {what} (last value {got}, want {expected}); \
                 server activity:\n{activity}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Real certificates (DER) read in place from the shared test data. The STMicro RSA EK
/// certificate carries trailing 0xff padding, which checks the blob columns are binary-safe.
fn testdata_der(rel: &str) -> Vec<u8> {
    let path = keylime_testkit::testdata(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data {} missing: {e}", path.display()))
}

fn ekcert_der(identity: u8) -> Vec<u8> {
    if identity.is_multiple_of(2) {
        testdata_der("certs/ek/stmicro/st33_rsa_ek_cert_with_trailing_ff.der")
    } else {
        testdata_der("certs/ek/stmicro/st33_ecc_ek_cert.der")
    }
}

/// A registration for `agent_id` whose TPM identity is derived from `identity`, with
/// realistic field sizes and every optional field set.
pub fn agent(agent_id: &str, identity: u8) -> RegistrarAgent {
    RegistrarAgent {
        agent_id: agent_id.to_string(),
        ek_tpm: Some(vec![identity; 314]),
        ekcert: Some(ekcert_der(identity)),
        aik_tpm: [0x01, 0x18, identity].repeat(93),
        iak_tpm: Some(vec![identity ^ 0x55; 120]),
        iak_cert: Some(testdata_der("certs/idevid/keylime_test_iak.der")),
        idevid_tpm: Some(vec![identity ^ 0xaa; 120]),
        idevid_cert: Some(testdata_der("certs/idevid/keylime_test_idevid.der")),
        mtls_cert: Some(format!(
            "-----BEGIN CERTIFICATE-----\nMIIB{identity:02x}\n-----END CERTIFICATE-----\n"
        )),
        ip: Some("2001:db8::5".to_string()),
        port: Some(9002),
        activation_key: Some(format!("a2V5LX{identity:02x}Zm9yLWFjdGl2YXRpb24=")),
        active: false,
        regcount: 0,
    }
}

/// The stored form of `agent` after its `regcount`-th registration.
pub fn as_stored(agent: &RegistrarAgent, regcount: i32) -> RegistrarAgent {
    RegistrarAgent {
        active: false,
        regcount,
        ..agent.clone()
    }
}
