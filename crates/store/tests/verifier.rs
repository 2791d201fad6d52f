//! Verifier agent records on SQLite, PostgreSQL and MariaDB: round trip, duplicate adds,
//! the loop's progress writes that never overwrite an operator's TERMINATED/TENANT_FAILED,
//! compare-and-set state changes, the restart reset, bounds checked before writing, and
//! push agents' session token hashes (one per agent).

mod common;

use common::TestDb;
use keylime_store::verifier::PendingWebhook;
use keylime_store::{AttestationProgress, StoreError, VerifierAgent};

backend_tests!(
    add_get_list_round_trip,
    progress_never_overwrites_operator_states,
    restart_resets_only_polling_states_of_this_verifier,
    invalid_records_are_refused_before_writing,
    add_request_is_replaced_in_place,
    webhook_outbox_is_read_in_queue_order,
    session_tokens_replace_and_look_up,
);

fn agent(id: &str, verifier: &str, state: i32) -> VerifierAgent {
    VerifierAgent {
        agent_id: id.into(),
        verifier_id: verifier.into(),
        operational_state: state,
        ip: Some("127.0.0.1".into()),
        port: Some(9002),
        add_request: r#"{"tpm_policy":"{}","revocation_key":"secret"}"#.into(),
        engine_state: "{}".into(),
        attestation_count: 0,
        last_received_quote: 0,
        last_successful_attestation: 0,
        severity_level: None,
        last_event_id: None,
        runtime_policy_name: None,
        mb_policy_name: None,
    }
}

fn progress(state: i32, count: i64) -> AttestationProgress {
    AttestationProgress {
        operational_state: state,
        engine_state: format!("{{\"attestation_count\":{count}}}"),
        attestation_count: count,
        last_received_quote: 1_700_000_000 + count,
        last_successful_attestation: 1_700_000_000,
        severity_level: Some(6),
        last_event_id: Some("pcr_validation.invalid_pcr_7".into()),
    }
}

async fn add_get_list_round_trip(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    let a = agent("b-agent", "default", 3);
    assert!(repo.add(&a).await.unwrap());
    assert!(!repo.add(&a).await.unwrap(), "second add of one id");
    assert!(repo.add(&agent("a-agent", "other", 1)).await.unwrap());
    assert_eq!(repo.get("b-agent").await.unwrap(), Some(a.clone()));
    assert_eq!(repo.get("missing").await.unwrap(), None);
    assert_eq!(repo.list_ids(None).await.unwrap(), ["a-agent", "b-agent"]);
    assert_eq!(repo.list_ids(Some("default")).await.unwrap(), ["b-agent"]);
    assert!(!format!("{a:?}").contains("secret"));
    assert!(repo.delete("b-agent").await.unwrap());
    assert!(!repo.delete("b-agent").await.unwrap());
    assert_eq!(repo.list_ids(None).await.unwrap(), ["a-agent"]);
}

async fn progress_never_overwrites_operator_states(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    repo.add(&agent("x", "default", 3)).await.unwrap();
    assert!(repo.save_progress("x", &progress(9, 5)).await.unwrap());
    let got = repo.get("x").await.unwrap().unwrap();
    assert_eq!(got.operational_state, 9);
    assert_eq!(got.attestation_count, 5);
    assert_eq!(
        got.last_event_id.as_deref(),
        Some("pcr_validation.invalid_pcr_7")
    );
    assert_eq!(got.severity_level, Some(6));

    assert!(
        !repo.compare_and_set_state("x", 3, 8).await.unwrap(),
        "stale expectation"
    );
    assert!(repo.compare_and_set_state("x", 9, 8).await.unwrap());
    assert!(!repo.save_progress("x", &progress(3, 6)).await.unwrap());
    assert_eq!(repo.get("x").await.unwrap().unwrap().operational_state, 8);

    assert!(repo.set_state("x", 10).await.unwrap());
    assert!(!repo.save_progress("x", &progress(3, 6)).await.unwrap());
    assert!(repo.set_state("x", 1).await.unwrap());
    assert!(repo.save_progress("x", &progress(3, 6)).await.unwrap());
    assert!(!repo.save_progress("gone", &progress(3, 6)).await.unwrap());
    assert!(!repo.set_state("gone", 3).await.unwrap());
}

async fn restart_resets_only_polling_states_of_this_verifier(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    for (id, state) in [
        ("s1", 1),
        ("s3", 3),
        ("s4", 4),
        ("s5", 5),
        ("s6", 6),
        ("s7", 7),
        ("s9", 9),
        ("s10", 10),
    ] {
        repo.add(&agent(id, "default", state)).await.unwrap();
    }
    repo.add(&agent("foreign", "other", 3)).await.unwrap();
    assert_eq!(repo.reset_for_restart("default").await.unwrap(), 5);
    let states: Vec<(String, i32)> = repo
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.agent_id, a.operational_state))
        .collect();
    let want: Vec<(String, i32)> = [
        ("foreign", 3),
        ("s1", 1),
        ("s10", 10),
        ("s3", 1),
        ("s4", 1),
        ("s5", 1),
        ("s6", 1),
        ("s7", 7),
        ("s9", 9),
    ]
    .into_iter()
    .map(|(a, s)| (a.to_string(), s))
    .collect();
    assert_eq!(states, want);
}

async fn invalid_records_are_refused_before_writing(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    let cases: Vec<(&str, VerifierAgent)> = vec![
        ("agent_id", agent("", "default", 1)),
        ("agent_id", agent(&"a".repeat(81), "default", 1)),
        ("agent_id", agent("a b", "default", 1)),
        ("verifier_id", agent("ok", "", 1)),
        ("operational_state", agent("ok", "default", 11)),
        (
            "port",
            VerifierAgent {
                port: Some(0),
                ..agent("ok", "default", 1)
            },
        ),
        (
            "attestation_count",
            VerifierAgent {
                attestation_count: -1,
                ..agent("ok", "default", 1)
            },
        ),
    ];
    for (field, bad) in cases {
        match repo.add(&bad).await {
            Err(StoreError::InvalidField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    repo.add(&agent("ok", "default", 1)).await.unwrap();
    assert!(matches!(
        repo.save_progress("ok", &progress(12, 1)).await,
        Err(StoreError::InvalidField {
            field: "operational_state",
            ..
        })
    ));
    assert!(repo.list_ids(None).await.unwrap() == ["ok"]);
    assert_eq!(repo.get("ok").await.unwrap().unwrap().operational_state, 1);
}

async fn add_request_is_replaced_in_place(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    let a = agent("v-agent", "default", 3);
    assert!(repo.add(&a).await.unwrap());
    let updated = r#"{"tpm_policy":"{}","supported_version":"2.1"}"#;
    assert!(repo.set_add_request("v-agent", updated).await.unwrap());
    let got = repo.get("v-agent").await.unwrap().unwrap();
    assert_eq!(got.add_request, updated);
    assert_eq!(
        got.operational_state, a.operational_state,
        "nothing else changes"
    );
    assert!(!repo.set_add_request("missing", updated).await.unwrap());
    let huge = "x".repeat(keylime_store::verifier::MAX_ADD_REQUEST_BYTES + 1);
    assert!(repo.set_add_request("v-agent", &huge).await.is_err());
    assert_eq!(
        repo.get("v-agent").await.unwrap().unwrap().add_request,
        updated
    );
}

fn notice(id: &str, verifier: &str, created_at: i64) -> PendingWebhook {
    PendingWebhook {
        id: id.into(),
        seq: 0,
        verifier_id: verifier.into(),
        url: "https://127.0.0.1:1/hook".into(),
        body: format!("{{\"msg\": \"{id}\", \"signature\": \"\"}}"),
        attempts: 0,
        created_at,
    }
}

/// The outbox is read in the order notices were queued (not by their clock), per
/// verifier; concurrent writers each get their own place.
async fn webhook_outbox_is_read_in_queue_order(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    for (id, verifier, at) in [
        ("n1", "v1", 30),
        ("m1", "v2", 1),
        ("n2", "v1", 20),
        ("n3", "v1", 10),
    ] {
        repo.queue_webhook(&notice(id, verifier, at)).await.unwrap();
    }
    let ids = |pending: Vec<PendingWebhook>| pending.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(
        ids(repo.pending_webhooks("v1").await.unwrap()),
        ["n1", "n2", "n3"]
    );
    assert_eq!(repo.next_webhook("v2").await.unwrap().unwrap().id, "m1");
    assert!(repo.finish_webhook("n1").await.unwrap());
    let head = repo.next_webhook("v1").await.unwrap().unwrap();
    assert_eq!(
        (head.id.as_str(), head.body.as_str()),
        ("n2", r#"{"msg": "n2", "signature": ""}"#)
    );

    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .verifier()
                    .queue_webhook(&notice(&format!("c{i}"), "v3", 5))
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let pending = repo.pending_webhooks("v3").await.unwrap();
    assert_eq!(pending.len(), 8);
    assert!(
        pending.windows(2).all(|w| w[0].seq < w[1].seq),
        "distinct, increasing places: {pending:?}"
    );
    store.close().await;
}

async fn session_tokens_replace_and_look_up(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    let (h1, h2, h3) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    repo.replace_session_token("A", &h1, 100).await.unwrap();
    repo.replace_session_token("B", &h3, 300).await.unwrap();
    let found = repo.session_token(&h1).await.unwrap().unwrap();
    assert_eq!((found.agent_id.as_str(), found.expires_at), ("A", 100));
    repo.replace_session_token("A", &h2, 200).await.unwrap();
    assert_eq!(repo.session_token(&h1).await.unwrap(), None, "replaced");
    assert_eq!(
        repo.session_token(&h2).await.unwrap().unwrap().expires_at,
        200
    );
    assert_eq!(repo.session_token_count("A").await.unwrap(), 1);
    assert_eq!(repo.session_token_count("B").await.unwrap(), 1);
    // Not a hash: refused before writing; looked up as nothing.
    assert!(matches!(
        repo.replace_session_token("A", "XYZ", 1).await,
        Err(StoreError::InvalidField { .. })
    ));
    assert_eq!(repo.session_token("XYZ").await.unwrap(), None);
    assert_eq!(repo.session_token_count("A").await.unwrap(), 1);
}
