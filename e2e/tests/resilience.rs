//! End-to-end resilience: the verifier killed (SIGKILL) and restarted resumes attesting
//! every agent; a restarted agent is attested again; a failure reaches an HTTPS webhook
//! receiver with a signed revocation notice. Real binaries, swtpm, mTLS on loopback.

use std::time::Duration;

use keylime_e2e::deployment::Deployment;
use keylime_e2e::webhook::{WebhookReceiver, notice_message};
use keylime_e2e::{extend_pcr, spawn_agent, wait_until};

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2e1";

async fn status(dep: &Deployment) -> Option<serde_json::Value> {
    let (_, doc) = dep.tenant(&["-c", "cvstatus", "-u", AGENT_ID]).await;
    doc.get("results")?.get(AGENT_ID).cloned()
}

/// Waits until the agent is in "Get Quote" with more than `above` attestations.
async fn attested_beyond(dep: &Deployment, above: u64, what: &str) -> u64 {
    wait_until(Duration::from_secs(60), what, || async move {
        let s = status(dep).await?;
        let n = s["attestation_count"].as_u64()?;
        (s["operational_state"] == "Get Quote" && n > above).then_some(n)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_and_agent_restarts_resume_and_webhook_gets_the_revocation() {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    let (mut verifier, _registrar) = dep.start_servers().await;
    let hook = WebhookReceiver::start(&dep.cv_ca(), true).await;
    // Turn on the webhook notifier next to the agent notifier for the restarted verifier.
    dep.enable_webhook(&hook.url);

    let agent_dir = work.path().join("agent");
    let (config, _) = dep.write_agent_config(&agent_dir, AGENT_ID);
    let mut agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    let policy = format!("{{\"15\": [\"{}\"]}}", "0".repeat(64));
    let (ok, added) = dep
        .tenant(&["-c", "add", "-u", AGENT_ID, "--tpm_policy", &policy])
        .await;
    assert!(ok, "tenant add: {added}\n{}", agent.output());
    let before = attested_beyond(&dep, 1, "first attestations").await;

    // SIGKILL the verifier (no chance to clean up) and start it again on the same state.
    verifier.child.kill().unwrap();
    let _ = verifier.child.wait();
    let _verifier = dep.start_verifier().await;
    let resumed = attested_beyond(
        &dep,
        before,
        "attestation to resume after the verifier restart",
    )
    .await;
    assert!(
        resumed > before,
        "attestation_count kept its value and grows: {before} -> {resumed}"
    );
    let (_, list) = dep.tenant(&["-c", "cvlist"]).await;
    assert!(list.to_string().contains(AGENT_ID), "no agent lost: {list}");

    // Restart the agent: it registers again (same TPM, same AK) and is attested again.
    let status_code = agent.terminate().await;
    assert!(
        status_code.success(),
        "agent exit: {status_code}\n{}",
        agent.output()
    );
    let mut agent = spawn_agent("agent-2", &config, &tpm.tcti_string(), work.path()).await;
    let again = attested_beyond(&dep, resumed, "attestation of the restarted agent").await;
    assert!(again > resumed);

    // A failure reaches the webhook as a signed revocation notice.
    extend_pcr(&tpm.tcti_string(), 15, 0xa5);
    let notice = wait_until(Duration::from_secs(30), "the webhook notice", || {
        let first = hook.received().first().cloned();
        async move { first }
    })
    .await;
    let msg = notice_message(&notice);
    assert_eq!(msg["type"], "revocation", "{msg}");
    assert_eq!(msg["agent_id"], AGENT_ID);
    assert_eq!(msg["event_id"], "pcr_validation.invalid_pcr_15");
    // No revocation key was configured (no --cert payload): upstream sends "" then.
    assert_eq!(notice["signature"], "", "{notice}");
    assert!(
        agent.exited().is_none(),
        "the agent keeps running:\n{}",
        agent.output()
    );
}
