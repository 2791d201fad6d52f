//! The pull loop against a swtpm-backed test agent over mTLS: repeated successful
//! attestations (state 3, count growing), a policy PCR extended behind the verifier's back
//! (state 9 with `pcr_validation.invalid_pcr_7`), an unreachable agent (retries → 7), and a
//! restarted verifier resuming an agent where it was; also API version renegotiation (an
//! agent serving only 2.1 polled at 2.1; a downgrade after attestation refused).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestAgent, call, client, start_verifier, url, wait_status};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_pcr_is_caught_and_polling_stops() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, &v, &agent, "t1").await;
    wait_status(&admin, &v, "t1", LIMIT, "3 attestations", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(3)
    })
    .await;

    agent.tamper(7);
    let st = wait_status(&admin, &v, "t1", LIMIT, "invalid quote", |_, b| {
        b["results"]["operational_state"] == 9
    })
    .await;
    assert_eq!(
        st["results"]["last_event_id"],
        "pcr_validation.invalid_pcr_7"
    );
    assert_eq!(
        st["results"]["severity_level"], 6,
        "default policy: emergency"
    );
    assert_eq!(st["results"]["attestation_status"], "FAIL");
    // Maximum severity: the agent's polling task ends with the failed quote, so no
    // further quote can be requested.
    let served = agent.quotes_served.load(Ordering::SeqCst);
    let count = st["results"]["attestation_count"].clone();
    common::wait_until(LIMIT, "polling of t1 to stop", || !v.is_polling("t1")).await;
    assert_eq!(
        agent.quotes_served.load(Ordering::SeqCst),
        served,
        "a quote was requested after the failed one"
    );
    let (_, after) = common::status(&admin, &v, "t1").await;
    assert_eq!(after["results"]["attestation_count"], count);
    assert_eq!(after["results"]["operational_state"], 9);
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_agent_goes_to_failed_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, &v, &agent, "u1").await;
    wait_status(&admin, &v, "u1", LIMIT, "attested", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(1)
    })
    .await;
    agent.go_offline();
    let st = wait_status(&admin, &v, "u1", LIMIT, "FAILED", |_, b| {
        b["results"]["operational_state"] == 7
    })
    .await;
    assert_eq!(
        st["results"]["last_event_id"],
        "internal.verifier.not_reachable"
    );
    // FAILED agents are deleted at once.
    let (code, _) = call(admin.delete(url(&v, "/v2.6/agents/u1"))).await;
    assert_eq!(code, 200);
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_verifier_resumes_polling() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, &v, &agent, "r1").await;
    let st = wait_status(&admin, &v, "r1", LIMIT, "attested twice", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(2)
    })
    .await;
    v.shutdown().await;
    let before = st["results"]["attestation_count"].as_u64().unwrap();

    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let st = wait_status(&admin, &v, "r1", LIMIT, "resumed attestations", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(before + 2)
    })
    .await;
    assert!(st["results"]["last_event_id"].is_null(), "{st}");
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_serving_only_api_2_1_is_renegotiated() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    agent.serve_only(&["2.1"]);
    let body = agent.add_body();
    assert_eq!(body["supported_version"], "2.6");
    let (code, body) = call(admin.post(url(&v, "/v2.6/agents/n1")).json(&body)).await;
    assert_eq!(code, 200, "{body}");
    let first = wait_status(&admin, &v, "n1", LIMIT, "attested at 2.1", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(1)
    })
    .await;
    let first = first["results"]["attestation_count"].as_u64().unwrap();
    wait_status(&admin, &v, "n1", LIMIT, "attestations growing", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(first + 2)
    })
    .await;
    assert_eq!(agent.version_requests.load(Ordering::SeqCst), 1);
    assert_eq!(agent.quotes_at("2.6"), 0, "2.6 quote requests are rejected");
    let at_2_1 = agent.quotes_at("2.1");
    assert!(at_2_1 >= first + 2, "quotes at /v2.1/: {at_2_1}");
    assert_eq!(agent.quotes_served.load(Ordering::SeqCst), at_2_1);
    v.shutdown().await;

    // The negotiated version was stored: a restarted verifier polls at 2.1 straight away
    // (renegotiating now would be a refused downgrade, the agent having attested).
    let before = at_2_1;
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    wait_status(
        &admin,
        &v,
        "n1",
        LIMIT,
        "attested at 2.1 after restart",
        |_, b| {
            b["results"]["operational_state"] == 3
                && b["results"]["attestation_count"].as_u64() >= Some(before + 2)
        },
    )
    .await;
    assert_eq!(
        agent.version_requests.load(Ordering::SeqCst),
        1,
        "no renegotiation after restart"
    );
    assert_eq!(agent.quotes_at("2.6"), 0);
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrade_after_attestation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, &v, &agent, "d1").await;
    wait_status(&admin, &v, "d1", LIMIT, "attested at 2.6", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(1)
    })
    .await;
    agent.serve_only(&["2.1"]);
    let st = wait_status(&admin, &v, "d1", LIMIT, "FAILED", |_, b| {
        b["results"]["operational_state"] == 7
    })
    .await;
    assert_eq!(
        st["results"]["last_event_id"],
        "internal.verifier.version_not_supported"
    );
    assert_eq!(agent.version_requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        agent.quotes_at("2.1"),
        0,
        "no quote after a refused downgrade"
    );
    v.shutdown().await;
}

/// `update` as the tenant does it: delete (202 while polled), wait for 404, add again with
/// other metadata. The new record is the one attested, and the finished loop of the old
/// one never writes its fields back over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_add_again_attests_the_new_record_only() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let mut first = agent.add_body();
    first["metadata"] = r#"{"cert_serial": 2}"#.into();
    let path = url(&v, "/v2.6/agents/u1");
    let (code, body) = call(admin.post(&path).json(&first)).await;
    assert_eq!(code, 200, "{body}");
    wait_status(&admin, &v, "u1", LIMIT, "3 attestations", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(3)
    })
    .await;

    let (code, _) = call(admin.delete(&path)).await;
    assert!(code == 200 || code == 202, "delete answered {code}");
    wait_status(&admin, &v, "u1", LIMIT, "the delete to finish", |c, _| {
        c == 404
    })
    .await;
    let (code, body) = call(admin.post(&path).json(&agent.add_body())).await;
    assert_eq!(code, 200, "add again: {body}");

    let st = wait_status(&admin, &v, "u1", LIMIT, "5 attestations", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(5)
    })
    .await;
    assert_eq!(st["results"]["meta_data"], "{}", "{st}");
    assert_eq!(st["results"]["operational_state"], 3, "{st}");
    v.shutdown().await;
}
