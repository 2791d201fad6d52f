//! Registrar repository behaviour through the public API, on SQLite, PostgreSQL and MariaDB.

mod common;

use std::time::Duration;

use common::{TestDb, agent, as_stored, wait_for_scalar};
use keylime_store::{Backend, RegisterOutcome, RegistrarAgent, StoreError};

backend_tests!(
    register_then_get_round_trips_every_field,
    reregistration_of_an_active_agent_is_held_until_activated,
    reregistration_of_an_inactive_agent_replaces_it,
    identity_change_is_refused_and_leaves_row_unchanged,
    activation_is_compare_and_set,
    list_is_sorted_and_delete_reports_presence,
    invalid_input_is_refused_before_writing,
    concurrent_registrations_of_one_id_leave_one_consistent_row,
    failing_statement_rolls_back_whole_transaction,
    dropped_register_future_leaves_row_unchanged,
);

async fn register_then_get_round_trips_every_field(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let full = agent("d432fbb3-d2f1-4a97-9ef7-75bd81c00000", 1);
    assert_eq!(
        repo.register(&full).await.unwrap(),
        RegisterOutcome::Created
    );
    assert_eq!(
        repo.get(&full.agent_id).await.unwrap(),
        Some(as_stored(&full, 1))
    );

    // Minimal record: every optional field absent stays absent (not empty).
    let minimal = RegistrarAgent {
        agent_id: "minimal".into(),
        ek_tpm: None,
        ekcert: None,
        iak_tpm: None,
        iak_cert: None,
        idevid_tpm: None,
        idevid_cert: None,
        mtls_cert: None,
        ip: None,
        port: None,
        // ignored on input: a registration is always inactive with regcount 1
        active: true,
        regcount: 77,
        ..agent("minimal", 2)
    };
    assert_eq!(
        repo.register(&minimal).await.unwrap(),
        RegisterOutcome::Created
    );
    assert_eq!(
        repo.get("minimal").await.unwrap(),
        Some(as_stored(&minimal, 1))
    );
    assert_eq!(repo.get("absent").await.unwrap(), None);
    store.close().await;
}

async fn reregistration_of_an_active_agent_is_held_until_activated(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let mut first = agent("agent-1", 1);
    first.ekcert = None; // a previously-null EK cert may be supplied later
    repo.register(&first).await.unwrap();
    let old_key = first.activation_key.clone().unwrap();
    assert!(repo.activate("agent-1", &old_key).await.unwrap());
    let active = repo.get("agent-1").await.unwrap().unwrap();

    let mut second = agent("agent-1", 1);
    second.ip = Some("10.1.2.3".into());
    second.port = Some(9443);
    second.mtls_cert = Some("disabled".into());
    second.iak_tpm = Some(vec![0x42; 64]); // IAK/IDevID may change freely
    second.idevid_cert = None;
    second.activation_key = Some("bmV3LWtleQ==".into());
    assert_eq!(repo.register(&second).await.unwrap(), RegisterOutcome::Held);
    // The active record is untouched; the challenge is held beside it.
    assert_eq!(repo.get("agent-1").await.unwrap().as_ref(), Some(&active));
    assert_eq!(
        repo.held_key("agent-1").await.unwrap().as_deref(),
        Some("bmV3LWtleQ==")
    );

    // A wrong key is discarded without touching the active record.
    assert!(!repo.discard_held("agent-1", "d3Jvbmc=").await.unwrap());
    assert!(!repo.activate("agent-1", &old_key).await.unwrap());
    assert!(!repo.activate("agent-1", "d3Jvbmc=").await.unwrap());
    assert_eq!(repo.get("agent-1").await.unwrap().as_ref(), Some(&active));

    // The held key activates once and applies the registration.
    assert!(repo.activate("agent-1", "bmV3LWtleQ==").await.unwrap());
    assert!(!repo.activate("agent-1", "bmV3LWtleQ==").await.unwrap());
    let stored = repo.get("agent-1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        RegistrarAgent {
            active: true,
            activation_key: None,
            ..as_stored(&second, 2)
        }
    );
    assert_eq!(repo.held_key("agent-1").await.unwrap(), None);

    // A failed activation drops the held registration only.
    second.activation_key = Some("dGhpcmQ=".into());
    assert_eq!(repo.register(&second).await.unwrap(), RegisterOutcome::Held);
    assert!(repo.discard_held("agent-1", "dGhpcmQ=").await.unwrap());
    assert_eq!(repo.held_key("agent-1").await.unwrap(), None);
    assert!(!repo.activate("agent-1", "dGhpcmQ=").await.unwrap());
    assert_eq!(repo.get("agent-1").await.unwrap(), Some(stored));

    // Deleting the agent deletes what is held for it.
    assert_eq!(repo.register(&second).await.unwrap(), RegisterOutcome::Held);
    assert!(repo.delete("agent-1").await.unwrap());
    assert_eq!(repo.held_key("agent-1").await.unwrap(), None);
    assert_eq!(
        repo.register(&second).await.unwrap(),
        RegisterOutcome::Created
    );
    store.close().await;
}

async fn reregistration_of_an_inactive_agent_replaces_it(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let first = agent("agent-9", 1);
    repo.register(&first).await.unwrap();
    let mut second = agent("agent-9", 1);
    second.ip = Some("10.9.9.9".into());
    second.activation_key = Some("bmV3LWtleQ==".into());
    assert_eq!(
        repo.register(&second).await.unwrap(),
        RegisterOutcome::Replaced
    );
    assert_eq!(
        repo.get("agent-9").await.unwrap(),
        Some(as_stored(&second, 2))
    );
    assert!(
        !repo
            .activate("agent-9", first.activation_key.as_deref().unwrap())
            .await
            .unwrap()
    );
    assert!(repo.activate("agent-9", "bmV3LWtleQ==").await.unwrap());
    store.close().await;
}

async fn identity_change_is_refused_and_leaves_row_unchanged(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let original = agent("agent-2", 2);
    repo.register(&original).await.unwrap();
    let before = repo.get("agent-2").await.unwrap().unwrap();

    let other = agent("agent-2", 3);
    let changes: Vec<(&str, RegistrarAgent)> = vec![
        (
            "ek_tpm",
            RegistrarAgent {
                ek_tpm: other.ek_tpm.clone(),
                ..original.clone()
            },
        ),
        (
            "ekcert",
            RegistrarAgent {
                ekcert: other.ekcert.clone(),
                ..original.clone()
            },
        ),
        (
            "ekcert removed",
            RegistrarAgent {
                ekcert: None,
                ..original.clone()
            },
        ),
        (
            "ek_tpm removed",
            RegistrarAgent {
                ek_tpm: None,
                ..original.clone()
            },
        ),
        (
            "aik_tpm",
            RegistrarAgent {
                aik_tpm: other.aik_tpm.clone(),
                ..original.clone()
            },
        ),
        ("whole identity", other.clone()),
    ];
    for (what, attempt) in changes {
        let attempt = RegistrarAgent {
            ip: Some("192.0.2.99".into()),
            activation_key: Some("aW50cnVkZXI=".into()),
            ..attempt
        };
        match repo.register(&attempt).await {
            Err(StoreError::IdentityConflict { agent_id }) => assert_eq!(agent_id, "agent-2"),
            other => panic!("{what}: expected IdentityConflict, got {other:?}"),
        }
        assert_eq!(
            repo.get("agent-2").await.unwrap().as_ref(),
            Some(&before),
            "{what}"
        );
    }
    // The intruder's key does not activate; the genuine one still does.
    assert!(!repo.activate("agent-2", "aW50cnVkZXI=").await.unwrap());
    assert!(
        repo.activate("agent-2", original.activation_key.as_deref().unwrap())
            .await
            .unwrap()
    );
    store.close().await;
}

async fn activation_is_compare_and_set(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let a = agent("agent-3", 3);
    let key = a.activation_key.clone().unwrap();
    repo.register(&a).await.unwrap();

    assert!(!repo.activate("unknown", &key).await.unwrap());
    assert!(!repo.activate("agent-3", "d3Jvbmc=").await.unwrap());
    // Keys compare exactly: case and trailing spaces matter on every backend.
    assert!(
        !repo
            .activate("agent-3", &key.to_ascii_lowercase())
            .await
            .unwrap()
    );
    assert!(!repo.activate("agent-3", &format!("{key} ")).await.unwrap());
    assert!(!repo.activate("AGENT-3", &key).await.unwrap());
    assert_eq!(repo.get("agent-3").await.unwrap(), Some(as_stored(&a, 1)));

    assert!(repo.activate("agent-3", &key).await.unwrap());
    let stored = repo.get("agent-3").await.unwrap().unwrap();
    assert!(stored.active);
    assert_eq!(stored.activation_key, None);
    assert_eq!(stored.regcount, 1);
    // Replay of the same activation fails.
    assert!(!repo.activate("agent-3", &key).await.unwrap());

    // Many concurrent activations with the right key: exactly one wins.
    let b = agent("agent-4", 4);
    repo.register(&b).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let key = b.activation_key.clone().unwrap();
        tasks.push(tokio::spawn(async move {
            store.registrar().activate("agent-4", &key).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    store.close().await;
}

async fn list_is_sorted_and_delete_reports_presence(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    assert!(repo.list_ids().await.unwrap().is_empty());
    for id in ["b", "a", "C", "a-1", "Agent", "agent"] {
        repo.register(&agent(id, 5)).await.unwrap();
    }
    // Ids differing only in case are distinct records on every backend.
    assert_eq!(
        repo.list_ids().await.unwrap(),
        ["Agent", "C", "a", "a-1", "agent", "b"]
    );
    assert_eq!(repo.get("Agent").await.unwrap().unwrap().agent_id, "Agent");

    assert!(repo.delete("a").await.unwrap());
    assert!(!repo.delete("a").await.unwrap());
    assert!(!repo.delete("never-registered").await.unwrap());
    assert!(
        !repo.delete("b ").await.unwrap(),
        "trailing space is another id"
    );
    assert_eq!(repo.get("a").await.unwrap(), None);
    assert_eq!(
        repo.list_ids().await.unwrap(),
        ["Agent", "C", "a-1", "agent", "b"]
    );
    // A deleted id can register afresh.
    assert_eq!(
        repo.register(&agent("a", 6)).await.unwrap(),
        RegisterOutcome::Created
    );
    assert_eq!(repo.get("a").await.unwrap().unwrap().regcount, 1);
    store.close().await;
}

async fn invalid_input_is_refused_before_writing(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let long_id = "x".repeat(81);
    let cases = [
        ("agent_id", agent(&long_id, 1)),
        ("agent_id", agent("with space", 1)),
        (
            "ekcert",
            RegistrarAgent {
                ekcert: Some(vec![0; 64 * 1024 + 1]),
                ..agent("big", 1)
            },
        ),
        (
            "port",
            RegistrarAgent {
                port: Some(70000),
                ..agent("port", 1)
            },
        ),
        (
            "aik_tpm",
            RegistrarAgent {
                aik_tpm: Vec::new(),
                ..agent("noaik", 1)
            },
        ),
        (
            "activation_key",
            RegistrarAgent {
                activation_key: None,
                ..agent("nokey", 1)
            },
        ),
    ];
    for (field, a) in cases {
        match repo.register(&a).await {
            Err(StoreError::InvalidField { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{field}: expected InvalidField, got {other:?}"),
        }
    }
    assert!(repo.list_ids().await.unwrap().is_empty());
    // The longest legal id is stored intact (80 multi-byte characters).
    let longest = "é".repeat(80);
    repo.register(&agent(&longest, 1)).await.unwrap();
    assert_eq!(
        repo.list_ids().await.unwrap(),
        std::slice::from_ref(&longest)
    );
    // Reads of ids that cannot exist do not error.
    assert_eq!(repo.get(&long_id).await.unwrap(), None);
    assert!(!repo.delete(&long_id).await.unwrap());
    assert!(!repo.activate(&long_id, "a2V5").await.unwrap());
    assert!(!repo.activate(&longest, "").await.unwrap());
    store.close().await;
}

async fn concurrent_registrations_of_one_id_leave_one_consistent_row(db: TestDb) {
    const TASKS: usize = 16;
    let store = db.connect().await;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = store.clone();
        // Two competing TPM identities; each task has its own activation key.
        let identity = if i % 2 == 0 { 10 } else { 11 };
        let a = RegistrarAgent {
            activation_key: Some(format!("a2V5LXRhc2st{i:02}")),
            ..agent("contended", identity)
        };
        tasks.push(tokio::spawn(async move {
            let r = store.registrar().register(&a).await;
            (a, r)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let stored = store.registrar().get("contended").await.unwrap().unwrap();
    let winner_aik = stored.aik_tpm.clone();

    let mut created = 0;
    let mut succeeded = Vec::new();
    for (a, r) in &results {
        match r {
            Ok(outcome) => {
                assert_eq!(a.aik_tpm, winner_aik, "a losing identity was accepted");
                created += usize::from(*outcome == RegisterOutcome::Created);
                succeeded.push(a);
            }
            Err(StoreError::IdentityConflict { .. }) => {
                assert_ne!(a.aik_tpm, winner_aik, "the winning identity was refused");
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1, "exactly one registration creates the row");
    assert_eq!(stored.regcount as usize, succeeded.len());
    assert_eq!(
        succeeded.len(),
        TASKS / 2,
        "every registration of the winner succeeds"
    );
    assert!(!stored.active);
    // The row is exactly one successful registration, not a mix of several.
    assert!(
        succeeded
            .iter()
            .any(|a| as_stored(a, stored.regcount) == stored),
        "stored row matches no single registration: {stored:?}"
    );
    assert_eq!(store.registrar().list_ids().await.unwrap(), ["contended"]);
    store.close().await;
}

/// SQL that makes every UPDATE (or INSERT) of `registrar_agents` fail inside the database.
fn failing_trigger(backend: Backend, event: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER fail_{event} BEFORE {event} ON registrar_agents \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION fail_{event}() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_{event} BEFORE {event} ON registrar_agents \
             FOR EACH ROW EXECUTE FUNCTION fail_{event}();"
        ),
        Backend::Mysql => format!(
            "CREATE TRIGGER fail_{event} BEFORE {event} ON registrar_agents FOR EACH ROW \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'"
        ),
    }
}

fn drop_trigger(backend: Backend, event: &str) -> String {
    match backend {
        Backend::Postgres => format!("DROP TRIGGER fail_{event} ON registrar_agents"),
        Backend::Sqlite | Backend::Mysql => format!("DROP TRIGGER fail_{event}"),
    }
}

async fn failing_statement_rolls_back_whole_transaction(db: TestDb) {
    let store = db.connect().await;
    let repo = store.registrar();
    let first = agent("agent-5", 5);
    repo.register(&first).await.unwrap();
    let before = repo.get("agent-5").await.unwrap().unwrap();
    let mut raw = db.raw().await;

    // Re-registration: the SELECT … FOR UPDATE succeeds, the UPDATE fails.
    raw.execute(&failing_trigger(db.backend, "UPDATE")).await;
    let second = RegistrarAgent {
        ip: Some("198.51.100.1".into()),
        activation_key: Some("c2Vjb25k".into()),
        ..first.clone()
    };
    match repo.register(&second).await {
        Err(StoreError::Database { operation, .. }) => assert_eq!(operation, "register agent"),
        other => panic!("expected a database error, got {other:?}"),
    }
    assert_eq!(repo.get("agent-5").await.unwrap().as_ref(), Some(&before));
    raw.execute(&drop_trigger(db.backend, "UPDATE")).await;

    // New registration: the SELECT succeeds, the INSERT fails; nothing is left behind.
    raw.execute(&failing_trigger(db.backend, "INSERT")).await;
    assert!(matches!(
        repo.register(&agent("agent-6", 6)).await,
        Err(StoreError::Database { .. })
    ));
    raw.execute(&drop_trigger(db.backend, "INSERT")).await;
    assert_eq!(repo.get("agent-6").await.unwrap(), None);
    assert_eq!(repo.list_ids().await.unwrap(), ["agent-5"]);

    // The pool is healthy afterwards: no connection is stuck in the failed transaction.
    for _ in 0..3 {
        repo.register(&second).await.unwrap();
    }
    assert_eq!(
        repo.get("agent-5").await.unwrap(),
        Some(as_stored(&second, 4))
    );
    store.close().await;
}

async fn dropped_register_future_leaves_row_unchanged(db: TestDb) {
    let store = db.connect().await;
    let first = agent("agent-7", 7);
    store.registrar().register(&first).await.unwrap();
    let before = store.registrar().get("agent-7").await.unwrap().unwrap();

    // Hold the lock a re-registration needs, from outside the store.
    let mut holder = db.raw().await;
    match db.backend {
        Backend::Sqlite => holder.execute("BEGIN IMMEDIATE").await,
        Backend::Postgres | Backend::Mysql => {
            holder.execute("BEGIN").await;
            holder
                .execute(
                    "SELECT agent_id FROM registrar_agents WHERE agent_id = 'agent-7' FOR UPDATE",
                )
                .await;
        }
    }
    let second = RegistrarAgent {
        ip: Some("203.0.113.7".into()),
        activation_key: Some("ZHJvcHBlZA==".into()),
        ..first.clone()
    };
    // A connection goes back to the pool on a task of its own: wait until those of the
    // calls above are back, so that one in use below is the registration's.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.connections_in_use() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a connection of the earlier calls never went back to the pool"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let task = {
        let store = store.clone();
        let second = second.clone();
        tokio::spawn(async move { store.registrar().register(&second).await })
    };
    // Wait until the registration is provably blocked on the lock.
    match db.backend {
        Backend::Sqlite => {
            // SQLite waits for the write lock in its busy handler, which nothing outside
            // shows; what shows is the connection the registration took from the pool to
            // run BEGIN IMMEDIATE, which cannot complete while the holder has the lock.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while store.connections_in_use() == 0 {
                assert!(
                    !task.is_finished(),
                    "register finished while the write lock was held"
                );
                assert!(
                    std::time::Instant::now() < deadline,
                    "register never took a connection"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Backend::Postgres => {
            let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'";
            wait_for_scalar(&db, waiting, 1, "register to wait on the row lock", &task).await;
        }
        Backend::Mysql => {
            // MariaDB does not always list a lock wait taken during the optimizer's
            // constant-table read in innodb_trx; the process list shows the statement stuck.
            let waiting = "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command = 'Execute' \
                 AND info LIKE 'SELECT%FOR UPDATE'";
            wait_for_scalar(&db, waiting, 1, "register to wait on the row lock", &task).await;
        }
    }
    if task.is_finished() {
        panic!(
            "register finished while the lock was held: {:?}",
            task.await
        );
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    holder.execute("COMMIT").await;

    assert_eq!(
        store.registrar().get("agent-7").await.unwrap().as_ref(),
        Some(&before)
    );
    // The connection the aborted task used went back clean; writes still work.
    for n in 2..=4 {
        assert_eq!(
            store.registrar().register(&second).await.unwrap(),
            RegisterOutcome::Replaced
        );
        assert_eq!(
            store.registrar().get("agent-7").await.unwrap(),
            Some(as_stored(&second, n))
        );
    }
    store.close().await;
}
