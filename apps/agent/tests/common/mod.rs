//! Test support for the agent: the testkit's swtpm (one per test) plus a raw handle
//! listing, an in-process registrar on ephemeral ports (bound here, so never raced), agent configurations pointing at
//! both, and the agent binary as a child process.
//!
//! Fails loudly when swtpm / swtpm_setup are missing: these tests never skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keylime_config::{AgentConfig, Sources, UuidSetting};
use keylime_registrar::{RegistrarSettings, RunningRegistrar};
use keylime_tpm::Tcti;

pub use keylime_testkit::Swtpm;

/// What the agent tests need from a swtpm beyond the testkit harness.
pub trait SwtpmExt {
    fn tcti(&self) -> Tcti;
    fn transient_handles(&self) -> Vec<u32>;
}

impl SwtpmExt for Swtpm {
    fn tcti(&self) -> Tcti {
        Tcti::parse(&self.tcti_string()).unwrap()
    }

    /// Transient handles currently loaded in the TPM (read via a raw connection that
    /// does not flush anything: GetCapability(HANDLES, 0x80000000)).
    fn transient_handles(&self) -> Vec<u32> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.data_port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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

pub use keylime_testkit::ports::reserve as reserve_port;

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
    // The pull API listens here once registered; never the shared default 9002.
    config.port = reserve_port();
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

/// Starts the `keylime_agent` binary with a config file in `dir` (fixed uuid, plain HTTP
/// to `registrar_port`) and `TCTI` pointing at `tpm`.
pub fn agent_process(
    dir: &Path,
    registrar_port: u16,
    tpm: &Swtpm,
    args: &[&str],
) -> std::process::Child {
    let conf = dir.join("agent.conf");
    std::fs::write(
        &conf,
        format!(
            "[agent]\nuuid = \"{FIXED_UUID}\"\nregistrar_ip = \"127.0.0.1\"\nregistrar_port = {registrar_port}\n\
             keylime_dir = \"{}\"\nrun_as = \"\"\nexponential_backoff_initial_delay = 50\n",
            dir.display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_keylime_agent"))
        .args(args)
        .env("KEYLIME_AGENT_CONFIG", &conf)
        .env("KEYLIME_DIR", dir)
        .env("TCTI", tpm.tcti_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start keylime_agent")
}

/// Polls the child until it exits or `timeout` passes (then kills it and fails).
pub async fn wait_for_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agent process did not exit within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
