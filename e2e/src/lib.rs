//! Helpers for the end-to-end tests: locate the real binaries, start them as child
//! processes with their own configuration files, wait on conditions with deadlines, and
//! talk to the registrar's admin API over mTLS.
//!
//! The binaries are the ones `cargo build --workspace --bins` put beside the test
//! executable; `scripts/test.sh` builds them before running the tests.

pub mod bootlog;
pub mod deployment;
pub mod ima;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Path of a workspace binary in the same target directory as the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed when dropped, with its output in a log file.
pub struct Service {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `program` with `env` (added to a cleared-of-`KEYLIME_*` environment) and `args`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> Service {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("creating log file");
        let err = out.try_clone().expect("cloning log file handle");
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, _) in std::env::vars() {
            if k.starts_with("KEYLIME") || k == "TCTI" || k == "TPM2TOOLS_TCTI" {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        Service {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process has exited, with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit on its own (bounded), returning its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let name = self.name.clone();
        wait_until(timeout, &format!("{name} to exit"), || {
            let s = self.child.try_wait().ok().flatten();
            async move { s }
        })
        .await
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait_exit(Duration::from_secs(20)).await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports and files of one registrar deployment in a temporary `KEYLIME_DIR`.
pub struct RegistrarDeployment {
    pub dir: PathBuf,
    pub port: u16,
    pub tls_port: u16,
}

impl RegistrarDeployment {
    /// Writes upstream-format `registrar.conf` and `tenant.conf` under `dir`.
    pub fn write(
        dir: &Path,
        tpm_cert_store: Option<&Path>,
        require_ek_cert: bool,
    ) -> RegistrarDeployment {
        let (port, tls_port) = (free_port(), free_port());
        std::fs::create_dir_all(dir.join("state")).expect("state dir");
        std::fs::write(
            dir.join("registrar.conf"),
            format!(
                "[registrar]\n# written by the end-to-end test, in upstream's format\nip = 127.0.0.1\n\
                 port = {port}\ntls_port = {tls_port}\ntls_dir = generate\nserver_key = default\n\
                 server_cert = default\ntrusted_client_ca = default\ndatabase_url = sqlite\n"
            ),
        )
        .expect("registrar.conf");
        let store = tpm_cert_store
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        std::fs::write(
            dir.join("tenant.conf"),
            format!(
                "[tenant]\ntpm_cert_store = {store}\nrequire_ek_cert = {}\n",
                if require_ek_cert { "True" } else { "False" }
            ),
        )
        .expect("tenant.conf");
        RegistrarDeployment {
            dir: dir.to_path_buf(),
            port,
            tls_port,
        }
    }

    /// The environment the registrar binary runs with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KEYLIME_DIR", self.dir.join("state").display().to_string()),
            (
                "KEYLIME_REGISTRAR_CONFIG",
                self.dir.join("registrar.conf").display().to_string(),
            ),
            (
                "KEYLIME_TENANT_CONFIG",
                self.dir.join("tenant.conf").display().to_string(),
            ),
        ]
    }

    /// Starts the registrar binary and waits until it answers `/version`.
    pub async fn start(&self) -> Service {
        let mut svc = Service::spawn(
            "registrar",
            &bin("keylime_registrar"),
            &[],
            &self.env(),
            &self.dir,
        );
        let url = format!("http://127.0.0.1:{}/version", self.port);
        let http = plain_client();
        wait_until(
            Duration::from_secs(30),
            "the registrar to answer /version",
            || {
                let (http, url) = (http.clone(), url.clone());
                let exited = svc.exited();
                async move {
                    if let Some(status) = exited {
                        panic!("registrar exited early with {status}");
                    }
                    match http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => Some(()),
                        _ => None,
                    }
                }
            },
        )
        .await;
        svc
    }

    /// The generated TLS directory (`tls_dir = generate` → `$KEYLIME_DIR/reg_ca`).
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("state").join("reg_ca")
    }

    /// An HTTPS client for the admin port, with or without the generated client certificate.
    pub fn admin_client(&self, with_client_cert: bool) -> reqwest::Client {
        let tls = self.tls_dir();
        let cas = keylime_pki::load_certs(&tls.join("cacert.crt")).expect("registrar CA");
        let identity = with_client_cert.then(|| {
            (
                keylime_pki::load_certs(&tls.join("client-cert.crt")).expect("client cert"),
                keylime_pki::load_key(&tls.join("client-private.pem")).expect("client key"),
            )
        });
        let config: Arc<rustls::ClientConfig> =
            keylime_pki::client_config(cas, identity).expect("client config");
        reqwest::Client::builder()
            .use_preconfigured_tls((*config).clone())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("https client")
    }

    /// `GET /v2.6/agents/{id}` on the admin port: HTTP status and JSON body.
    pub async fn show_agent(&self, client: &reqwest::Client, id: &str) -> (u16, serde_json::Value) {
        let url = format!("https://127.0.0.1:{}/v2.6/agents/{id}", self.tls_port);
        let resp = client.get(&url).send().await.expect("admin request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }
}

/// An HTTP client for plain-HTTP endpoints (reqwest needs a rustls provider even then).
pub fn plain_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// Writes an agent TOML configuration and returns its path.
pub fn write_agent_config(dir: &Path, uuid: &str, registrar_port: u16, enc_alg: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("agent dir");
    let path = dir.join("keylime-agent.conf");
    std::fs::write(
        &path,
        format!(
            "[agent]\nuuid = \"{uuid}\"\nip = \"127.0.0.1\"\ncontact_ip = \"127.0.0.1\"\n\
             registrar_ip = \"127.0.0.1\"\nregistrar_port = {registrar_port}\nkeylime_dir = \"{}\"\n\
             tpm_hash_alg = \"sha256\"\ntpm_encryption_alg = \"{enc_alg}\"\n\
             tpm_signing_alg = \"{}\"\n",
            dir.display(),
            if enc_alg.starts_with("ecc") { "ecdsa" } else { "rsassa" }
        ),
    )
    .expect("agent config");
    path
}

/// A `tpm_cert_store` holding the CA certificates of swtpm's local CA.
pub fn cert_store_from_localca(localca: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).expect("cert store dir");
    for entry in std::fs::read_dir(localca)
        .expect("reading localca dir")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with("cert.pem") {
            std::fs::copy(entry.path(), into.join(&name)).expect("copying CA cert");
        }
    }
    into.to_path_buf()
}
