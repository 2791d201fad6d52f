//! Our agent on its own swtpm, configured for a [`ConfigSet`] deployment (mTLS, trusting the
//! verifier's generated CA), with the fixtures the scenarios need: a payload whose
//! `autorun.sh` records that it ran, a revocation action that records the notice it was
//! given, and a way to change a PCR behind the verifier's back.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keylime_testkit::swtpm::Swtpm;

use crate::config_files::ConfigSet;
use crate::process::GroupProcess;
use crate::services::{START_TIMEOUT, admin_client, admin_get};
use crate::tenant::{TenantRun, upstream_tenant};
use keylime_testkit::ports::{Clashes, relocate, reserve};

use crate::{poll, wait_until};

/// The PCR the scenarios' `tpm_policy` pins and then tamper with.
pub const POLICY_PCR: u8 = 15;

/// `tpm_policy` accepting only the power-on value (all zeros) of [`POLICY_PCR`] in SHA-256.
pub fn zero_pcr_policy() -> String {
    format!("{{\"{POLICY_PCR}\": [\"{}\"]}}", "0".repeat(64))
}

/// A running agent and its TPM.
pub struct OurAgent {
    pub id: String,
    pub tpm: Swtpm,
    pub dir: PathBuf,
    pub port: u16,
    pub process: GroupProcess,
    /// Where the revocation action appends each notice it is given.
    pub revocation_log: PathBuf,
    /// Where the payload's `autorun.sh` appends a line each time it runs.
    pub autorun_log: PathBuf,
}

impl OurAgent {
    /// Writes the agent's TOML configuration (registering at `config`'s registrar) and
    /// starts it on `tpm`.
    pub fn start(dir: &Path, id: &str, config: &ConfigSet, tpm: Swtpm) -> OurAgent {
        let actions = dir.join("actions");
        std::fs::create_dir_all(&actions).expect("agent actions dir");
        let port = reserve();
        let conf = dir.join("keylime-agent.conf");
        std::fs::write(
            &conf,
            format!(
                "[agent]\nuuid = \"{id}\"\nip = \"127.0.0.1\"\nport = {port}\n\
                 contact_ip = \"127.0.0.1\"\ncontact_port = {port}\n\
                 registrar_ip = \"127.0.0.1\"\nregistrar_port = {registrar}\n\
                 keylime_dir = \"{dir}\"\ntrusted_client_ca = \"{ca}\"\nenable_agent_mtls = true\n\
                 tpm_hash_alg = \"sha256\"\ntpm_encryption_alg = \"rsa\"\ntpm_signing_alg = \"rsassa\"\n\
                 revocation_actions_dir = \"{actions}\"\n\
                 ima_ml_path = \"{dir}/ascii_runtime_measurements\"\n\
                 measuredboot_ml_path = \"{dir}/binary_bios_measurements\"\n",
                registrar = config.registrar_port,
                dir = dir.display(),
                ca = config.cv_ca().join("cacert.crt").display(),
                actions = actions.display(),
            ),
        )
        .expect("agent config");
        let revocation_log = dir.join("revocations.log");
        write_exec(
            &actions.join("record_revocation"),
            &format!("#!/bin/sh\ncat \"$1\" >> '{}'\n", revocation_log.display()),
        );
        let process = spawn(dir, &tpm);
        OurAgent {
            id: id.to_string(),
            tpm,
            dir: dir.to_path_buf(),
            port,
            process,
            revocation_log,
            autorun_log: dir.join("autorun.log"),
        }
    }

    /// Waits until the agent has registered and activated (it opens its pull API only
    /// then) and its pull API accepts connections. An agent whose port was taken keeps
    /// running unattestable: it is stopped and started again on a new reserved port.
    pub async fn wait_serving(&mut self) {
        let mut clashes = Clashes::new("our agent");
        loop {
            let port = self.port;
            let process = &mut self.process;
            let serving = wait_until(
                START_TIMEOUT,
                "our agent to register and serve its pull API",
                || {
                    let starting = process.check_starting();
                    async move {
                        if let Err(clash) = starting {
                            return Some(Err(clash));
                        }
                        let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
                        connected.ok().map(|_| Ok(()))
                    }
                },
            )
            .await;
            match serving {
                Ok(()) => return,
                Err(clash) => clashes.record(clash),
            }
            self.process.stop(Duration::from_secs(3));
            self.port = reserve();
            relocate(&[&self.dir.join("keylime-agent.conf")], port, self.port);
            self.process = spawn(&self.dir, &self.tpm);
        }
    }

    /// Waits until the registrar's admin API (`config`'s, over mTLS) shows the agent
    /// active; returns the record (`results`).
    pub async fn wait_active_at_registrar(&mut self, config: &ConfigSet) -> serde_json::Value {
        let client = admin_client(config);
        let url = format!(
            "https://127.0.0.1:{}/v2.6/agents/{}",
            config.registrar_tls_port, self.id
        );
        let process = &mut self.process;
        poll(
            START_TIMEOUT,
            "the registrar to list the agent as active",
            || {
                process.assert_running();
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let (status, body) = admin_get(&client, &url).await?;
                    // Upstream lists only active agents (404 before activation) and has
                    // no `active` field; a registrar that has one must say true.
                    match body.get("results") {
                        Some(r) if status == 200 && r.get("active").is_none_or(|a| a == true) => {
                            Ok(r.clone())
                        }
                        _ => Err(format!("{status} {body}")),
                    }
                }
            },
        )
        .await
    }

    /// The IMA measurement list the agent serves (`ima_ml_path`; absent until a scenario
    /// writes it).
    pub fn ima_log_path(&self) -> PathBuf {
        self.dir.join("ascii_runtime_measurements")
    }

    /// The UEFI event log the agent serves (`measuredboot_ml_path`; absent until a
    /// scenario writes it).
    pub fn mb_log_path(&self) -> PathBuf {
        self.dir.join("binary_bios_measurements")
    }

    /// Extends `pcr` (SHA-256 bank) with tpm2-tools behind the verifier's back, as another
    /// process on the machine would. (Our TPM client would flush the running agent's
    /// transient objects on a TPM without a resource manager.)
    pub fn extend_pcr(&self, pcr: u8) {
        let spec = format!("{pcr}:sha256={}", "5a".repeat(32));
        keylime_testkit::swtpm::pcr_extend(&self.tpm.tcti_string(), &spec);
    }

    /// The directory upstream's tenant gets as `--include` (and ours as part of `--cert`):
    /// an `autorun.sh` appending to [`OurAgent::autorun_log`] and an `action_list` naming
    /// the `record_revocation` action.
    pub fn payload_include_dir(&self) -> PathBuf {
        let dir = self.dir.join("payload-include");
        std::fs::create_dir_all(&dir).expect("payload dir");
        write_exec(
            &dir.join("autorun.sh"),
            &format!("#!/bin/sh\necho ran >> '{}'\n", self.autorun_log.display()),
        );
        std::fs::write(dir.join("action_list"), "record_revocation\n").expect("action_list");
        dir
    }

    /// Upstream tenant arguments that enrol this agent (`command` is `add` or `update`): the
    /// zero `tpm_policy`, a payload from [`OurAgent::payload_include_dir`] encrypted for a
    /// tenant CA created in `tenant_ca`, and `--verify`.
    pub fn upstream_enrol_args(&self, command: &str, tenant_ca: &Path) -> Vec<String> {
        [
            "-c",
            command,
            "-u",
            &self.id,
            "--tpm_policy",
            &zero_pcr_policy(),
            "--cert",
            &tenant_ca.display().to_string(),
            "--include",
            &self.payload_include_dir().display().to_string(),
            "--verify",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Enrols this agent with upstream's tenant (`-c add`, see
    /// [`OurAgent::upstream_enrol_args`]) and checks it succeeded: identity quote validated,
    /// key derived.
    pub async fn enrol_with_upstream_tenant(
        &self,
        config: &ConfigSet,
        tenant_ca: &Path,
    ) -> TenantRun {
        let args = self.upstream_enrol_args("add", tenant_ca);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let add = upstream_tenant(config, &args).await;
        assert!(
            add.success(),
            "{}\nagent:\n{}",
            add.output(),
            self.process.output_tail(40)
        );
        add.assert_says(&format!(
            "Quote from Agent {} (127.0.0.1:{}) validated",
            self.id, self.port
        ));
        add.assert_says(&format!("Successful key derivation for Agent {}", self.id));
        add
    }

    /// How many times the payload's `autorun.sh` has run.
    pub fn autorun_count(&self) -> usize {
        std::fs::read_to_string(&self.autorun_log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Waits until the revocation action has recorded a notice; returns it.
    pub async fn wait_revocation_notice(&self) -> serde_json::Value {
        let log = self.revocation_log.clone();
        let text = wait_until(
            Duration::from_secs(60),
            "the agent's revocation action to record a notice",
            || {
                let text = std::fs::read_to_string(&log).ok();
                async move { text.filter(|t| !t.trim().is_empty()) }
            },
        )
        .await;
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("revocation notice is not one JSON document ({e}): {text}"))
    }

    /// Extends [`POLICY_PCR`] behind the verifier's back.
    pub fn tamper_policy_pcr(&self) {
        self.extend_pcr(POLICY_PCR);
    }
}

/// A `--cert` directory for our tenant: the revocation notifier's certificate and key, its
/// CA, and the files of [`OurAgent::payload_include_dir`].
pub fn our_tenant_cert_dir(dir: &Path, include: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("cert dir");
    let ca = keylime_pki::CertificateAuthority::generate(&keylime_pki::CaOptions::default())
        .expect("payload CA");
    let notifier = ca
        .issue(keylime_pki::CertRole::Client, "RevocationNotifier", &[])
        .expect("notifier certificate");
    std::fs::write(dir.join("RevocationNotifier-cert.crt"), &notifier.cert_pem).expect("cert");
    std::fs::write(
        dir.join("RevocationNotifier-private.pem"),
        &notifier.key_pem,
    )
    .expect("key");
    std::fs::write(dir.join("cacert.crt"), ca.cert_pem()).expect("ca");
    for entry in std::fs::read_dir(include).expect("include dir").flatten() {
        let to = dir.join(entry.file_name());
        std::fs::copy(entry.path(), &to).expect("copying payload file");
    }
    dir.to_path_buf()
}

/// Starts our agent with the configuration in `dir` on `tpm`.
fn spawn(dir: &Path, tpm: &Swtpm) -> GroupProcess {
    let env = vec![
        (
            "KEYLIME_AGENT_CONFIG",
            dir.join("keylime-agent.conf").display().to_string(),
        ),
        ("TCTI", tpm.tcti_string()),
    ];
    GroupProcess::spawn(
        "our-agent",
        &keylime_e2e::bin("keylime_agent"),
        &[],
        &env,
        dir,
    )
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
