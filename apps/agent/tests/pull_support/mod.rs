//! Harness for the pull-API tests: a swtpm, an in-process registrar, the real agent
//! (`run_with_tcti`) serving HTTPS with required client certificates from a test CA (or
//! plain HTTP when a test turns `enable_agent_mtls` off), and a client for it.

#![allow(dead_code)]

pub mod delivery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keylime_config::{AgentConfig, UuidSetting};
use keylime_pki::{CaOptions, CertRole, CertificateAuthority, KeyAlgorithm};
use keylime_registrar::RunningRegistrar;
use keylime_testkit::Swtpm;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::{FIXED_UUID, agent_config, start_registrar, wait_until};

pub struct PullAgent {
    pub tpm: Swtpm,
    pub registrar: RunningRegistrar,
    pub dir: tempfile::TempDir,
    pub config: AgentConfig,
    pub client: reqwest::Client,
    pub ca: CertificateAuthority,
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn tcti(tpm: &Swtpm) -> keylime_tpm::Tcti {
    keylime_tpm::Tcti::parse(&tpm.tcti_string()).unwrap()
}

/// Starts an agent; `adjust` may change the configuration first.
pub async fn start_agent(adjust: impl FnOnce(&mut AgentConfig, &Path)) -> PullAgent {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let registrar = start_registrar(&dir.path().join("registrar")).await;
    let kd = dir.path().join("keylime");
    std::fs::create_dir_all(&kd).unwrap();
    let mut config = agent_config(
        &kd,
        registrar.http_addr.port(),
        UuidSetting::Fixed(FIXED_UUID.into()),
    );
    config.ip = "127.0.0.1".into();
    config.ima_ml_path = dir.path().join("ima.log");
    config.measuredboot_ml_path = dir.path().join("boot.log");
    config.revocation_actions_dir = dir.path().join("actions");
    std::fs::create_dir_all(&config.revocation_actions_dir).unwrap();
    let ca = CertificateAuthority::generate(&CaOptions {
        key_algorithm: KeyAlgorithm::EcdsaP256,
        ..CaOptions::default()
    })
    .unwrap();
    let ca_path = kd.join("cv_ca/cacert.crt");
    std::fs::create_dir_all(ca_path.parent().unwrap()).unwrap();
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();
    config.trusted_client_ca = vec![ca_path];
    adjust(&mut config, dir.path());

    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keylime_agent::run_with_tcti(
        config.clone(),
        tcti(&tpm),
        async {
            let _ = stop_rx.await;
        },
    ));
    let (client, base) = if config.enable_agent_mtls {
        // The server certificate exists once start-up got that far.
        wait_until(Duration::from_secs(60), "agent server certificate", || {
            let p = config.server_cert.clone();
            async move { p.exists() }
        })
        .await;
        (
            mtls_client(&ca, &config.server_cert, true),
            format!("https://127.0.0.1:{}", config.port),
        )
    } else {
        keylime_pki::install_default_provider();
        (
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            format!("http://127.0.0.1:{}", config.port),
        )
    };
    let url = format!("{base}/version");
    wait_until(Duration::from_secs(60), "pull API up", || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    PullAgent {
        tpm,
        registrar,
        dir,
        config,
        client,
        ca,
        base,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A client trusting the agent's self-signed certificate, with or without a client
/// certificate from `ca`.
pub fn mtls_client(
    ca: &CertificateAuthority,
    server_cert: &Path,
    with_cert: bool,
) -> reqwest::Client {
    let server = keylime_pki::load_certs(server_cert).unwrap();
    let identity = with_cert.then(|| {
        let issued = ca.issue(CertRole::Client, "verifier", &[]).unwrap();
        let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        (chain, key)
    });
    let tls = keylime_pki::client_config_with_extra_roots(vec![], server, identity).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl PullAgent {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Stops the agent and checks it exited cleanly and flushed its TPM objects.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("agent stops")
                .unwrap()
                .expect("agent exits cleanly");
        }
        self.registrar.shutdown().await;
    }
}
