//! Helpers for the end-to-end tests: locate the real binaries, start them as child
//! processes with their own configuration files, wait on conditions with deadlines, and
//! talk to the registrar's admin API over mTLS.
//!
//! The binaries are the ones `cargo build --workspace --bins` put beside the test
//! executable; `scripts/test.sh` builds them before running the tests. Their ports are
//! reserved with [`keylime_testkit::ports`]; a service that still finds a port taken is
//! started again on new ones.

pub mod api_fuzz;
pub mod bootlog;
pub mod deployment;
pub mod ima;
pub mod webhook;

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

pub use keylime_testkit::ports::{Clashes, PortClash, reserve as reserve_port};

/// Starts the registrar binary with `env` (its log in `dir`) and waits until its plain-HTTP
/// `port` answers `/version`.
async fn start_registrar_binary(
    env: &[(&str, String)],
    dir: &Path,
    port: u16,
) -> Result<Service, PortClash> {
    let mut svc = Service::spawn("registrar", &bin("keylime_registrar"), &[], env, dir);
    let url = format!("http://127.0.0.1:{port}/version");
    let http = plain_client();
    wait_serving(
        &mut svc,
        Duration::from_secs(30),
        "the registrar to answer /version",
        || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        },
    )
    .await?;
    Ok(svc)
}

/// A new reserved port in place of `old` in the configuration `files`.
pub fn move_port(files: &[&Path], old: u16) -> u16 {
    let new = reserve_port();
    keylime_testkit::ports::relocate(files, old, new);
    new
}

/// Waits until `ready` says `service` serves: `Err` if it could not bind a port, a panic
/// with its output if it exits, a panic naming `what` after `timeout`.
pub async fn wait_serving<F, Fut>(
    service: &mut Service,
    timeout: Duration,
    what: &str,
    mut ready: F,
) -> Result<(), PortClash>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until(timeout, what, || {
        let starting = service.check_starting();
        let ready = ready();
        async move {
            match starting {
                Err(clash) => Some(Err(clash)),
                Ok(()) => ready.await.then_some(Ok(())),
            }
        }
    })
    .await
}

/// Starts the agent binary with the configuration file `config` on the TPM at `tcti` and
/// waits until its pull API accepts connections. An agent whose port was taken keeps
/// running unattestable, so then it is stopped, its port moved in `config` and started
/// again. Panics with its output if it exits.
pub async fn spawn_agent(name: &str, config: &Path, tcti: &str, work: &Path) -> Service {
    let env = vec![
        ("KEYLIME_AGENT_CONFIG", config.display().to_string()),
        ("TCTI", tcti.to_owned()),
    ];
    let mut clashes = Clashes::new(format!("the agent {name}"));
    loop {
        let port = config_port(config, "port");
        let mut agent = Service::spawn(name, &bin("keylime_agent"), &[], &env, work);
        let listening = wait_serving(
            &mut agent,
            Duration::from_secs(60),
            "the agent's pull API to listen",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        match listening {
            Ok(()) => return agent,
            Err(clash) => clashes.record(clash),
        }
        drop(agent);
        move_port(&[config], port);
    }
}

/// The value of the line `key = <port>` in a configuration file.
pub fn config_port(file: &Path, key: &str) -> u16 {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').parse().ok())?
        })
        .unwrap_or_else(|| panic!("no `{key} = <port>` line in {}", file.display()))
}

/// Extends SHA-256 PCR `pcr` of the TPM at `tcti` with `byte` repeated (as a tampered
/// machine would), with `tpm2_pcrextend`; panics with its output on failure.
pub fn extend_pcr(tcti: &str, pcr: u8, byte: u8) {
    let digest = format!("{byte:02x}").repeat(32);
    keylime_testkit::swtpm::pcr_extend(tcti, &format!("{pcr}:sha256={digest}"));
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

    /// Panics with the process's output if it has exited (`what` says when it should not
    /// have).
    pub fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.exited() {
            panic!("{} exited ({status}) {what}:\n{}", self.name, self.output());
        }
    }

    /// `Err` with its output when the process could not bind a port (whether it exited or,
    /// as the agent does, kept running without that listener); panics with its output if it
    /// exited for any other reason.
    pub fn check_starting(&mut self) -> Result<(), PortClash> {
        let exited = self.exited();
        keylime_testkit::ports::check_starting(&self.name, &self.output(), exited)
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
        let (port, tls_port) = (reserve_port(), reserve_port());
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

    /// Starts the registrar binary and waits until it answers `/version`; when one of its
    /// ports was taken, moves both to new reserved ports and starts it again.
    pub async fn start(&mut self) -> Service {
        let mut clashes = Clashes::new("the registrar");
        loop {
            match self.try_start().await {
                Ok(svc) => return svc,
                Err(clash) => clashes.record(clash),
            }
            let conf = self.dir.join("registrar.conf");
            self.port = move_port(&[&conf], self.port);
            self.tls_port = move_port(&[&conf], self.tls_port);
        }
    }

    async fn try_start(&self) -> Result<Service, PortClash> {
        start_registrar_binary(&self.env(), &self.dir, self.port).await
    }

    /// The generated TLS directory (`tls_dir = generate` → `$KEYLIME_DIR/reg_ca`).
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("state").join("reg_ca")
    }

    /// An HTTPS client for the admin port, with or without the generated client certificate.
    pub fn admin_client(&self, with_client_cert: bool) -> reqwest::Client {
        tls_dir_client(&self.tls_dir(), with_client_cert)
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

/// An HTTPS client trusting the CA of a generated TLS directory (`cacert.crt`), presenting
/// its client certificate (`client-cert.crt`, `client-private.pem`) if asked.
pub fn tls_dir_client(tls: &Path, with_client_cert: bool) -> reqwest::Client {
    let cas = keylime_pki::load_certs(&tls.join("cacert.crt")).expect("CA certificate");
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

/// An HTTP client for plain-HTTP endpoints (reqwest needs a rustls provider even then).
pub fn plain_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// Writes an agent TOML configuration and returns its path. Its pull API port is a reserved
/// one, never the shared default 9002.
pub fn write_agent_config(dir: &Path, uuid: &str, registrar_port: u16, enc_alg: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("agent dir");
    let path = dir.join("keylime-agent.conf");
    let port = reserve_port();
    std::fs::write(
        &path,
        format!(
            "[agent]\nuuid = \"{uuid}\"\nip = \"127.0.0.1\"\nport = {port}\ncontact_ip = \"127.0.0.1\"\n\
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
