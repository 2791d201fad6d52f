//! Test support for the agent: a swtpm process per test (fresh state, optionally
//! manufactured with EK certificates by `swtpm_setup`), an in-process registrar on
//! ephemeral ports, and agent configurations pointing at both.
//!
//! Fails loudly when swtpm / swtpm_setup are missing: these tests never skip.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keylime_config::{AgentConfig, Sources, UuidSetting};
use keylime_registrar::{RegistrarSettings, RunningRegistrar};
use keylime_tpm::Tcti;

/// A swtpm process serving raw TPM commands on a loopback TCP port.
pub struct Swtpm {
    child: Option<Child>,
    pub port: u16,
    state: tempfile::TempDir,
}

impl Swtpm {
    /// A fresh TPM without EK certificates or persistent keys.
    pub fn start() -> Swtpm {
        let state = tempfile::tempdir().unwrap();
        Self::spawn(state)
    }

    /// A TPM manufactured by `swtpm_setup`: RSA-2048 EK certificate at NV 0x01c00002,
    /// persistent RSA EK at 0x81010001.
    pub fn start_with_ek_certs() -> Swtpm {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new("swtpm_setup")
            .args([
                "--tpm2",
                "--create-ek-cert",
                "--create-platform-cert",
                "--overwrite",
                "--tpmstate",
            ])
            .arg(state.path())
            .output()
            .expect("swtpm_setup must be installed for this test");
        assert!(
            out.status.success(),
            "swtpm_setup failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self::spawn(state)
    }

    fn spawn(state: tempfile::TempDir) -> Swtpm {
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.path().display()))
            .args([
                "--server",
                &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
            ])
            .args([
                "--ctrl",
                &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
            ])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm must be installed for this test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "swtpm did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Swtpm {
            child: Some(child),
            port,
            state,
        }
    }

    pub fn tcti(&self) -> Tcti {
        Tcti::parse(&format!("swtpm:host=127.0.0.1,port={}", self.port)).unwrap()
    }

    pub fn tcti_string(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Transient handles currently loaded in the TPM (read via a raw connection that
    /// does not flush anything: GetCapability(HANDLES, 0x80000000)).
    pub fn transient_handles(&self) -> Vec<u32> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut cmd = Vec::new();
        cmd.extend_from_slice(&0x8001u16.to_be_bytes()); // TPM_ST_NO_SESSIONS
        cmd.extend_from_slice(&22u32.to_be_bytes());
        cmd.extend_from_slice(&0x0000_017Au32.to_be_bytes()); // GetCapability
        cmd.extend_from_slice(&1u32.to_be_bytes()); // TPM_CAP_HANDLES
        cmd.extend_from_slice(&0x8000_0000u32.to_be_bytes());
        cmd.extend_from_slice(&64u32.to_be_bytes());
        s.write_all(&cmd).unwrap();
        let mut header = [0u8; 10];
        s.read_exact(&mut header).unwrap();
        let size = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
        let rc = u32::from_be_bytes(header[6..10].try_into().unwrap());
        assert_eq!(rc, 0, "GetCapability failed");
        let mut body = vec![0u8; size - 10];
        s.read_exact(&mut body).unwrap();
        // moreData(1) capability(4) count(4) handles(4 each)
        let count = u32::from_be_bytes(body[5..9].try_into().unwrap()) as usize;
        (0..count)
            .map(|i| u32::from_be_bytes(body[9 + 4 * i..13 + 4 * i].try_into().unwrap()))
            .collect()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65000 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// A free loopback TCP port (for a registrar that starts later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Registrar settings in `dir` on the given ports (0 = any), not requiring EK certs.
pub fn registrar_settings(dir: &Path, http_port: u16) -> RegistrarSettings {
    let mut settings = RegistrarSettings::new(dir);
    settings.http_addr = format!("127.0.0.1:{http_port}").parse().unwrap();
    settings.https_addr = "127.0.0.1:0".parse().unwrap();
    settings.require_ek_cert = false;
    settings.tpm_cert_store = None;
    settings
}

pub async fn start_registrar(dir: &Path) -> RunningRegistrar {
    keylime_registrar::start(registrar_settings(dir, 0))
        .await
        .expect("registrar starts")
}

/// An agent configuration with everything under `keylime_dir`, talking plain HTTP to the
/// registrar at `registrar_port`, quick backoff.
pub fn agent_config(keylime_dir: &Path, registrar_port: u16, uuid: UuidSetting) -> AgentConfig {
    let sources = Sources::isolated(keylime_dir.join("etc"))
        .with_env("KEYLIME_DIR", keylime_dir.display().to_string());
    let mut config = AgentConfig::load_from(&sources).expect("default agent config");
    config.uuid = uuid;
    config.registrar_ip = "127.0.0.1".into();
    config.registrar_port = registrar_port;
    config.exponential_backoff_initial_delay = 50;
    config.exponential_backoff_max_delay = 400;
    config.exponential_backoff_max_retries = 3;
    config
}

pub const FIXED_UUID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";

/// An HTTPS admin client for the registrar (its generated client certificate).
pub fn admin_client(registrar: &RunningRegistrar) -> reqwest::Client {
    let dir = &registrar.tls_dir;
    let cas = keylime_pki::load_certs(&find(dir, &["cacert.crt"])).unwrap();
    let chain = keylime_pki::load_certs(&find(dir, &["client-cert.crt"])).unwrap();
    let key = keylime_pki::load_key(&find(dir, &["client-private.pem"])).unwrap();
    let tls = keylime_pki::client_config(cas, Some((chain, key))).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(std::sync::Arc::unwrap_or_clone(tls))
        .build()
        .unwrap()
}

fn find(dir: &Path, names: &[&str]) -> PathBuf {
    for n in names {
        let p = dir.join(n);
        if p.exists() {
            return p;
        }
    }
    panic!("none of {names:?} in {}", dir.display());
}

/// `GET /v2.6/agents/{id}` over the admin HTTPS port: the record when it exists and is
/// active, `None` on 404.
pub async fn registrar_record(
    registrar: &RunningRegistrar,
    agent_id: &str,
) -> Option<serde_json::Value> {
    let url = format!(
        "https://127.0.0.1:{}/v2.6/agents/{agent_id}",
        registrar.https_addr.port()
    );
    let resp = admin_client(registrar).get(url).send().await.unwrap();
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(
        resp.status().is_success(),
        "unexpected status {}",
        resp.status()
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    Some(body["results"].clone())
}

/// Polls `condition` every 50 ms until true or `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
