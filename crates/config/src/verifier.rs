//! `verifier.conf`: the `[verifier]` and `[revocations]` sections with
//! upstream's template 2.6 defaults (PROTOCOL.md §9.2).

use std::path::PathBuf;

use crate::connections::ConnectionConfig;
use crate::durable::DurableAttestationConfig;
use crate::error::{ConfigError, Origin};
use crate::evidence::VerifyEvidenceConfig;
use crate::ini::IniDocument;
use crate::paths::{
    DatabaseUrl, PoolSize, TlsDirSetting, TlsFiles, TrustedCaSetting, VERIFIER_CA_DIR,
};
use crate::pyliteral::PyValue;
use crate::reader::OptionReader;
use crate::sources::{ServiceComponent, Sources};
use crate::values;

const S: &str = "verifier";
const R: &str = "revocations";

/// Attestation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifierMode {
    /// The verifier polls agents (API 2.x).
    Pull,
    /// Agents push evidence (API 3.0).
    Push,
}

/// `measured_boot_evaluate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasuredBootEvaluate {
    /// Evaluate the boot log once per agent.
    Once,
    /// Evaluate it on every attestation.
    Always,
}

/// One rule of `severity_policy`: events whose id matches the regex
/// `event_id` get `severity_label`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityRule {
    /// Regular expression over event ids.
    pub event_id: String,
    /// One of `severity_labels`.
    pub severity_label: String,
}

/// The `[revocations]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationsConfig {
    /// `enabled_revocation_notifications`: `agent`, `zeromq`, `webhook`.
    pub enabled_revocation_notifications: Vec<String>,
    /// `zmq_ip`.
    pub zmq_ip: String,
    /// `zmq_port`.
    pub zmq_port: u16,
    /// `webhook_url`; empty = none.
    pub webhook_url: String,
    /// `webhook_max_age` (ours): seconds a webhook notice is kept for delivery; 0 = until
    /// delivered.
    pub webhook_max_age: u64,
}

/// Everything the verifier reads from `verifier.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifierConfig {
    /// `$KEYLIME_DIR` at load time; relative paths resolve against it.
    pub keylime_dir: PathBuf,
    /// `version` of the configuration file (template 2.6).
    pub version: String,
    /// `uuid`: this verifier's id (`default`).
    pub uuid: String,
    /// `ip`: bind address.
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `registrar_ip`.
    pub registrar_ip: String,
    /// `registrar_port` (the registrar's TLS port).
    pub registrar_port: u16,
    /// `enable_agent_mtls`.
    pub enable_agent_mtls: bool,
    /// `tls_dir`.
    pub tls_dir: TlsDirSetting,
    /// `server_key` (`default` = `server-private.pem`).
    pub server_key: String,
    /// `server_key_password`.
    pub server_key_password: String,
    /// `server_cert` (`default` = `server-cert.crt`).
    pub server_cert: String,
    /// `cert_subject_alternative_names` (extra SANs for generated certificates).
    pub cert_subject_alternative_names: Vec<String>,
    /// `trusted_client_ca`.
    pub trusted_client_ca: TrustedCaSetting,
    /// `client_key` (`default` = `client-private.pem`).
    pub client_key: String,
    /// `client_key_password`.
    pub client_key_password: String,
    /// `client_cert` (`default` = `client-cert.crt`).
    pub client_cert: String,
    /// `trusted_server_ca`.
    pub trusted_server_ca: TrustedCaSetting,
    /// `authorization_provider`.
    pub authorization_provider: String,
    /// `database_url`, resolved.
    pub database_url: DatabaseUrl,
    /// `database_pool_sz_ovfl`.
    pub database_pool_sz_ovfl: PoolSize,
    /// `auto_migrate_db`.
    pub auto_migrate_db: bool,
    /// `num_workers` (0 = one per CPU).
    pub num_workers: u32,
    /// `max_workers` (0 = no limit).
    pub max_workers: u32,
    /// `exponential_backoff`.
    pub exponential_backoff: bool,
    /// `retry_interval` in seconds (or the backoff base).
    pub retry_interval: f64,
    /// `max_retries`.
    pub max_retries: u32,
    /// `quote_interval` in seconds.
    pub quote_interval: f64,
    /// `max_upload_size` in bytes.
    pub max_upload_size: u64,
    /// `request_timeout` in seconds.
    pub request_timeout: f64,
    /// `measured_boot_policy_name`.
    pub measured_boot_policy_name: String,
    /// `measured_boot_imports`.
    pub measured_boot_imports: Vec<String>,
    /// `measured_boot_evaluate`.
    pub measured_boot_evaluate: MeasuredBootEvaluate,
    /// `severity_labels`, least to most severe.
    pub severity_labels: Vec<String>,
    /// `severity_policy`.
    pub severity_policy: Vec<SeverityRule>,
    /// `ignore_tomtou_errors`. Upstream quirk Q3: `true` *reports* ToMToU
    /// entries as failures; when the option is absent upstream's code
    /// fallback is `true` (the template writes `False`). Reproduced as is.
    pub ignore_tomtou_errors: bool,
    /// Durable attestation options.
    pub durable_attestation: DurableAttestationConfig,
    /// `require_allow_list_signatures`.
    pub require_allow_list_signatures: bool,
    /// `mode`.
    pub mode: VerifierMode,
    /// `challenge_lifetime` in seconds (push).
    pub challenge_lifetime: u64,
    /// `verification_timeout` in seconds (0 = automatic).
    pub verification_timeout: u64,
    /// `session_create_rate_limit_per_ip`.
    pub session_create_rate_limit_per_ip: u32,
    /// `session_create_rate_limit_window_ip` in seconds.
    pub session_create_rate_limit_window_ip: u64,
    /// `session_create_rate_limit_per_agent`.
    pub session_create_rate_limit_per_agent: u32,
    /// `session_create_rate_limit_window_agent` in seconds.
    pub session_create_rate_limit_window_agent: u64,
    /// `session_lifetime` in seconds.
    pub session_lifetime: u64,
    /// `extend_token_on_attestation`.
    pub extend_token_on_attestation: bool,
    /// `auto_recover_attestation_failures`.
    pub auto_recover_attestation_failures: bool,
    /// `shutdown_drain_timeout` in seconds.
    pub shutdown_drain_timeout: f64,
    /// `nonce_lifetime` in seconds (code-only option upstream).
    pub nonce_lifetime: u64,
    /// Connection limits of the HTTPS listener (our options).
    pub connections: ConnectionConfig,
    /// Limits of `POST /verify/evidence` (our options).
    pub verify_evidence: VerifyEvidenceConfig,
    /// The `[revocations]` section.
    pub revocations: RevocationsConfig,
}

crate::service_loaders!(VerifierConfig, Verifier);

impl VerifierConfig {
    /// Builds the configuration from already merged files plus the
    /// environment overrides of `sources`.
    pub fn from_document(doc: &IniDocument, sources: &Sources) -> Result<Self, ConfigError> {
        let r = OptionReader::new(ServiceComponent::Verifier, doc, sources);
        let keylime_dir = sources.keylime_dir();
        let (policy, policy_origin) = r.literal_list(
            S,
            "severity_policy",
            r#"[{"event_id": ".*", "severity_label" : "emergency"}]"#,
        )?;
        let config = VerifierConfig {
            version: r.string(S, "version", "2.6"),
            uuid: r.string(S, "uuid", "default"),
            ip: r.string(S, "ip", "127.0.0.1"),
            port: r.int(S, "port", 8881)?,
            registrar_ip: r.string(S, "registrar_ip", "127.0.0.1"),
            registrar_port: r.int(S, "registrar_port", 8891)?,
            enable_agent_mtls: r.boolean(S, "enable_agent_mtls", true)?,
            tls_dir: r.parsed(S, "tls_dir", TlsDirSetting::Generate, TlsDirSetting::parse)?,
            server_key: r.string(S, "server_key", "default"),
            server_key_password: r.string(S, "server_key_password", ""),
            server_cert: r.string(S, "server_cert", "default"),
            cert_subject_alternative_names: r.list(S, "cert_subject_alternative_names", &[])?,
            trusted_client_ca: r.parsed(
                S,
                "trusted_client_ca",
                TrustedCaSetting::Default,
                TrustedCaSetting::parse,
            )?,
            client_key: r.string(S, "client_key", "default"),
            client_key_password: r.string(S, "client_key_password", ""),
            client_cert: r.string(S, "client_cert", "default"),
            trusted_server_ca: r.parsed(
                S,
                "trusted_server_ca",
                TrustedCaSetting::Default,
                TrustedCaSetting::parse,
            )?,
            authorization_provider: r.string(S, "authorization_provider", "simple"),
            database_url: r.parsed(
                S,
                "database_url",
                DatabaseUrl::Sqlite(keylime_dir.join("cv_data.sqlite")),
                |raw| DatabaseUrl::parse(raw, &keylime_dir, "cv_data.sqlite"),
            )?,
            database_pool_sz_ovfl: r.parsed(
                S,
                "database_pool_sz_ovfl",
                PoolSize {
                    size: 5,
                    max_overflow: 10,
                },
                PoolSize::parse,
            )?,
            auto_migrate_db: r.boolean(S, "auto_migrate_db", true)?,
            num_workers: r.int(S, "num_workers", 0)?,
            max_workers: r.int(S, "max_workers", 16)?,
            exponential_backoff: r.boolean(S, "exponential_backoff", true)?,
            retry_interval: r.seconds(S, "retry_interval", 2.0)?,
            max_retries: r.int(S, "max_retries", 5)?,
            quote_interval: r.seconds(S, "quote_interval", 2.0)?,
            max_upload_size: r.int(S, "max_upload_size", 104_857_600)?,
            request_timeout: r.seconds(S, "request_timeout", 60.0)?,
            measured_boot_policy_name: r.string(S, "measured_boot_policy_name", "accept-all"),
            measured_boot_imports: r.list(S, "measured_boot_imports", &[])?,
            measured_boot_evaluate: r.parsed(
                S,
                "measured_boot_evaluate",
                MeasuredBootEvaluate::Once,
                |raw| match values::unquote(raw) {
                    "once" => Ok(MeasuredBootEvaluate::Once),
                    "always" => Ok(MeasuredBootEvaluate::Always),
                    _ => Err(format!("expected `once` or `always`, found {raw:?}")),
                },
            )?,
            severity_labels: r.list(
                S,
                "severity_labels",
                &[
                    "info",
                    "notice",
                    "warning",
                    "error",
                    "critical",
                    "alert",
                    "emergency",
                ],
            )?,
            severity_policy: severity_rules(&policy, &policy_origin)?,
            ignore_tomtou_errors: r.boolean(S, "ignore_tomtou_errors", true)?,
            durable_attestation: DurableAttestationConfig::read(&r, S, &[])?,
            require_allow_list_signatures: r.boolean(S, "require_allow_list_signatures", false)?,
            mode: r.parsed(S, "mode", VerifierMode::Pull, |raw| {
                match values::unquote(raw) {
                    "pull" => Ok(VerifierMode::Pull),
                    "push" => Ok(VerifierMode::Push),
                    _ => Err(format!("expected `pull` or `push`, found {raw:?}")),
                }
            })?,
            challenge_lifetime: r.int(S, "challenge_lifetime", 1800)?,
            verification_timeout: r.int(S, "verification_timeout", 0)?,
            session_create_rate_limit_per_ip: r.int(S, "session_create_rate_limit_per_ip", 50)?,
            session_create_rate_limit_window_ip: r.int(
                S,
                "session_create_rate_limit_window_ip",
                60,
            )?,
            session_create_rate_limit_per_agent: r.int(
                S,
                "session_create_rate_limit_per_agent",
                15,
            )?,
            session_create_rate_limit_window_agent: r.int(
                S,
                "session_create_rate_limit_window_agent",
                60,
            )?,
            session_lifetime: r.int(S, "session_lifetime", 180)?,
            extend_token_on_attestation: r.boolean(S, "extend_token_on_attestation", true)?,
            auto_recover_attestation_failures: r.boolean(
                S,
                "auto_recover_attestation_failures",
                false,
            )?,
            shutdown_drain_timeout: r.seconds(S, "shutdown_drain_timeout", 10.0)?,
            nonce_lifetime: r.int(S, "nonce_lifetime", 60)?,
            connections: ConnectionConfig::read(&r, S)?,
            verify_evidence: VerifyEvidenceConfig::read(&r, S)?,
            revocations: RevocationsConfig {
                enabled_revocation_notifications: r.list(
                    R,
                    "enabled_revocation_notifications",
                    &["agent"],
                )?,
                zmq_ip: r.string(R, "zmq_ip", "127.0.0.1"),
                zmq_port: r.int(R, "zmq_port", 8992)?,
                webhook_url: r.string(R, "webhook_url", ""),
                webhook_max_age: r.int(R, "webhook_max_age", 0)?,
            },
            keylime_dir,
        };
        // Read, so that it is not reported as unknown; the value is a worker
        // share for upstream's process model that we do not use.
        let _ = r.raw(S, "dedicated_web_workers");
        if config.tls_dir == TlsDirSetting::Generate {
            require_default_for_generate(
                &r,
                &[
                    ("server_cert", &config.server_cert),
                    ("server_key", &config.server_key),
                    ("client_cert", &config.client_cert),
                    ("client_key", &config.client_key),
                ],
                &[
                    ("trusted_client_ca", &config.trusted_client_ca),
                    ("trusted_server_ca", &config.trusted_server_ca),
                ],
                S,
            )?;
        }
        r.report_unknown(&[S, R]);
        Ok(config)
    }

    /// The resolved TLS directory (`generate` → `$KEYLIME_DIR/cv_ca`).
    pub fn tls_dir_path(&self) -> PathBuf {
        self.tls_dir.resolve(&self.keylime_dir, VERIFIER_CA_DIR)
    }

    /// Files of the HTTPS server (agents, tenant and admins connect to it).
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

    /// Files the verifier uses as a TLS client (to agents and the registrar).
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

/// `tls_dir = generate` needs every certificate option left at `default`.
pub(crate) fn require_default_for_generate(
    r: &OptionReader<'_>,
    files: &[(&str, &String)],
    cas: &[(&str, &TrustedCaSetting)],
    section: &str,
) -> Result<(), ConfigError> {
    let offending = files
        .iter()
        .filter(|(_, v)| v.as_str() != "default")
        .map(|(n, _)| *n)
        .chain(
            cas.iter()
                .filter(|(_, v)| **v != TrustedCaSetting::Default)
                .map(|(n, _)| *n),
        )
        .next();
    match offending {
        None => Ok(()),
        Some(option) => {
            let origin = r
                .raw(section, option)
                .map(|o| o.origin)
                .unwrap_or(Origin::Default);
            Err(ConfigError::invalid(
                &origin,
                section,
                option,
                "must be `default` when tls_dir = generate (the generated files have fixed names)",
            ))
        }
    }
}

fn severity_rules(items: &[PyValue], origin: &Origin) -> Result<Vec<SeverityRule>, ConfigError> {
    items
        .iter()
        .map(|item| {
            let field = |name: &str| item.get(name).and_then(PyValue::as_str).map(str::to_string);
            match (field("event_id"), field("severity_label")) {
                (Some(event_id), Some(severity_label)) => Ok(SeverityRule { event_id, severity_label }),
                _ => Err(ConfigError::invalid(
                    origin,
                    S,
                    "severity_policy",
                    format!("every rule must be a dict with string keys \"event_id\" and \"severity_label\", found {item:?}"),
                )),
            }
        })
        .collect()
}
