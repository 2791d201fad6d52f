//! The tenant against an in-process registrar and verifier and a swtpm-backed agent:
//! `add` enrols (state reaches Get Quote, the key and payload reach the agent, `--verify`
//! confirms K), a quote signed by another AK is refused with nothing sent to the verifier,
//! and status/list/delete/reactivate/regdelete behave as upstream.

mod common;

use common::{Services, TestAgent, wait_for};
use keylime_api::verifier::OperationalState;
use keylime_tenant::{AddRequest, DeleteOutcome, PayloadSource, StatusReport, TenantError};

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

    // Registered but not enrolled: status falls back to the registrar.
    match tenant.status("agent-ok").await.unwrap() {
        StatusReport::RegistrarOnly(r) => assert_eq!(r.record["operational_state"], "Registered"),
        other => panic!("expected registrar-only status, got {other:?}"),
    }

    let file = svc.dir.path().join("secret.txt");
    std::fs::write(&file, b"the payload").unwrap();
    let req = AddRequest {
        tpm_policy: Some(
            r#"{"23": "0000000000000000000000000000000000000000000000000000000000000000"}"#.into(),
        ),
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
            && s.results["attestation_count"].as_u64() >= Some(2))
        .then_some(s)
    })
    .await;
    assert_eq!(st.results["operational_state"], "Get Quote");
    let policy: serde_json::Value =
        serde_json::from_str(st.results["tpm_policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["mask"], "0x800000");

    assert_eq!(tenant.cvlist().await.unwrap().ids, ["agent-ok"]);
    assert_eq!(tenant.reglist().await.unwrap().ids, ["agent-ok"]);
    let bulk = tenant.bulkinfo().await.unwrap();
    assert_eq!(bulk.results["agent-ok"]["operational_state"], "Get Quote");

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
    tenant.regdelete("agent-ok").await.unwrap();
    let err = tenant.regstatus("agent-ok").await.unwrap_err();
    assert!(matches!(err, TenantError::NotRegistered { .. }), "{err}");
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
            tpm_policy: Some(r#"{"16": "00"}"#.into()),
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
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.verifier.port = closed.local_addr().unwrap().port();
    drop(closed);
    let t = keylime_tenant::Tenant::new(s).unwrap();
    let err = t.cvlist().await.unwrap_err();
    assert!(matches!(err, TenantError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("Verifier"), "{err}");
    svc.verifier.shutdown().await;
}
