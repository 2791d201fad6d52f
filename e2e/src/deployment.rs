//! A whole single-host deployment as upstream lays it out: the verifier, registrar and
//! tenant share one `KEYLIME_DIR`; the verifier starts first and generates `cv_ca` (CA,
//! server and client certificates), the registrar uses that directory (`tls_dir = default`)
//! and the tenant uses its client certificate. Configuration is written as upstream's
//! `verifier.conf`, `registrar.conf` and `tenant.conf`. A service that finds a port taken
//! is started again with that port moved in every file naming it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Clashes, PortClash, Service, bin, move_port, reserve_port, spawn_agent, wait_serving};
use keylime_testkit::swtpm::Swtpm;

/// Which of the deployment's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Verifier,
    Registrar,
}

/// Ports and files of one deployment.
pub struct Deployment {
    pub dir: PathBuf,
    pub verifier_port: u16,
    pub registrar_port: u16,
    pub registrar_tls_port: u16,
    /// Environment for the verifier alone, beside [`Self::env`] (e.g. a preloaded clock).
    pub verifier_env: Vec<(&'static str, String)>,
}

impl Deployment {
    /// Writes the three service configurations under `dir`.
    pub fn write(dir: &Path, tpm_cert_store: &Path, require_ek_cert: bool) -> Deployment {
        Self::write_with(dir, tpm_cert_store, require_ek_cert, "")
    }

    /// [`Self::write`] with `verifier_extra` lines in the `[verifier]` section (e.g.
    /// `measured_boot_policy_name = example`).
    pub fn write_with(
        dir: &Path,
        tpm_cert_store: &Path,
        require_ek_cert: bool,
        verifier_extra: &str,
    ) -> Deployment {
        let d = Deployment {
            dir: dir.to_path_buf(),
            verifier_port: reserve_port(),
            registrar_port: reserve_port(),
            registrar_tls_port: reserve_port(),
            verifier_env: Vec::new(),
        };
        std::fs::create_dir_all(d.keylime_dir()).expect("state dir");
        let write =
            |name: &str, text: String| std::fs::write(dir.join(name), text).expect("config file");
        write(
            "verifier.conf",
            format!(
                "[verifier]\nip = 127.0.0.1\nport = {}\ntls_dir = generate\nserver_key = default\n\
                 server_cert = default\ntrusted_client_ca = default\nclient_key = default\n\
                 client_cert = default\ntrusted_server_ca = default\ndatabase_url = sqlite\n\
                 quote_interval = 1\nretry_interval = 1\nexponential_backoff = False\nmax_retries = 3\n\
                 registrar_ip = 127.0.0.1\nregistrar_port = {}\n{verifier_extra}\n\n[revocations]\n\
                 enabled_revocation_notifications = ['agent']\n",
                d.verifier_port, d.registrar_tls_port
            ),
        );
        write(
            "registrar.conf",
            format!(
                "[registrar]\nip = 127.0.0.1\nport = {}\ntls_port = {}\ntls_dir = default\n\
                 server_key = default\nserver_cert = default\ntrusted_client_ca = default\n\
                 database_url = sqlite\n",
                d.registrar_port, d.registrar_tls_port
            ),
        );
        write(
            "tenant.conf",
            format!(
                "[tenant]\nverifier_ip = 127.0.0.1\nverifier_port = {}\nregistrar_ip = 127.0.0.1\n\
                 registrar_port = {}\ntls_dir = default\nclient_key = default\nclient_cert = default\n\
                 trusted_server_ca = default\ntpm_cert_store = {}\nrequire_ek_cert = {}\n\
                 max_retries = 10\nretry_interval = 1\n",
                d.verifier_port,
                d.registrar_tls_port,
                tpm_cert_store.display(),
                if require_ek_cert { "True" } else { "False" }
            ),
        );
        d
    }

    /// A swtpm with EK certificates, a work directory, and a deployment under `work/deploy`
    /// whose `tpm_cert_store` holds the swtpm's EK CA (EK certificates required).
    pub fn with_swtpm() -> (Swtpm, tempfile::TempDir, Deployment) {
        let tpm = Swtpm::start_with_ek_certs();
        let work = tempfile::tempdir().expect("work directory");
        let store = crate::cert_store_from_localca(
            tpm.localca_dir().expect("localca"),
            &work.path().join("tpm_cert_store"),
        );
        let dep = Deployment::write(&work.path().join("deploy"), &store, true);
        (tpm, work, dep)
    }

    /// `KEYLIME_DIR` of the services.
    pub fn keylime_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The verifier's generated CA directory.
    pub fn cv_ca(&self) -> PathBuf {
        self.keylime_dir().join("cv_ca")
    }

    /// Turns on the webhook notifier (next to the agent notifier) with `url`, for the
    /// verifier started next.
    pub fn enable_webhook(&self, url: &str) {
        let conf = self.dir.join("verifier.conf");
        let text = std::fs::read_to_string(&conf).expect("verifier.conf");
        let agent_only = "enabled_revocation_notifications = ['agent']";
        assert!(text.contains(agent_only), "{text}");
        let text = text.replace(
            agent_only,
            &format!(
                "enabled_revocation_notifications = ['agent', 'webhook']\nwebhook_url = {url}"
            ),
        );
        std::fs::write(&conf, text).expect("verifier.conf");
    }

    /// `GET path` (e.g. `/v2.6/agents/ID`) on the verifier, or on the registrar's TLS port,
    /// with the deployment's client certificate (from `cv_ca`, as the tenant uses).
    pub async fn admin_get(&self, service: Server, path: &str) -> reqwest::Response {
        let port = match service {
            Server::Verifier => self.verifier_port,
            Server::Registrar => self.registrar_tls_port,
        };
        crate::tls_dir_client(&self.cv_ca(), true)
            .get(format!("https://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the {service:?}: {e}"))
    }

    /// Environment shared by the services and the tenant.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let p = |n: &str| self.dir.join(n).display().to_string();
        vec![
            ("KEYLIME_DIR", self.keylime_dir().display().to_string()),
            ("KEYLIME_VERIFIER_CONFIG", p("verifier.conf")),
            ("KEYLIME_REGISTRAR_CONFIG", p("registrar.conf")),
            ("KEYLIME_TENANT_CONFIG", p("tenant.conf")),
        ]
    }

    /// The three configuration files (ports appear in several).
    fn files(&self) -> [PathBuf; 3] {
        ["verifier.conf", "registrar.conf", "tenant.conf"].map(|n| self.dir.join(n))
    }

    fn move_port(&self, old: u16) -> u16 {
        let files = self.files();
        move_port(&files.each_ref().map(PathBuf::as_path), old)
    }

    /// Starts the verifier, then the registrar (it uses the verifier's `cv_ca`), and waits
    /// until both answer `/version`. When a port of either was taken it is moved, and both
    /// start again (the verifier reads the registrar's port when it starts).
    pub async fn start_servers(&mut self) -> (Service, Service) {
        let mut clashes = Clashes::new("the verifier and registrar");
        loop {
            let verifier = match self.try_start_verifier().await {
                Ok(verifier) => verifier,
                Err(clash) => {
                    clashes.record(clash);
                    self.verifier_port = self.move_port(self.verifier_port);
                    continue;
                }
            };
            match self.try_start_registrar().await {
                Ok(registrar) => return (verifier, registrar),
                Err(clash) => clashes.record(clash),
            }
            drop(verifier);
            self.registrar_port = self.move_port(self.registrar_port);
            self.registrar_tls_port = self.move_port(self.registrar_tls_port);
        }
    }

    /// Starts the verifier alone (again, after [`Self::start_servers`]) and waits until it
    /// answers `/version`; its port is moved if taken.
    pub async fn start_verifier(&mut self) -> Service {
        let mut clashes = Clashes::new("the verifier");
        loop {
            match self.try_start_verifier().await {
                Ok(verifier) => return verifier,
                Err(clash) => clashes.record(clash),
            }
            self.verifier_port = self.move_port(self.verifier_port);
        }
    }

    async fn try_start_verifier(&self) -> Result<Service, PortClash> {
        let mut env = self.env();
        env.extend(self.verifier_env.iter().cloned());
        let mut svc = Service::spawn("verifier", &bin("keylime_verifier"), &[], &env, &self.dir);
        let ca = self.cv_ca().join("cacert.crt");
        let url = format!("https://127.0.0.1:{}/version", self.verifier_port);
        wait_serving(
            &mut svc,
            Duration::from_secs(60),
            "the verifier to answer /version",
            || {
                let (ca, url) = (ca.clone(), url.clone());
                async move {
                    let Some(client) = tls_client(&ca) else {
                        return false;
                    };
                    client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await?;
        Ok(svc)
    }

    async fn try_start_registrar(&self) -> Result<Service, PortClash> {
        crate::start_registrar_binary(&self.env(), &self.dir, self.registrar_port).await
    }

    /// Writes a pull-mode agent configuration (mTLS on, trusting `cv_ca`) and returns
    /// its path and the agent's port.
    pub fn write_agent_config(&self, agent_dir: &Path, uuid: &str) -> (PathBuf, u16) {
        self.write_agent_config_with(agent_dir, uuid, "")
    }

    /// [`Self::write_agent_config`] with `extra` TOML lines in the `[agent]` table (e.g.
    /// `ima_ml_path = "..."`).
    pub fn write_agent_config_with(
        &self,
        agent_dir: &Path,
        uuid: &str,
        extra: &str,
    ) -> (PathBuf, u16) {
        std::fs::create_dir_all(agent_dir).expect("agent dir");
        let port = reserve_port();
        let path = agent_dir.join("keylime-agent.conf");
        std::fs::write(
            &path,
            format!(
                "[agent]\nuuid = \"{uuid}\"\nip = \"127.0.0.1\"\nport = {port}\ncontact_ip = \"127.0.0.1\"\n\
                 contact_port = {port}\nregistrar_ip = \"127.0.0.1\"\nregistrar_port = {}\n\
                 keylime_dir = \"{}\"\ntrusted_client_ca = \"{}\"\nenable_agent_mtls = true\n\
                 tpm_hash_alg = \"sha256\"\ntpm_encryption_alg = \"rsa\"\ntpm_signing_alg = \"rsassa\"\n\
                 revocation_actions_dir = \"{}\"\n{extra}\n",
                self.registrar_port,
                agent_dir.display(),
                self.cv_ca().join("cacert.crt").display(),
                agent_dir.join("actions").display(),
            ),
        )
        .expect("agent config");
        (path, port)
    }

    /// Writes an agent configuration (with `extra` `[agent]` lines), starts the agent on
    /// the TPM at `tcti` and waits until its pull API listens (see [`spawn_agent`]).
    pub async fn start_agent(
        &self,
        agent_dir: &Path,
        uuid: &str,
        tcti: &str,
        extra: &str,
        work: &Path,
    ) -> Service {
        let (config, _) = self.write_agent_config_with(agent_dir, uuid, extra);
        spawn_agent(uuid, &config, tcti, work).await
    }

    /// Runs the tenant binary with `args` (and `--json`), returning its exit success and
    /// the one JSON document it printed.
    pub async fn tenant(&self, args: &[&str]) -> (bool, serde_json::Value) {
        let mut cmd = tokio::process::Command::new(bin("keylime_tenant"));
        cmd.args(args).arg("--json").kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("KEYLIME") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("tenant finished within 120 s")
            .expect("running the tenant");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let doc = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "tenant {args:?} printed no JSON document ({e}):\nstdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), doc)
    }
}

/// An HTTPS client trusting the verifier's generated CA, once that exists.
fn tls_client(ca: &Path) -> Option<reqwest::Client> {
    let cas = keylime_pki::load_certs(ca).ok()?;
    let tls = keylime_pki::client_config(cas, None).ok()?;
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(5))
        .build()
        .ok()
}
