//! The agent's `[agent]` TOML configuration (upstream rust-keylime
//! `keylime-agent.conf`, `keylime/src/config/base.rs`), layered per
//! PROTOCOL.md §9.1 and resolved the way upstream resolves keywords:
//!
//! * `keylime_dir`: `$KEYLIME_DIR` if set and non-empty, else the option,
//!   else `/var/lib/keylime`.
//! * File options: `default` → the upstream file name under `keylime_dir`;
//!   empty → the default too (with a warning), except `iak_cert` /
//!   `idevid_cert` where empty means none; relative → under `keylime_dir`.
//! * `ima_ml_path` / `measuredboot_ml_path`: `default` → the securityfs
//!   paths; relative paths are relative to `/`.

mod layers;
mod settings;

use std::path::{Path, PathBuf};

pub use layers::AGENT_CONFIG_ENV;
pub use settings::{
    AGENT_API_VERSIONS, ApiVersionsSetting, EkHandleSetting, PUSH_API_VERSIONS, UuidSetting,
    agent_list,
};

use crate::error::ConfigError;
use crate::paths::resolve_in;
use crate::sources::{DEFAULT_KEYLIME_DIR, Sources};
use layers::{AgentLayers, AgentReader, SECTION};

/// Default IMA measurement list.
pub const DEFAULT_IMA_ML_PATH: &str = "/sys/kernel/security/ima/ascii_runtime_measurements";
/// Default UEFI event log.
pub const DEFAULT_MEASUREDBOOT_ML_PATH: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The user and group a root-started agent drops to by default.
pub const DEFAULT_RUN_AS: &str = "keylime:tss";

/// The agent's configuration, keywords resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// `version` of the file.
    pub version: String,
    /// `uuid`.
    pub uuid: UuidSetting,
    /// `ip`: bind address (brackets of an IPv6 literal removed).
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `contact_ip`: address sent to the registrar.
    pub contact_ip: String,
    /// `contact_port`.
    pub contact_port: u16,
    /// `registrar_ip`.
    pub registrar_ip: String,
    /// `registrar_port` (plain HTTP).
    pub registrar_port: u16,
    /// `registrar_tls_enabled`.
    pub registrar_tls_enabled: bool,
    /// `registrar_tls_port`.
    pub registrar_tls_port: u16,
    /// `registrar_tls_ca_cert` (default `cv_ca/cacert.crt`).
    pub registrar_tls_ca_cert: PathBuf,
    /// `api_versions` (pull mode; resolve with [`AgentConfig::enabled_api_versions`]).
    pub api_versions: ApiVersionsSetting,
    /// `registrar_api_versions`.
    pub registrar_api_versions: ApiVersionsSetting,
    /// `enable_agent_mtls`.
    pub enable_agent_mtls: bool,
    /// Work directory.
    pub keylime_dir: PathBuf,
    /// `server_key` (default `server-private.pem`).
    pub server_key: PathBuf,
    /// `server_key_password`.
    pub server_key_password: String,
    /// `server_cert` (default `server-cert.crt`).
    pub server_cert: PathBuf,
    /// `trusted_client_ca` (default `cv_ca/cacert.crt`).
    pub trusted_client_ca: Vec<PathBuf>,
    /// `payload_key` (default `payload-private.pem`).
    pub payload_key: PathBuf,
    /// `payload_key_password`.
    pub payload_key_password: String,
    /// `enc_keyname`.
    pub enc_keyname: String,
    /// `dec_payload_file`.
    pub dec_payload_file: String,
    /// `secure_size` (tmpfs size, `mount` syntax).
    pub secure_size: String,
    /// `extract_payload_zip`.
    pub extract_payload_zip: bool,
    /// `payload_script`.
    pub payload_script: String,
    /// `enable_insecure_payload`.
    pub enable_insecure_payload: bool,
    /// `allow_payload_revocation_actions`.
    pub allow_payload_revocation_actions: bool,
    /// `enable_revocation_notifications` (ZeroMQ listener).
    pub enable_revocation_notifications: bool,
    /// `revocation_notification_ip`.
    pub revocation_notification_ip: String,
    /// `revocation_notification_port`.
    pub revocation_notification_port: u16,
    /// `revocation_cert` (default `secure/unzipped/RevocationNotifier-cert.crt`).
    pub revocation_cert: PathBuf,
    /// `revocation_actions`.
    pub revocation_actions: Vec<String>,
    /// `revocation_actions_dir`.
    pub revocation_actions_dir: PathBuf,
    /// `tpm_hash_alg`.
    pub tpm_hash_alg: String,
    /// `tpm_encryption_alg`.
    pub tpm_encryption_alg: String,
    /// `tpm_signing_alg`.
    pub tpm_signing_alg: String,
    /// `ek_handle`.
    pub ek_handle: EkHandleSetting,
    /// `tpm_ownerpassword` (`hex:` prefix for hex).
    pub tpm_ownerpassword: String,
    /// `enable_iak_idevid`.
    pub enable_iak_idevid: bool,
    /// `iak_idevid_template` (`detect`, `H-1`…`H-5`, `manual`).
    pub iak_idevid_template: String,
    /// `iak_idevid_asymmetric_alg`.
    pub iak_idevid_asymmetric_alg: String,
    /// `iak_idevid_name_alg`.
    pub iak_idevid_name_alg: String,
    /// `iak_handle`.
    pub iak_handle: String,
    /// `iak_password`.
    pub iak_password: String,
    /// `idevid_handle`.
    pub idevid_handle: String,
    /// `idevid_password`.
    pub idevid_password: String,
    /// `iak_cert` (default `iak-cert.crt`; empty = none).
    pub iak_cert: Option<PathBuf>,
    /// `idevid_cert` (default `idevid-cert.crt`; empty = none).
    pub idevid_cert: Option<PathBuf>,
    /// `run_as`; `None` keeps the starting user. Default `keylime:tss` when
    /// started as root, none otherwise (as upstream).
    pub run_as: Option<String>,
    /// `agent_data_path` (default `agent_data.json`).
    pub agent_data_path: PathBuf,
    /// `ima_ml_path`.
    pub ima_ml_path: PathBuf,
    /// `measuredboot_ml_path`.
    pub measuredboot_ml_path: PathBuf,
    /// `exponential_backoff_initial_delay` in milliseconds.
    pub exponential_backoff_initial_delay: u64,
    /// `exponential_backoff_max_retries`.
    pub exponential_backoff_max_retries: u32,
    /// `exponential_backoff_max_delay` in milliseconds.
    pub exponential_backoff_max_delay: u64,
    /// `attestation_interval_seconds` (push).
    pub attestation_interval_seconds: u64,
    /// `verifier_url` (push).
    pub verifier_url: String,
    /// `verifier_tls_ca_cert` (push; default `cv_ca/cacert.crt`).
    pub verifier_tls_ca_cert: PathBuf,
    /// `certification_keys_server_identifier` (push).
    pub certification_keys_server_identifier: String,
    /// `uefi_logs_evidence_version` (push).
    pub uefi_logs_evidence_version: String,
    /// `tls_accept_invalid_certs` (insecure, tests only).
    pub tls_accept_invalid_certs: bool,
    /// `tls_accept_invalid_hostnames` (insecure, tests only).
    pub tls_accept_invalid_hostnames: bool,
}

impl AgentConfig {
    /// Loads from the real machine.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(&Sources::system())
    }

    /// Loads from `sources`: defaults, files, then `KEYLIME_AGENT_*`.
    pub fn load_from(sources: &Sources) -> Result<Self, ConfigError> {
        let layers = AgentLayers::load(sources)?;
        Self::from_layers(&layers, sources)
    }

    /// The TOML files [`AgentConfig::load_from`] reads, in order.
    pub fn files(sources: &Sources) -> Result<Vec<PathBuf>, ConfigError> {
        AgentLayers::files(sources)
    }

    fn from_layers(layers: &AgentLayers, sources: &Sources) -> Result<Self, ConfigError> {
        let r = AgentReader::new(layers);
        let configured_dir = r.string("keylime_dir", DEFAULT_KEYLIME_DIR)?;
        let keylime_dir = match sources.var("KEYLIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ if configured_dir.is_empty() => PathBuf::from(DEFAULT_KEYLIME_DIR),
            _ => PathBuf::from(configured_dir),
        };
        let kd = keylime_dir.as_path();
        let file = |option: &'static str, default: &str| -> Result<PathBuf, ConfigError> {
            Ok(file_path(
                option,
                &r.string(option, "default")?,
                kd,
                default,
            ))
        };
        let optional_file =
            |option: &'static str, default: &str| -> Result<Option<PathBuf>, ConfigError> {
                let value = r.string(option, "default")?;
                Ok((!value.is_empty()).then(|| file_path(option, &value, kd, default)))
            };
        let root = Path::new("/");
        let trusted_client_ca = r
            .list("trusted_client_ca", "default")?
            .iter()
            .map(|v| file_path("trusted_client_ca", v, kd, "cv_ca/cacert.crt"))
            .collect();
        let ek_handle_raw = r.string("ek_handle", "generate")?;
        let ek_handle = EkHandleSetting::parse(&ek_handle_raw).map_err(|reason| {
            ConfigError::invalid(&r.origin("ek_handle"), SECTION, "ek_handle", reason)
        })?;
        let run_as = r.string(
            "run_as",
            if running_as_root() {
                DEFAULT_RUN_AS
            } else {
                ""
            },
        )?;

        let config = AgentConfig {
            version: r.string("version", "2.0")?,
            uuid: UuidSetting::parse(&r.string("uuid", "d432fbb3-d2f1-4a97-9ef7-75bd81c00000")?),
            ip: host(&r.string("ip", "127.0.0.1")?),
            port: r.int("port", 9002)?,
            contact_ip: host(&r.string("contact_ip", "127.0.0.1")?),
            contact_port: r.int("contact_port", 9002)?,
            registrar_ip: host(&r.string("registrar_ip", "127.0.0.1")?),
            registrar_port: r.int("registrar_port", 8890)?,
            registrar_tls_enabled: r.boolean("registrar_tls_enabled", false)?,
            registrar_tls_port: r.int("registrar_tls_port", 8891)?,
            registrar_tls_ca_cert: file("registrar_tls_ca_cert", "cv_ca/cacert.crt")?,
            api_versions: ApiVersionsSetting::parse(&r.string("api_versions", "default")?),
            registrar_api_versions: ApiVersionsSetting::parse(
                &r.string("registrar_api_versions", "default")?,
            ),
            enable_agent_mtls: r.boolean("enable_agent_mtls", true)?,
            server_key: file("server_key", "server-private.pem")?,
            server_key_password: r.string("server_key_password", "")?,
            server_cert: file("server_cert", "server-cert.crt")?,
            trusted_client_ca,
            payload_key: file("payload_key", "payload-private.pem")?,
            payload_key_password: r.string("payload_key_password", "")?,
            enc_keyname: r.string("enc_keyname", "derived_tci_key")?,
            dec_payload_file: r.string("dec_payload_file", "decrypted_payload")?,
            secure_size: r.string("secure_size", "1m")?,
            extract_payload_zip: r.boolean("extract_payload_zip", true)?,
            payload_script: r.string("payload_script", "autorun.sh")?,
            enable_insecure_payload: r.boolean("enable_insecure_payload", false)?,
            allow_payload_revocation_actions: r
                .boolean("allow_payload_revocation_actions", true)?,
            enable_revocation_notifications: r.boolean("enable_revocation_notifications", false)?,
            revocation_notification_ip: host(&r.string("revocation_notification_ip", "127.0.0.1")?),
            revocation_notification_port: r.int("revocation_notification_port", 8992)?,
            revocation_cert: file(
                "revocation_cert",
                "secure/unzipped/RevocationNotifier-cert.crt",
            )?,
            revocation_actions: r.list("revocation_actions", "")?,
            revocation_actions_dir: PathBuf::from(
                r.string("revocation_actions_dir", "/usr/libexec/keylime")?,
            ),
            tpm_hash_alg: r.string("tpm_hash_alg", "sha256")?,
            tpm_encryption_alg: r.string("tpm_encryption_alg", "rsa")?,
            tpm_signing_alg: r.string("tpm_signing_alg", "rsassa")?,
            ek_handle,
            tpm_ownerpassword: r.string("tpm_ownerpassword", "")?,
            enable_iak_idevid: r.boolean("enable_iak_idevid", false)?,
            iak_idevid_template: r.string("iak_idevid_template", "detect")?,
            iak_idevid_asymmetric_alg: r.string("iak_idevid_asymmetric_alg", "rsa")?,
            iak_idevid_name_alg: r.string("iak_idevid_name_alg", "sha256")?,
            iak_handle: r.string("iak_handle", "")?,
            iak_password: r.string("iak_password", "")?,
            idevid_handle: r.string("idevid_handle", "")?,
            idevid_password: r.string("idevid_password", "")?,
            iak_cert: optional_file("iak_cert", "iak-cert.crt")?,
            idevid_cert: optional_file("idevid_cert", "idevid-cert.crt")?,
            run_as: (!run_as.is_empty()).then_some(run_as),
            agent_data_path: file("agent_data_path", "agent_data.json")?,
            ima_ml_path: file_path(
                "ima_ml_path",
                &r.string("ima_ml_path", "default")?,
                root,
                DEFAULT_IMA_ML_PATH,
            ),
            measuredboot_ml_path: file_path(
                "measuredboot_ml_path",
                &r.string("measuredboot_ml_path", "default")?,
                root,
                DEFAULT_MEASUREDBOOT_ML_PATH,
            ),
            exponential_backoff_initial_delay: r
                .int("exponential_backoff_initial_delay", 10_000)?,
            exponential_backoff_max_retries: r.int("exponential_backoff_max_retries", 5)?,
            exponential_backoff_max_delay: r.int("exponential_backoff_max_delay", 300_000)?,
            attestation_interval_seconds: r.int("attestation_interval_seconds", 60)?,
            verifier_url: r.string("verifier_url", "https://localhost:8881")?,
            verifier_tls_ca_cert: file("verifier_tls_ca_cert", "cv_ca/cacert.crt")?,
            certification_keys_server_identifier: r
                .string("certification_keys_server_identifier", "ak")?,
            uefi_logs_evidence_version: r.string("uefi_logs_evidence_version", "2.1")?,
            tls_accept_invalid_certs: r.boolean("tls_accept_invalid_certs", false)?,
            tls_accept_invalid_hostnames: r.boolean("tls_accept_invalid_hostnames", false)?,
            keylime_dir,
        };
        // Options of upstream's Python agent that the Rust agent ignores.
        for legacy in [
            "tls_dir",
            "measure_payload_pcr",
            "exponential_backoff",
            "retry_interval",
            "max_retries",
        ] {
            let _ = r.string(legacy, "");
        }
        r.report_unknown();
        config.validate(&r)?;
        Ok(config)
    }

    fn validate(&self, r: &AgentReader<'_>) -> Result<(), ConfigError> {
        if !self.enable_revocation_notifications {
            return Ok(());
        }
        let needs = |option: &'static str, empty: bool| {
            if empty {
                Err(ConfigError::invalid(
                    &r.origin(option),
                    SECTION,
                    option,
                    "must not be empty when enable_revocation_notifications = true",
                ))
            } else {
                Ok(())
            }
        };
        needs(
            "revocation_notification_ip",
            self.revocation_notification_ip.is_empty(),
        )?;
        needs(
            "revocation_actions_dir",
            self.revocation_actions_dir.as_os_str().is_empty(),
        )
    }

    /// API versions served in pull mode, oldest first.
    pub fn enabled_api_versions(&self) -> Vec<String> {
        self.api_versions.resolve(AGENT_API_VERSIONS)
    }

    /// API versions tried against the registrar, as configured (`default` =
    /// all pull versions, `latest` = the newest).
    pub fn enabled_registrar_api_versions(&self) -> Vec<String> {
        match &self.registrar_api_versions {
            ApiVersionsSetting::List(list) => list.clone(),
            other => other.resolve(AGENT_API_VERSIONS),
        }
    }
}

/// Upstream's `config_get_file_path`.
fn file_path(option: &str, value: &str, base: &Path, default: &str) -> PathBuf {
    match value {
        "default" => base.join(default),
        "" => {
            tracing::warn!(option, default, "empty path option; using the default");
            base.join(default)
        }
        other => resolve_in(base, other),
    }
}

/// `[::1]` → `::1`; other values unchanged.
fn host(value: &str) -> String {
    let v = value.trim();
    v.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v)
        .to_string()
}

/// Whether this process runs with effective uid 0 (`/proc/self` belongs to
/// the effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
