//! Connecting, restarting and migrating, on SQLite, PostgreSQL and MariaDB.

mod common;

use common::{TestDb, agent, as_stored, options};
use keylime_store::{Backend, DatabaseUrl, RegisterOutcome, Store, StoreError};

backend_tests!(
    data_survives_close_and_reconnect,
    migrations_are_idempotent_on_reconnect,
    no_auto_migrate_on_empty_database_refuses_clearly,
    edited_migration_is_refused,
    schema_from_newer_version_is_refused,
);

/// Number of migration files embedded for `backend`.
fn migration_count(backend: Backend) -> i64 {
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::Mysql => "mysql",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let n = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    i64::try_from(n).unwrap()
}

async fn data_survives_close_and_reconnect(db: TestDb) {
    let a = agent("survivor", 1);
    let b = agent("pending", 2);
    {
        let store = db.connect().await;
        store.registrar().register(&a).await.unwrap();
        store.registrar().register(&b).await.unwrap();
        assert!(
            store
                .registrar()
                .activate("survivor", a.activation_key.as_deref().unwrap())
                .await
                .unwrap()
        );
        store.close().await;
        // A closed store refuses work instead of silently reconnecting.
        assert!(store.registrar().get("survivor").await.is_err());
    }
    let store = db.connect_with(&options(false)).await.unwrap();
    let repo = store.registrar();
    let survivor = repo.get("survivor").await.unwrap().unwrap();
    assert!(survivor.active);
    assert_eq!(survivor.activation_key, None);
    assert_eq!(
        survivor,
        keylime_store::RegistrarAgent {
            active: true,
            activation_key: None,
            ..as_stored(&a, 1)
        }
    );
    assert_eq!(repo.get("pending").await.unwrap(), Some(as_stored(&b, 1)));
    // A pending activation is still possible after the restart.
    assert!(
        repo.activate("pending", b.activation_key.as_deref().unwrap())
            .await
            .unwrap()
    );
    assert_eq!(repo.register(&a).await.unwrap(), RegisterOutcome::Held);
    store.close().await;

    if let DatabaseUrl::Sqlite(path) = &db.url {
        assert!(path.is_file());
        let mode = db.raw().await.text("PRAGMA journal_mode").await;
        assert_eq!(mode, "wal");
    }
}

async fn migrations_are_idempotent_on_reconnect(db: TestDb) {
    let expected = migration_count(db.backend);
    assert!(expected >= 1);
    for round in 0..3 {
        let store = db.connect().await;
        store
            .registrar()
            .register(&agent(&format!("agent-{round}"), 1))
            .await
            .unwrap();
        store.close().await;
        let applied = db
            .raw()
            .await
            .scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .await;
        assert_eq!(applied, expected, "round {round}");
    }
    // Up to date: starting without auto_migrate is fine, and data is intact.
    let store = db.connect_with(&options(false)).await.unwrap();
    assert_eq!(
        store.registrar().list_ids().await.unwrap(),
        ["agent-0", "agent-1", "agent-2"]
    );
    store.close().await;
    // Two services starting at once on one database both succeed.
    let opts = options(true);
    let (s1, s2) = tokio::join!(db.connect_with(&opts), db.connect_with(&opts));
    s1.unwrap().close().await;
    s2.unwrap().close().await;
}

async fn no_auto_migrate_on_empty_database_refuses_clearly(db: TestDb) {
    match db.connect_with(&options(false)).await {
        Err(e @ StoreError::SchemaBehind { .. }) => {
            let StoreError::SchemaBehind {
                applied,
                expected,
                ref missing,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(applied, 0);
            assert_eq!(
                i64::try_from(expected).unwrap(),
                migration_count(db.backend)
            );
            assert_eq!(missing.len(), expected);
            let msg = e.to_string();
            assert!(
                msg.contains("behind") && msg.contains("auto_migrate_db"),
                "{msg}"
            );
        }
        other => panic!("expected SchemaBehind, got {other:?}"),
    }
    // Checking wrote nothing.
    assert!(!db.table_exists("_sqlx_migrations").await);
    assert!(!db.table_exists("registrar_agents").await);
    // With auto_migrate the same database starts.
    db.connect().await.close().await;
    assert!(db.table_exists("registrar_agents").await);
}

/// A binary literal in `backend`'s SQL dialect.
fn bytes_literal(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "'\\x00'::bytea",
        Backend::Sqlite | Backend::Mysql => "X'00'",
    }
}

async fn edited_migration_is_refused(db: TestDb) {
    db.connect().await.close().await;
    let tamper = format!(
        "UPDATE _sqlx_migrations SET checksum = {} WHERE version = 1",
        bytes_literal(db.backend)
    );
    db.raw().await.execute(&tamper).await;
    for auto in [true, false] {
        match db.connect_with(&options(auto)).await {
            Err(StoreError::SchemaMismatch { version, .. }) => assert_eq!(version, 1),
            other => panic!("auto_migrate={auto}: expected SchemaMismatch, got {other:?}"),
        }
    }
}

async fn schema_from_newer_version_is_refused(db: TestDb) {
    db.connect().await.close().await;
    let future = format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999999, 'from the future', TRUE, {}, 0)",
        bytes_literal(db.backend)
    );
    db.raw().await.execute(&future).await;
    for auto in [true, false] {
        match db.connect_with(&options(auto)).await {
            Err(
                e @ StoreError::SchemaAhead {
                    version: 999999, ..
                },
            ) => {
                assert!(e.to_string().contains("newer"), "{e}");
            }
            other => panic!("auto_migrate={auto}: expected SchemaAhead, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("missing").join("db.sqlite"));
    match Store::connect(&url, &options(true)).await {
        Err(StoreError::SqliteDirectoryMissing { path }) => {
            assert_eq!(path, dir.path().join("missing"));
        }
        other => panic!("expected SqliteDirectoryMissing, got {other:?}"),
    }
    // The file itself is created.
    let url = DatabaseUrl::Sqlite(dir.path().join("new.sqlite"));
    Store::connect(&url, &options(true))
        .await
        .unwrap()
        .close()
        .await;
    assert!(dir.path().join("new.sqlite").is_file());
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error_without_password() {
    let url = DatabaseUrl::parse(
        "postgresql://keylime:hunter2@127.0.0.1:1/keylime?connect_timeout=2",
        std::path::Path::new("unused"),
    )
    .unwrap();
    match Store::connect(&url, &options(true)).await {
        Err(
            e @ StoreError::Connect {
                backend: Backend::Postgres,
                ..
            },
        ) => {
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(
                e.is_unavailable(),
                "a refused connection is unavailability: {e}"
            );
        }
        other => panic!("expected Connect error, got {other:?}"),
    }
}

/// PostgreSQL stopped under an open store: operations fail as unavailable (what services
/// answer with 503), not with some other error, and work again once it is back.
#[tokio::test]
async fn stopped_server_is_unavailable_then_recovers() {
    let pg = keylime_testkit::postgres::PrivatePostgres::start();
    pg.create_database("store");
    let url = DatabaseUrl::parse(&pg.url("store"), std::path::Path::new("unused")).unwrap();
    let store = Store::connect(&url, &options(true)).await.unwrap();
    assert!(store.registrar().list_ids().await.unwrap().is_empty());

    pg.stop("fast");
    let err = store.registrar().list_ids().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Refusing a value is the caller's fault, whatever the server's state.
    let err = store.verifier().pending_webhooks("").await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");

    pg.start_again();
    assert!(store.registrar().list_ids().await.unwrap().is_empty());
    store.close().await;
}

/// The SQLite files hold revocation private keys and V: owner-only, whatever the umask,
/// including the WAL and shared-memory files SQLite creates beside the database, and an
/// existing file left readable by others is tightened.
#[tokio::test]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    let url = DatabaseUrl::Sqlite(dir.path().join("cv_data.sqlite"));
    let store = Store::connect(&url, &options(true)).await.unwrap();
    store
        .registrar()
        .register(&agent("written", 1))
        .await
        .unwrap();
    for name in ["cv_data.sqlite", "cv_data.sqlite-wal", "cv_data.sqlite-shm"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    store.close().await;

    let loose = dir.path().join("old.sqlite");
    std::fs::write(&loose, b"").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    Store::connect(&DatabaseUrl::Sqlite(loose), &options(true))
        .await
        .unwrap()
        .close()
        .await;
    assert_eq!(mode("old.sqlite"), 0o600);
}
