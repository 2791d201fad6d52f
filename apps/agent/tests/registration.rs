//! The agent registering for real: swtpm as the TPM, the registrar in-process, real
//! HTTP(S) on loopback. Each test has its own swtpm, registrar and keylime_dir.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use keylime_agent::{agent_id, register_once, run_with_tcti};
use keylime_config::{EkHandleSetting, UuidSetting};
use keylime_tpm::{Public, PublicKey};

fn public_of(b64: &str) -> Public {
    Public::from_tpm2b(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn fixed() -> UuidSetting {
    UuidSetting::Fixed(FIXED_UUID.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_ek_without_cert_registers_and_flushes() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), registrar.http_addr.port(), fixed());

    let registered = register_once(&config, tpm.tcti()).await.unwrap();
    assert_eq!(registered.agent_id, FIXED_UUID);
    assert_eq!(registered.api_version.to_string(), "2.6");
    assert!(!registered.ak_reused);
    assert!(matches!(
        public_of(&registered.ek_tpm).key,
        PublicKey::Rsa { bits: 2048, .. }
    ));

    let record = registrar_record(&registrar, FIXED_UUID)
        .await
        .expect("agent is active at the registrar");
    assert_eq!(record["aik_tpm"], registered.aik_tpm);
    assert_eq!(record["ek_tpm"], registered.ek_tpm);
    assert_eq!(record["ekcert"], serde_json::Value::Null);
    assert_eq!(record["ip"], "127.0.0.1");
    assert_eq!(record["port"], 9002);
    let mtls = record["mtls_cert"].as_str().unwrap();
    assert!(mtls.starts_with("-----BEGIN CERTIFICATE-----"), "{mtls}");
    assert_eq!(mtls, registered.mtls_cert);
    assert!(config.server_cert.exists() && config.server_key.exists());
    assert!(config.agent_data_path.exists());

    assert_eq!(
        tpm.transient_handles(),
        Vec::<u32>::new(),
        "agent left objects loaded"
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecc_ek_registers() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config(dir.path(), registrar.http_addr.port(), fixed());
    config.tpm_encryption_alg = "ecc".into();

    let registered = register_once(&config, tpm.tcti()).await.unwrap();
    assert!(matches!(
        public_of(&registered.ek_tpm).key,
        PublicKey::Ecc { .. }
    ));
    let record = registrar_record(&registrar, FIXED_UUID)
        .await
        .expect("active");
    assert_eq!(record["ek_tpm"], registered.ek_tpm);
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ek_cert_from_nv_is_sent_and_persistent_ek_matches() {
    let tpm = Swtpm::start_with_ek_certs();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), registrar.http_addr.port(), fixed());

    let registered = register_once(&config, tpm.tcti()).await.unwrap();
    let record = registrar_record(&registrar, FIXED_UUID)
        .await
        .expect("active");
    let ekcert_der = STANDARD
        .decode(record["ekcert"].as_str().expect("ekcert stored"))
        .unwrap();
    let cert_spki = keylime_pki::ek_cert_public_key_spki(&ekcert_der).unwrap();
    assert_eq!(cert_spki, public_of(&registered.ek_tpm).spki_der().unwrap());

    // swtpm_setup also persisted the same EK at 0x81010001: using it gives the same EK
    // and, the data file matching, the same AK.
    let mut persistent = config.clone();
    persistent.ek_handle = EkHandleSetting::Persistent(0x8101_0001);
    let again = register_once(&persistent, tpm.tcti()).await.unwrap();
    assert_eq!(again.ek_tpm, registered.ek_tpm);
    assert_eq!(again.aik_tpm, registered.aik_tpm);
    assert!(again.ak_reused);
    assert_eq!(tpm.transient_handles(), Vec::<u32>::new());
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ak_is_persisted_and_reused_across_runs() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), registrar.http_addr.port(), fixed());

    let first = register_once(&config, tpm.tcti()).await.unwrap();
    let second = register_once(&config, tpm.tcti()).await.unwrap();
    assert!(!first.ak_reused);
    assert!(second.ak_reused, "second run must reuse the stored AK");
    assert_eq!(first.aik_tpm, second.aik_tpm);
    let record = registrar_record(&registrar, FIXED_UUID)
        .await
        .expect("active after re-registration");
    assert_eq!(record["aik_tpm"], first.aik_tpm);
    assert_eq!(record["regcount"], 2);
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_file_of_another_tpm_is_not_reused() {
    let tpm_a = Swtpm::start();
    let tpm_b = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(
        dir.path(),
        registrar.http_addr.port(),
        UuidSetting::Generate,
    );

    let a = register_once(&config, tpm_a.tcti()).await.unwrap();
    let b = register_once(&config, tpm_b.tcti()).await.unwrap();
    assert_ne!(a.ek_tpm, b.ek_tpm);
    assert!(
        !b.ak_reused,
        "an AK stored for another EK must not be loaded"
    );
    assert_ne!(a.aik_tpm, b.aik_tpm);
    assert_ne!(
        a.agent_id, b.agent_id,
        "generate picks a new id every start"
    );
    assert!(uuid::Uuid::parse_str(&a.agent_id).is_ok());
    assert!(registrar_record(&registrar, &a.agent_id).await.is_some());
    assert!(registrar_record(&registrar, &b.agent_id).await.is_some());
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_ek_uuid_is_the_digest_of_the_ek_pem() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), registrar.http_addr.port(), UuidSetting::HashEk);

    let registered = register_once(&config, tpm.tcti()).await.unwrap();
    let spki = public_of(&registered.ek_tpm).spki_der().unwrap();
    assert_eq!(registered.agent_id, agent_id::hash_ek(&spki));
    assert_eq!(registered.agent_id.len(), 64);
    assert!(
        registrar_record(&registrar, &registered.agent_id)
            .await
            .is_some()
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_tpm_under_the_same_uuid_is_refused() {
    let tpm_a = Swtpm::start();
    let tpm_b = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    register_once(
        &agent_config(dir_a.path(), registrar.http_addr.port(), fixed()),
        tpm_a.tcti(),
    )
    .await
    .unwrap();
    let err = register_once(
        &agent_config(dir_b.path(), registrar.http_addr.port(), fixed()),
        tpm_b.tcti(),
    )
    .await
    .expect_err("a different EK under the same id must be refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("403") && text.contains("different TPM identity"),
        "{text}"
    );
    assert_eq!(
        tpm_b.transient_handles(),
        Vec::<u32>::new(),
        "objects flushed on failure too"
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registration_and_mtls_disabled() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config(dir.path(), 1, fixed()); // plain port unusable
    config.registrar_tls_enabled = true;
    config.registrar_tls_port = registrar.https_addr.port();
    config.registrar_tls_ca_cert = registrar.tls_dir.join("cacert.crt");
    config.enable_agent_mtls = false;

    let registered = register_once(&config, tpm.tcti()).await.unwrap();
    assert_eq!(registered.mtls_cert, "disabled");
    let record = registrar_record(&registrar, FIXED_UUID)
        .await
        .expect("active");
    assert_eq!(record["mtls_cert"], "disabled");
    assert!(
        !config.server_cert.exists(),
        "no server certificate is made with mTLS off"
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_down_at_first_then_started() {
    let tpm = Swtpm::start();
    let port = reserve_port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config(dir.path(), port, fixed());
    config.exponential_backoff_initial_delay = 100;
    config.exponential_backoff_max_delay = 1_000;
    config.exponential_backoff_max_retries = 30;

    // Something that drops connections stands on the port until the agent has tried it.
    let blocker = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut agent = tokio::spawn(run_with_tcti(config, tpm.tcti(), async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        accepted = tokio::time::timeout(Duration::from_secs(60), blocker.accept()) => {
            drop(accepted.expect("agent tried the registrar within 60 s").unwrap());
        }
        ended = &mut agent => panic!("agent ended before reaching the registrar: {ended:?}"),
    }
    drop(blocker);

    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = keylime_registrar::start(registrar_settings(reg_dir.path(), port))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        "registration after backoff",
        || async { registrar_record(&registrar, FIXED_UUID).await.is_some() },
    )
    .await;
    assert!(
        !agent.is_finished(),
        "the agent keeps running after registration"
    );
    assert!(
        !tpm.transient_handles().is_empty(),
        "the running agent holds EK and AK"
    );

    stop_tx.send(()).unwrap();
    agent.await.unwrap().unwrap();
    assert_eq!(
        tpm.transient_handles(),
        Vec::<u32>::new(),
        "shutdown flushes the agent's objects"
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_process_cleanly() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = agent_process(dir.path(), registrar.http_addr.port(), &tpm, &[]);
    wait_until(
        Duration::from_secs(60),
        "the agent process to register",
        || async { registrar_record(&registrar, FIXED_UUID).await.is_some() },
    )
    .await;
    assert!(
        !tpm.transient_handles().is_empty(),
        "the running agent holds EK and AK"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(30)).await;
    assert!(status.success(), "agent exited with {status}");
    assert_eq!(
        tpm.transient_handles(),
        Vec::<u32>::new(),
        "SIGTERM flushes the agent's objects"
    );
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_only_flag_exits_zero_after_activation() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = agent_process(
        dir.path(),
        registrar.http_addr.port(),
        &tpm,
        &["--register-only"],
    );
    let status = wait_for_exit(&mut child, Duration::from_secs(60)).await;
    assert!(status.success(), "agent exited with {status}");
    assert!(
        registrar_record(&registrar, FIXED_UUID).await.is_some(),
        "registered and active"
    );
    assert_eq!(tpm.transient_handles(), Vec::<u32>::new());
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_process_leaves_no_lasting_damage() {
    let tpm = Swtpm::start();
    let reg_dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(reg_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = agent_process(dir.path(), registrar.http_addr.port(), &tpm, &[]);
    wait_until(
        Duration::from_secs(60),
        "the agent process to register",
        || async { registrar_record(&registrar, FIXED_UUID).await.is_some() },
    )
    .await;
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    assert!(
        !tpm.transient_handles().is_empty(),
        "a killed agent leaves its EK/AK loaded in swtpm"
    );

    let config = agent_config(dir.path(), registrar.http_addr.port(), fixed());
    let registered = register_once(&config, tpm.tcti())
        .await
        .expect("next start copes with stale handles");
    assert!(registered.ak_reused);
    assert_eq!(tpm.transient_handles(), Vec::<u32>::new());
    registrar.shutdown().await;
}
