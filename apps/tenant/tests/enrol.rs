//! The tenant against an in-process registrar and verifier and a swtpm-backed agent:
//! `add` enrols (state reaches Get Quote, the key and payload reach the agent, `--verify`
//! confirms K), a quote signed by another AK is refused with nothing sent to the verifier,
//! and status/list/delete/reactivate/regdelete behave as upstream.

mod common;

use common::{Services, TestAgent, wait_for};
use keylime_api::verifier::OperationalState;
use keylime_tenant::pyjson::PyValue;
use keylime_tenant::{
    AddRequest, DeleteOutcome, PayloadSource, PolicyOptions, RegDeleteOutcome, TenantError,
};

fn add_request(agent: &TestAgent) -> AddRequest {
    AddRequest {
        agent_id: agent.id.clone(),
        ..AddRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_with_payload_and_verify_then_status_list_delete() {
    let svc = Services::start().await;
    let agent = TestAgent::start(&svc, "agent-ok", false).await;
    let tenant = svc.tenant();

    // Registered but not enrolled: status fails at the verifier, as upstream's; the
    // registrar's record is upstream's selection of its fields.
    let err = tenant.status("agent-ok").await.unwrap_err();
    assert!(matches!(err, TenantError::NotOnVerifier { .. }), "{err}");
    let r = tenant.regstatus("agent-ok").await.unwrap();
    let PyValue::Object(members) = &r.record else {
        panic!("record is not an object: {:?}", r.record)
    };
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "aik_tpm",
            "regcount",
            "ek_tpm",
            "ip",
            "port",
            "mtls_cert",
            "ekcert",
            "operational_state"
        ]
    );
    assert_eq!(r.record.to_value()["operational_state"], "Registered");

    let file = svc.dir.path().join("secret.txt");
    std::fs::write(&file, b"the payload").unwrap();
    let req = AddRequest {
        policies: PolicyOptions {
            tpm_policy: Some(
                r#"{"23": "0000000000000000000000000000000000000000000000000000000000000000"}"#
                    .into(),
            ),
            ..PolicyOptions::default()
        },
        payload: PayloadSource::File(file),
        verify: true,
        ..add_request(&agent)
    };
    let out = tenant.add(&req).await.expect("add succeeds");
    assert_eq!(out.agent_api_version, "2.6");
    assert_eq!(out.agent.port, agent.port);
    assert!(out.key_delivered);
    assert!(out.key_verified_after.is_some(), "--verify confirmed K");
    {
        let keys = agent.keys.lock().unwrap();
        assert_eq!(keys.ukey_posts, 1);
        assert_eq!(keys.decrypted_payload.as_deref(), Some(&b"the payload"[..]));
    }

    let st = wait_for("Get Quote with attestations", || async {
        let s = tenant.cvstatus("agent-ok").await.ok()?;
        (s.operational_state == Some(OperationalState::GetQuote)
            && s.results.to_value()["attestation_count"].as_u64() >= Some(2))
        .then_some(s)
    })
    .await;
    assert_eq!(st.results.to_value()["operational_state"], "Get Quote");
    let policy: serde_json::Value =
        serde_json::from_str(st.results.to_value()["tpm_policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["mask"], "0x800000");

    assert_eq!(tenant.cvlist().await.unwrap().ids, ["agent-ok"]);
    assert_eq!(tenant.reglist().await.unwrap().ids, ["agent-ok"]);
    let bulk = tenant.bulkinfo().await.unwrap();
    assert_eq!(
        bulk.results.to_value()["agent-ok"]["operational_state"],
        "Get Quote"
    );

    // Adding again conflicts.
    let err = tenant.add(&add_request(&agent)).await.unwrap_err();
    assert!(
        matches!(err, TenantError::AlreadyOnVerifier { .. }),
        "{err}"
    );

    tenant.reactivate("agent-ok").await.unwrap();
    let deleted = tenant.delete("agent-ok").await.unwrap();
    assert!(
        matches!(
            deleted,
            DeleteOutcome::Deleted | DeleteOutcome::DeletedAfterPolling { .. }
        ),
        "{deleted:?}"
    );
    let err = tenant.cvstatus("agent-ok").await.unwrap_err();
    assert!(matches!(err, TenantError::NotOnVerifier { .. }), "{err}");
    assert_eq!(
        tenant.delete("agent-ok").await.unwrap(),
        DeleteOutcome::AlreadyAbsent
    );
    // Delete does not touch the registrar; regdelete does.
    tenant.regstatus("agent-ok").await.unwrap();
    assert_eq!(
        tenant.regdelete("agent-ok").await.unwrap(),
        RegDeleteOutcome::Deleted
    );
    let err = tenant.regstatus("agent-ok").await.unwrap_err();
    assert!(matches!(err, TenantError::NotRegistered { .. }), "{err}");
    // As upstream's tenant: deleting an agent the registrar does not have succeeds.
    assert_eq!(
        tenant.regdelete("agent-ok").await.unwrap(),
        RegDeleteOutcome::Absent
    );
    svc.verifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_from_another_ak_is_refused_and_nothing_is_enrolled() {
    let svc = Services::start().await;
    let agent = TestAgent::start(&svc, "agent-bad-ak", true).await;
    let tenant = svc.tenant();
    let file = svc.dir.path().join("p");
    std::fs::write(&file, b"x").unwrap();
    let err = tenant
        .add(&AddRequest {
            payload: PayloadSource::File(file),
            ..add_request(&agent)
        })
        .await
        .unwrap_err();
    match &err {
        TenantError::InvalidQuote { reason, .. } => {
            assert!(reason.contains("AK"), "{reason}")
        }
        other => panic!("expected InvalidQuote, got {other}"),
    }
    assert_eq!(*agent.identity_quotes.lock().unwrap(), 1);
    assert_eq!(
        agent.keys.lock().unwrap().ukey_posts,
        0,
        "no key sent to a bad agent"
    );
    assert!(matches!(
        tenant.cvstatus("agent-bad-ak").await.unwrap_err(),
        TenantError::NotOnVerifier { .. }
    ));
    assert!(tenant.cvlist().await.unwrap().ids.is_empty());
    svc.verifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_what_failed() {
    let svc = Services::start().await;
    let tenant = svc.tenant();
    let err = tenant
        .add(&AddRequest {
            agent_id: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::NotRegistered { .. }), "{err}");
    assert!(err.to_string().contains("nobody"), "{err}");
    let err = tenant.reactivate("nobody").await.unwrap_err();
    assert!(matches!(err, TenantError::NotOnVerifier { .. }), "{err}");
    let err = tenant
        .add(&AddRequest {
            agent_id: "x".into(),
            policies: PolicyOptions {
                tpm_policy: Some(r#"{"16": "00"}"#.into()),
                ..PolicyOptions::default()
            },
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::Argument(_)), "{err}");
    let err = tenant
        .add(&AddRequest {
            agent_id: "x".into(),
            verify: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--verify only works"), "{err}");

    // An unreachable verifier.
    let mut s = svc.settings();
    s.verifier.port = keylime_testkit::ports::closed();
    let t = keylime_tenant::Tenant::new(s).unwrap();
    let err = t.cvlist().await.unwrap_err();
    assert!(matches!(err, TenantError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("Verifier"), "{err}");
    svc.verifier.shutdown().await;
}

/// `add` with runtime and measured-boot policies (verifier = recording fake): the body
/// carries them as upstream's tenant sends them, and a bad policy stops `add` and `update`
/// before the agent or the verifier is contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_sends_the_policies_and_checks_them_first() {
    use base64::Engine as _;
    use common::fake_verifier::FakeVerifier;
    let data = keylime_testkit::testdata;
    let svc = Services::start().await;
    let agent = TestAgent::start(&svc, "agent-policies", false).await;
    let fake = FakeVerifier::start().await;
    let tenant = keylime_tenant::Tenant::new(fake.as_verifier_of(svc.settings())).unwrap();

    // Upstream's unit-test fixture lacks "release": refused locally.
    let bad = AddRequest {
        policies: PolicyOptions {
            runtime_policy: Some(data("policy/keylime-unit-tests/runtime_policy_test.json")),
            ..PolicyOptions::default()
        },
        ..add_request(&agent)
    };
    let err = tenant.add(&bad).await.unwrap_err();
    assert!(matches!(err, TenantError::Policy(_)), "{err}");
    let err = tenant.update(&bad).await.unwrap_err();
    assert!(matches!(err, TenantError::Policy(_)), "{err}");
    assert_eq!(
        *agent.identity_quotes.lock().unwrap(),
        0,
        "agent not contacted"
    );
    assert!(fake.requests().is_empty(), "verifier not contacted");

    let policy_file = data("policy/keylime/sign-runtime-policy/runtime-policy.json");
    let mb_file = data("mbpolicy/keylime/example_reference_state.json");
    let req = AddRequest {
        policies: PolicyOptions {
            tpm_policy: Some(r#"{"23": "00"}"#.into()),
            runtime_policy: Some(policy_file.clone()),
            runtime_policy_name: Some("rp".into()),
            mb_policy: Some(mb_file.clone()),
            mb_policy_name: Some("mb".into()),
            ..PolicyOptions::default()
        },
        ..add_request(&agent)
    };
    tenant.add(&req).await.expect("add with policies");
    let body = fake.added_agent("agent-policies").unwrap();
    assert_eq!(
        body["runtime_policy"],
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&policy_file).unwrap())
    );
    assert_eq!(body["runtime_policy_name"], "rp");
    assert_eq!(body["runtime_policy_key"], "");
    assert_eq!(body["mb_policy_name"], "mb");
    let mb: serde_json::Value =
        serde_json::from_str(body["mb_policy"].as_str().expect("mb_policy is JSON text")).unwrap();
    let mb_expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mb_file).unwrap()).unwrap();
    assert_eq!(mb, mb_expected);
    assert_eq!(
        body["tpm_policy"], r#"{"23": ["00"], "mask": "0x80ffff"}"#,
        "PCR 10 for IMA and 0-9, 11-15 for measured boot"
    );

    // Without policy options: upstream's empty values.
    tenant.delete("agent-policies").await.unwrap();
    tenant.add(&add_request(&agent)).await.unwrap();
    let body = fake.added_agent("agent-policies").unwrap();
    assert_eq!(
        (
            &body["runtime_policy"],
            &body["runtime_policy_name"],
            &body["runtime_policy_key"],
            &body["mb_policy"],
            &body["mb_policy_name"],
            &body["tpm_policy"]
        ),
        (
            &serde_json::json!(""),
            &serde_json::json!(""),
            &serde_json::json!(""),
            &serde_json::Value::Null,
            &serde_json::json!(""),
            &serde_json::json!(r#"{"mask": "0x0"}"#)
        )
    );
    svc.verifier.shutdown().await;
}
