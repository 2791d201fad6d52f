//! Named runtime and measured-boot policies on SQLite, PostgreSQL and MariaDB: CRUD with
//! generations that never repeat for a name (not even across delete and re-create), hostile names and sizes refused before writing, agents stored together with
//! their new policies in one transaction, policies in use kept, and the policies named after
//! a deleted agent removed when unused.

mod common;

use common::TestDb;
use keylime_store::{MAX_POLICY_BYTES, NewPolicies, PolicyDelete, PolicyKind, VerifierAgent};

backend_tests!(
    named_policies_crud_with_generations,
    agent_with_policies_is_one_transaction_and_policies_in_use_stay,
);

fn agent(id: &str, runtime: Option<&str>, mb: Option<&str>) -> VerifierAgent {
    VerifierAgent {
        agent_id: id.into(),
        verifier_id: "v".into(),
        operational_state: 3,
        ip: Some("127.0.0.1".into()),
        port: Some(9002),
        add_request: "{}".into(),
        engine_state: "{}".into(),
        attestation_count: 0,
        last_received_quote: 0,
        last_successful_attestation: 0,
        severity_level: None,
        last_event_id: None,
        runtime_policy_name: runtime.map(Into::into),
        mb_policy_name: mb.map(Into::into),
    }
}

async fn named_policies_crud_with_generations(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    for kind in [PolicyKind::Runtime, PolicyKind::MeasuredBoot] {
        assert!(
            repo.add_policy(kind, "p", Some("{\"a\":1}"), None)
                .await
                .unwrap()
        );
        assert!(!repo.add_policy(kind, "p", Some("{}"), None).await.unwrap());
        let first = repo.policy_generation(kind, "p").await.unwrap().unwrap();
        assert!(first >= 1);
        assert!(
            repo.update_policy(kind, "p", Some("{\"a\":2}"), None)
                .await
                .unwrap()
        );
        assert!(
            !repo
                .update_policy(kind, "absent", Some("{}"), None)
                .await
                .unwrap()
        );
        let p = repo.policy(kind, "p").await.unwrap().unwrap();
        assert_eq!(p.body.as_deref(), Some("{\"a\":2}"));
        assert!(p.generation > first, "an update takes a new generation");
        assert!(repo.add_policy(kind, "a", None, None).await.is_ok());
        assert_eq!(repo.policy_names(kind).await.unwrap(), ["a", "p"]);
        assert_eq!(
            repo.delete_policy(kind, "p").await.unwrap(),
            PolicyDelete::Deleted
        );
        assert_eq!(
            repo.delete_policy(kind, "p").await.unwrap(),
            PolicyDelete::NotFound
        );
        assert_eq!(repo.policy(kind, "p").await.unwrap(), None);
        // Created again under the same name: a generation the name never had.
        assert!(repo.add_policy(kind, "p", Some("{}"), None).await.unwrap());
        let again = repo.policy_generation(kind, "p").await.unwrap().unwrap();
        assert!(
            again > p.generation,
            "re-created at {again}, was {}",
            p.generation
        );
        assert_eq!(
            repo.delete_policy(kind, "p").await.unwrap(),
            PolicyDelete::Deleted
        );
    }
    // hostile names and sizes are refused before any write
    let kind = PolicyKind::Runtime;
    assert!(repo.add_policy(kind, "", Some("{}"), None).await.is_err());
    assert!(
        repo.add_policy(kind, &"n".repeat(256), Some("{}"), None)
            .await
            .is_err()
    );
    assert!(
        repo.add_policy(kind, "a\nb", Some("{}"), None)
            .await
            .is_err()
    );
    let huge = "x".repeat(MAX_POLICY_BYTES + 1);
    assert!(
        repo.add_policy(kind, "big", Some(&huge), None)
            .await
            .is_err()
    );
    assert_eq!(repo.policy(kind, "big").await.unwrap(), None);
    store.close().await;
}

async fn agent_with_policies_is_one_transaction_and_policies_in_use_stay(db: TestDb) {
    let store = db.connect().await;
    let repo = store.verifier();
    let new = NewPolicies {
        runtime: Some(("a1".into(), "{}".into())),
        mb: Some(("a1".into(), None)),
    };
    assert!(
        repo.add_with_policies(&agent("a1", Some("a1"), Some("a1")), &new)
            .await
            .unwrap()
    );
    let mb_first = repo
        .policy_generation(PolicyKind::MeasuredBoot, "a1")
        .await
        .unwrap()
        .unwrap();
    // a second agent with the same new policy name: nothing written, not even the agent
    let clash = NewPolicies {
        runtime: Some(("a1".into(), "{}".into())),
        mb: None,
    };
    assert!(
        !repo
            .add_with_policies(&agent("a2", Some("a1"), None), &clash)
            .await
            .unwrap()
    );
    assert_eq!(repo.get("a2").await.unwrap(), None);
    // a2 shares a1's runtime policy by name
    let a2 = agent("a2", Some("a1"), None);
    assert!(
        repo.add_with_policies(&a2, &NewPolicies::default())
            .await
            .unwrap()
    );
    assert_eq!(
        repo.delete_policy(PolicyKind::Runtime, "a1").await.unwrap(),
        PolicyDelete::InUse("a1".into())
    );
    // deleting a1 keeps the runtime policy a2 uses, removes the unused mb policy
    assert!(repo.delete("a1").await.unwrap());
    assert!(
        repo.policy(PolicyKind::Runtime, "a1")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        repo.policy(PolicyKind::MeasuredBoot, "a1").await.unwrap(),
        None
    );
    assert_eq!(
        repo.delete_policy(PolicyKind::Runtime, "a1").await.unwrap(),
        PolicyDelete::InUse("a2".into())
    );
    assert!(repo.delete("a2").await.unwrap());
    assert_eq!(
        repo.delete_policy(PolicyKind::Runtime, "a1").await.unwrap(),
        PolicyDelete::Deleted
    );
    // a1 added again with its policies: the measured-boot policy deleted with the agent
    // comes back at a generation it never had
    assert!(
        repo.add_with_policies(&agent("a1", Some("a1"), Some("a1")), &new)
            .await
            .unwrap()
    );
    let mb_again = repo
        .policy_generation(PolicyKind::MeasuredBoot, "a1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        mb_again > mb_first,
        "re-created at {mb_again}, was {mb_first}"
    );
    store.close().await;
}
