//! `tenant.conf`: the `[tenant]` section with upstream's template 2.6
//! defaults (PROTOCOL.md §9.4). `tls_dir = generate` is not allowed here.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::ini::IniDocument;
use crate::paths::{TlsDirSetting, TlsFiles, TrustedCaSetting, VERIFIER_CA_DIR};
use crate::reader::OptionReader;
use crate::sources::{ServiceComponent, Sources};

const S: &str = "tenant";

/// Everything the tenant reads from `tenant.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantConfig {
    /// `$KEYLIME_DIR` at load time.
    pub keylime_dir: PathBuf,
    /// `version`.
    pub version: String,
    /// `verifier_ip`.
    pub verifier_ip: String,
    /// `verifier_port`.
    pub verifier_port: u16,
    /// `registrar_ip`.
    pub registrar_ip: String,
    /// `registrar_port` (the registrar's TLS port, 8891).
    pub registrar_port: u16,
    /// `tls_dir` (`default` = `$KEYLIME_DIR/cv_ca`).
    pub tls_dir: TlsDirSetting,
    /// `enable_agent_mtls`.
    pub enable_agent_mtls: bool,
    /// `client_key` (`default` = `client-private.pem`).
    pub client_key: String,
    /// `client_key_password`.
    pub client_key_password: String,
    /// `client_cert` (`default` = `client-cert.crt`).
    pub client_cert: String,
    /// `trusted_server_ca`.
    pub trusted_server_ca: TrustedCaSetting,
    /// `tpm_cert_store`: directory of TPM vendor CA certificates.
    pub tpm_cert_store: PathBuf,
    /// `max_payload_size` in bytes.
    pub max_payload_size: u64,
    /// `accept_tpm_hash_algs`.
    pub accept_tpm_hash_algs: Vec<String>,
    /// `accept_tpm_encryption_algs`.
    pub accept_tpm_encryption_algs: Vec<String>,
    /// `accept_tpm_signing_algs` (upstream default lacks `ecdsa`, quirk Q27).
    pub accept_tpm_signing_algs: Vec<String>,
    /// `exponential_backoff`.
    pub exponential_backoff: bool,
    /// `retry_interval` in seconds.
    pub retry_interval: f64,
    /// `max_retries`.
    pub max_retries: u32,
    /// `request_timeout` in seconds.
    pub request_timeout: f64,
    /// `require_ek_cert`.
    pub require_ek_cert: bool,
    /// `ek_check_script`; empty = none.
    pub ek_check_script: String,
    /// `mb_refstate`; empty = none.
    pub mb_refstate: String,
}

crate::service_loaders!(TenantConfig, Tenant);

impl TenantConfig {
    /// Builds the configuration from merged files plus environment overrides.
    pub fn from_document(doc: &IniDocument, sources: &Sources) -> Result<Self, ConfigError> {
        let r = OptionReader::new(ServiceComponent::Tenant, doc, sources);
        let keylime_dir = sources.keylime_dir();
        let tls_dir =
            r.parsed(
                S,
                "tls_dir",
                TlsDirSetting::Default,
                |raw| match TlsDirSetting::parse(raw)? {
                    TlsDirSetting::Generate => Err(
                        "`generate` is only supported by the verifier and the registrar"
                            .to_string(),
                    ),
                    other => Ok(other),
                },
            )?;
        let config = TenantConfig {
            version: r.string(S, "version", "2.6"),
            verifier_ip: r.string(S, "verifier_ip", "127.0.0.1"),
            verifier_port: r.int(S, "verifier_port", 8881)?,
            registrar_ip: r.string(S, "registrar_ip", "127.0.0.1"),
            registrar_port: r.int(S, "registrar_port", 8891)?,
            tls_dir,
            enable_agent_mtls: r.boolean(S, "enable_agent_mtls", true)?,
            client_key: r.string(S, "client_key", "default"),
            client_key_password: r.string(S, "client_key_password", ""),
            client_cert: r.string(S, "client_cert", "default"),
            trusted_server_ca: r.parsed(
                S,
                "trusted_server_ca",
                TrustedCaSetting::Default,
                TrustedCaSetting::parse,
            )?,
            tpm_cert_store: PathBuf::from(r.string(
                S,
                "tpm_cert_store",
                "/var/lib/keylime/tpm_cert_store",
            )),
            max_payload_size: r.int(S, "max_payload_size", 1_048_576)?,
            accept_tpm_hash_algs: r.list(
                S,
                "accept_tpm_hash_algs",
                &["sha512", "sha384", "sha256"],
            )?,
            accept_tpm_encryption_algs: r.list(S, "accept_tpm_encryption_algs", &["ecc", "rsa"])?,
            accept_tpm_signing_algs: r.list(
                S,
                "accept_tpm_signing_algs",
                &["ecschnorr", "rsassa"],
            )?,
            exponential_backoff: r.boolean(S, "exponential_backoff", true)?,
            retry_interval: r.seconds(S, "retry_interval", 2.0)?,
            max_retries: r.int(S, "max_retries", 5)?,
            request_timeout: r.seconds(S, "request_timeout", 60.0)?,
            require_ek_cert: r.boolean(S, "require_ek_cert", true)?,
            ek_check_script: r.string(S, "ek_check_script", ""),
            mb_refstate: r.string(S, "mb_refstate", ""),
            keylime_dir,
        };
        r.report_unknown(&[S]);
        Ok(config)
    }

    /// The resolved TLS directory.
    pub fn tls_dir_path(&self) -> PathBuf {
        self.tls_dir.resolve(&self.keylime_dir, VERIFIER_CA_DIR)
    }

    /// Files the tenant uses as a TLS client (verifier, registrar, agents).
    pub fn client_tls(&self) -> TlsFiles {
        TlsFiles::resolve(
            &self.keylime_dir,
            self.tls_dir_path(),
            "client",
            &self.client_cert,
            &self.client_key,
            &self.client_key_password,
            &self.trusted_server_ca,
        )
    }
}
