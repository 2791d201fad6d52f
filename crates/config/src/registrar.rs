//! `registrar.conf`: the `[registrar]` section with upstream's template 2.6
//! defaults (PROTOCOL.md §9.3).
//!
//! Note: `tls_dir = default` means the *verifier's* CA directory
//! `$KEYLIME_DIR/cv_ca` (upstream `web_util.get_tls_dir`); only `generate`
//! uses `$KEYLIME_DIR/reg_ca`.

use std::path::PathBuf;

use crate::connections::ConnectionConfig;
use crate::durable::DurableAttestationConfig;
use crate::error::ConfigError;
use crate::ini::IniDocument;
use crate::paths::{
    DatabaseUrl, PoolSize, REGISTRAR_CA_DIR, TlsDirSetting, TlsFiles, TrustedCaSetting,
};
use crate::reader::OptionReader;
use crate::sources::{ServiceComponent, Sources};
use crate::values;
use crate::verifier::require_default_for_generate;

const S: &str = "registrar";

/// `tpm_identity`: which TPM identities may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpmIdentity {
    /// `default` / `ek_cert_or_iak_idevid`: an EK, or an IAK and IDevID.
    EkCertOrIakIdevid,
    /// `ek_cert`: only an EK.
    EkCert,
    /// `iak_idevid`: only an IAK and IDevID.
    IakIdevid,
}

/// `malformed_cert_action`: what to do with a certificate that is not strict DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedCertAction {
    /// Log a warning and re-encode it.
    Warn,
    /// Refuse it.
    Reject,
    /// Re-encode it silently.
    Ignore,
}

/// Everything the registrar reads from `registrar.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrarConfig {
    /// `$KEYLIME_DIR` at load time.
    pub keylime_dir: PathBuf,
    /// `version`.
    pub version: String,
    /// `ip`: bind address.
    pub ip: String,
    /// `port`: plain HTTP port (agent registration).
    pub port: u16,
    /// `tls_port`: HTTPS port (tenant, verifier).
    pub tls_port: u16,
    /// `tls_dir`.
    pub tls_dir: TlsDirSetting,
    /// `server_key` (`default` = `server-private.pem`).
    pub server_key: String,
    /// `server_key_password`.
    pub server_key_password: String,
    /// `server_cert` (`default` = `server-cert.crt`).
    pub server_cert: String,
    /// `cert_subject_alternative_names`.
    pub cert_subject_alternative_names: Vec<String>,
    /// `trusted_client_ca`.
    pub trusted_client_ca: TrustedCaSetting,
    /// `authorization_provider`.
    pub authorization_provider: String,
    /// `database_url`, resolved (`sqlite` → `$KEYLIME_DIR/reg_data.sqlite`).
    pub database_url: DatabaseUrl,
    /// `database_pool_sz_ovfl`.
    pub database_pool_sz_ovfl: PoolSize,
    /// `max_workers`.
    pub max_workers: u32,
    /// `auto_migrate_db`.
    pub auto_migrate_db: bool,
    /// Durable attestation options.
    pub durable_attestation: DurableAttestationConfig,
    /// `tpm_identity`.
    pub tpm_identity: TpmIdentity,
    /// `malformed_cert_action`.
    pub malformed_cert_action: MalformedCertAction,
    /// Connection limits of each listener (our options).
    pub connections: ConnectionConfig,
}

crate::service_loaders!(RegistrarConfig, Registrar);

impl RegistrarConfig {
    /// Builds the configuration from merged files plus environment overrides.
    pub fn from_document(doc: &IniDocument, sources: &Sources) -> Result<Self, ConfigError> {
        let r = OptionReader::new(ServiceComponent::Registrar, doc, sources);
        let keylime_dir = sources.keylime_dir();
        let config = RegistrarConfig {
            version: r.string(S, "version", "2.6"),
            ip: r.string(S, "ip", "127.0.0.1"),
            port: r.int(S, "port", 8890)?,
            tls_port: r.int(S, "tls_port", 8891)?,
            tls_dir: r.parsed(S, "tls_dir", TlsDirSetting::Default, TlsDirSetting::parse)?,
            server_key: r.string(S, "server_key", "default"),
            server_key_password: r.string(S, "server_key_password", ""),
            server_cert: r.string(S, "server_cert", "default"),
            cert_subject_alternative_names: r.list(S, "cert_subject_alternative_names", &[])?,
            trusted_client_ca: r.parsed(S, "trusted_client_ca", TrustedCaSetting::Default, TrustedCaSetting::parse)?,
            authorization_provider: r.string(S, "authorization_provider", "simple"),
            database_url: r.parsed(
                S,
                "database_url",
                DatabaseUrl::Sqlite(keylime_dir.join("reg_data.sqlite")),
                |raw| DatabaseUrl::parse(raw, &keylime_dir, "reg_data.sqlite"),
            )?,
            database_pool_sz_ovfl: r.parsed(
                S,
                "database_pool_sz_ovfl",
                PoolSize { size: 5, max_overflow: 10 },
                PoolSize::parse,
            )?,
            max_workers: r.int(S, "max_workers", 16)?,
            auto_migrate_db: r.boolean(S, "auto_migrate_db", true)?,
            durable_attestation: DurableAttestationConfig::read(&r, S, &["ek_tpm", "aik_tpm", "ekcert"])?,
            tpm_identity: r.parsed(S, "tpm_identity", TpmIdentity::EkCertOrIakIdevid, |raw| {
                match values::unquote(raw) {
                    "default" | "ek_cert_or_iak_idevid" => Ok(TpmIdentity::EkCertOrIakIdevid),
                    "ek_cert" => Ok(TpmIdentity::EkCert),
                    "iak_idevid" => Ok(TpmIdentity::IakIdevid),
                    _ => Err(format!(
                        "expected default, ek_cert_or_iak_idevid, ek_cert or iak_idevid, found {raw:?}"
                    )),
                }
            })?,
            malformed_cert_action: r.parsed(S, "malformed_cert_action", MalformedCertAction::Warn, |raw| {
                match values::unquote(raw) {
                    "warn" => Ok(MalformedCertAction::Warn),
                    "reject" => Ok(MalformedCertAction::Reject),
                    "ignore" => Ok(MalformedCertAction::Ignore),
                    _ => Err(format!("expected warn, reject or ignore, found {raw:?}")),
                }
            })?,
            connections: ConnectionConfig::read(&r, S)?,
            keylime_dir,
        };
        if config.tls_dir == TlsDirSetting::Generate {
            require_default_for_generate(
                &r,
                &[
                    ("server_cert", &config.server_cert),
                    ("server_key", &config.server_key),
                ],
                &[("trusted_client_ca", &config.trusted_client_ca)],
                S,
            )?;
        }
        r.report_unknown(&[S]);
        Ok(config)
    }

    /// The resolved TLS directory: `generate` → `$KEYLIME_DIR/reg_ca`,
    /// `default` → `$KEYLIME_DIR/cv_ca`.
    pub fn tls_dir_path(&self) -> PathBuf {
        self.tls_dir.resolve(&self.keylime_dir, REGISTRAR_CA_DIR)
    }

    /// Files of the HTTPS server on `tls_port`.
    pub fn server_tls(&self) -> TlsFiles {
        TlsFiles::resolve(
            &self.keylime_dir,
            self.tls_dir_path(),
            "server",
            &self.server_cert,
            &self.server_key,
            &self.server_key_password,
            &self.trusted_client_ca,
        )
    }
}
