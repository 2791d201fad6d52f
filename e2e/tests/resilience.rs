//! End-to-end resilience: the verifier killed (SIGKILL) and restarted resumes attesting
//! every agent; a restarted agent is attested again; a failure reaches an HTTPS webhook
//! receiver with a signed revocation notice. Real binaries, swtpm, mTLS on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use keylime_e2e::deployment::Deployment;
use keylime_e2e::{spawn_agent, wait_until};

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2e1";

/// An HTTPS webhook receiver with a server certificate from the verifier's own CA (which
/// the verifier trusts as `trusted_server_ca`). Returns its URL and the bodies received.
async fn start_webhook(dep: &Deployment) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let ca_dir = dep.cv_ca();
    let ca = keylime_pki::CertificateAuthority::load(
        &std::fs::read_to_string(ca_dir.join("cacert.crt")).unwrap(),
        &std::fs::read_to_string(ca_dir.join("ca-private.pem")).unwrap(),
        &keylime_pki::CaOptions::default(),
    )
    .unwrap();
    let issued = ca
        .issue(
            keylime_pki::CertRole::Server,
            "webhook",
            &["127.0.0.1".to_string()],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &issued.key_pem).unwrap();
    let chain = keylime_pki::load_certs(&dir.path().join("c.pem")).unwrap();
    let key = keylime_pki::load_key(&dir.path().join("k.pem")).unwrap();
    let config = keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::None).unwrap();

    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx); // serve for the whole test
    tokio::spawn(keylime_web::listener::serve(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(config)),
        app,
        keylime_web::limits::ConnectionLimits::default(),
        rx,
    ));
    (format!("https://127.0.0.1:{port}/hook"), received)
}

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
    let (hook_url, received) = start_webhook(&dep).await;
    // Turn on the webhook notifier next to the agent notifier for the restarted verifier.
    let conf = dep.dir.join("verifier.conf");
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "enabled_revocation_notifications = ['agent']",
        &format!(
            "enabled_revocation_notifications = ['agent', 'webhook']\nwebhook_url = {hook_url}"
        ),
    );
    std::fs::write(&conf, text).unwrap();

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
    let extended = std::process::Command::new("tpm2_pcrextend")
        .arg(format!("15:sha256={}", "a5".repeat(32)))
        .env("TPM2TOOLS_TCTI", tpm.tcti_string())
        .output()
        .expect("running tpm2_pcrextend");
    assert!(
        extended.status.success(),
        "{}",
        String::from_utf8_lossy(&extended.stderr)
    );
    let notice = wait_until(Duration::from_secs(30), "the webhook notice", || {
        let first = received.lock().unwrap().first().cloned();
        async move { first }
    })
    .await;
    let msg: serde_json::Value =
        serde_json::from_str(notice["msg"].as_str().expect("msg is a JSON string"))
            .expect("msg parses");
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
