//! End-to-end registration: swtpm, the real `keylime_registrar` and `keylime_agent`
//! binaries, configuration in upstream's file formats, real mTLS on loopback.

use std::time::Duration;

use keylime_e2e::{
    RegistrarDeployment, Service, bin, cert_store_from_localca, wait_until, write_agent_config,
};
use keylime_testkit::swtpm::Swtpm;

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c00001";

fn agent_env(config: &std::path::Path, tpm: &Swtpm) -> Vec<(&'static str, String)> {
    vec![
        ("KEYLIME_AGENT_CONFIG", config.display().to_string()),
        ("TCTI", tpm.tcti_string()),
    ]
}

/// Waits until the registrar's admin API shows `id` as active (200), returning the record.
async fn wait_active(
    reg: &RegistrarDeployment,
    id: &str,
    agent: &mut Service,
) -> serde_json::Value {
    let client = reg.admin_client(true);
    wait_until(
        Duration::from_secs(60),
        "the agent to be listed as active",
        || {
            let client = client.clone();
            let exited = agent.exited();
            let log = agent.output();
            async move {
                if let Some(status) = exited.filter(|s| !s.success()) {
                    panic!("agent exited with {status}:\n{log}");
                }
                let (status, body) = reg.show_agent(&client, id).await;
                (status == 200).then_some(body)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_agent_with_ek_cert_registers_and_survives_registrar_restart() {
    let tpm = Swtpm::start_with_ek_certs();
    let work = tempfile::tempdir().unwrap();
    let store = cert_store_from_localca(
        tpm.localca_dir().expect("localca"),
        &work.path().join("tpm_cert_store"),
    );
    let mut reg = RegistrarDeployment::write(&work.path().join("registrar"), Some(&store), true);
    let mut registrar = reg.start().await;

    let config = write_agent_config(&work.path().join("agent"), AGENT_ID, reg.port, "rsa");
    let mut agent = Service::spawn(
        "agent",
        &bin("keylime_agent"),
        &[],
        &agent_env(&config, &tpm),
        work.path(),
    );
    let record = wait_active(&reg, AGENT_ID, &mut agent).await;

    let results = &record["results"];
    assert_eq!(record["code"], 200);
    assert_eq!(results["regcount"], 1, "record: {record}");
    assert!(
        results["ekcert"].as_str().is_some_and(|s| !s.is_empty()),
        "EK certificate stored: {record}"
    );
    assert!(
        results["aik_tpm"].as_str().is_some_and(|s| s.len() > 100),
        "AK stored: {record}"
    );
    assert!(
        results["mtls_cert"]
            .as_str()
            .is_some_and(|s| s.contains("BEGIN CERTIFICATE"))
    );
    assert_eq!(results["ip"], "127.0.0.1");

    // The list shows it, and the admin API refuses a client without a certificate.
    let client = reg.admin_client(true);
    let list: serde_json::Value = client
        .get(format!("https://127.0.0.1:{}/v2.6/agents/", reg.tls_port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["results"]["uuids"], serde_json::json!([AGENT_ID]));
    let anonymous = reg.admin_client(false);
    let resp = anonymous
        .get(format!("https://127.0.0.1:{}/v2.6/agents/", reg.tls_port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // The agent keeps running after registration; SIGTERM stops it cleanly.
    assert!(
        agent.exited().is_none(),
        "agent exited after registering:\n{}",
        agent.output()
    );
    let status = agent.terminate().await;
    assert!(
        status.success(),
        "agent exit status {status}:\n{}",
        agent.output()
    );

    // Restart the registrar on the same state directory: the agent is still there, and the
    // CA was reused (the old client certificate still works).
    let status = registrar.terminate().await;
    assert!(
        status.success(),
        "registrar exit status {status}:\n{}",
        registrar.output()
    );
    let _registrar = reg.start().await;
    let (status, again) = reg.show_agent(&client, AGENT_ID).await;
    assert_eq!(status, 200, "after restart: {again}");
    assert_eq!(again["results"], record["results"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecc_agent_without_ek_cert_registers_when_not_required_and_keeps_its_ak() {
    let tpm = Swtpm::start();
    let work = tempfile::tempdir().unwrap();
    let mut reg = RegistrarDeployment::write(&work.path().join("registrar"), None, false);
    let _registrar = reg.start().await;

    let config = write_agent_config(&work.path().join("agent"), AGENT_ID, reg.port, "ecc");
    let env = agent_env(&config, &tpm);
    let mut first = Service::spawn(
        "agent-1",
        &bin("keylime_agent"),
        &["--register-only"],
        &env,
        work.path(),
    );
    let status = first.wait_exit(Duration::from_secs(120)).await;
    assert!(
        status.success(),
        "agent exit status {status}:\n{}",
        first.output()
    );
    let client = reg.admin_client(true);
    let (code, record) = reg.show_agent(&client, AGENT_ID).await;
    assert_eq!(code, 200, "{record}");
    assert!(
        record["results"]["ekcert"].is_null(),
        "no EK certificate in NV: {record}"
    );

    // A second start reuses the stored AK: same identity, so the registrar accepts the
    // re-registration and counts it.
    let mut second = Service::spawn(
        "agent-2",
        &bin("keylime_agent"),
        &["--register-only"],
        &env,
        work.path(),
    );
    let status = second.wait_exit(Duration::from_secs(120)).await;
    assert!(
        status.success(),
        "second run exit status {status}:\n{}",
        second.output()
    );
    let (code, again) = reg.show_agent(&client, AGENT_ID).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again["results"]["aik_tpm"], record["results"]["aik_tpm"],
        "AK kept across restarts"
    );
    assert_eq!(again["results"]["regcount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_without_ek_cert_is_refused_when_ek_cert_required() {
    let tpm = Swtpm::start();
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("empty_store");
    std::fs::create_dir_all(&store).unwrap();
    let mut reg = RegistrarDeployment::write(&work.path().join("registrar"), Some(&store), true);
    let _registrar = reg.start().await;

    let config = write_agent_config(&work.path().join("agent"), AGENT_ID, reg.port, "rsa");
    let mut agent = Service::spawn(
        "agent",
        &bin("keylime_agent"),
        &["--register-only"],
        &agent_env(&config, &tpm),
        work.path(),
    );
    let status = agent.wait_exit(Duration::from_secs(120)).await;
    assert!(
        !status.success(),
        "registration must fail:\n{}",
        agent.output()
    );
    let client = reg.admin_client(true);
    let (code, body) = reg.show_agent(&client, AGENT_ID).await;
    assert_eq!(code, 404, "nothing stored for a refused agent: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_tpm_claiming_a_registered_id_is_refused() {
    let genuine = Swtpm::start();
    let impostor = Swtpm::start();
    let work = tempfile::tempdir().unwrap();
    let mut reg = RegistrarDeployment::write(&work.path().join("registrar"), None, false);
    let _registrar = reg.start().await;

    let config = write_agent_config(&work.path().join("genuine"), AGENT_ID, reg.port, "rsa");
    let mut agent = Service::spawn(
        "genuine",
        &bin("keylime_agent"),
        &["--register-only"],
        &agent_env(&config, &genuine),
        work.path(),
    );
    assert!(
        agent.wait_exit(Duration::from_secs(120)).await.success(),
        "{}",
        agent.output()
    );
    let client = reg.admin_client(true);
    let (_, before) = reg.show_agent(&client, AGENT_ID).await;

    let config = write_agent_config(&work.path().join("impostor"), AGENT_ID, reg.port, "rsa");
    let mut rogue = Service::spawn(
        "impostor",
        &bin("keylime_agent"),
        &["--register-only"],
        &agent_env(&config, &impostor),
        work.path(),
    );
    let status = rogue.wait_exit(Duration::from_secs(120)).await;
    assert!(
        !status.success(),
        "impostor must be refused:\n{}",
        rogue.output()
    );
    let (code, after) = reg.show_agent(&client, AGENT_ID).await;
    assert_eq!(code, 200);
    assert_eq!(after, before, "the genuine record is unchanged");
}
