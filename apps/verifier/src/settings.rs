//! The verifier's runtime settings: listener, TLS material, database, pull-loop timing and
//! severity policy. Built from upstream-format configuration
//! ([`VerifierSettings::from_config`]) or directly ([`VerifierSettings::new`], tests).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use keylime_attestation::SeverityRule;
use keylime_config::{CaConfig, PeerVerification, TlsDirSetting, VerifierConfig};
use keylime_pki::{CaOptions, KeyAlgorithm};
use keylime_store::{DatabaseUrl, StoreOptions};
use keylime_web::limits::ConnectionLimits;

pub use crate::evidence_gate::EvidenceSettings;

pub use crate::policy_cache::PolicySettings;

pub use crate::push::SessionSettings;

/// Default largest request body (upstream `max_upload_size`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 104_857_600;

/// Where the TLS material comes from.
#[derive(Debug, Clone)]
pub enum TlsSetup {
    /// `tls_dir = generate`: CA, server and client certificates in `dir` (`cv_ca`).
    Generate { dir: PathBuf },
    /// Existing files.
    Files {
        dir: PathBuf,
        server_cert: PathBuf,
        server_key: PathBuf,
        /// CAs whose client certificates grant admin access.
        trusted_client_ca: Vec<PathBuf>,
        /// The verifier's client identity towards agents.
        client_cert: PathBuf,
        client_key: PathBuf,
        /// CAs trusted for agents' server certificates (besides each agent's `mtls_cert`).
        trusted_server_ca: Vec<PathBuf>,
    },
}

impl TlsSetup {
    /// The TLS directory.
    pub fn dir(&self) -> &Path {
        match self {
            TlsSetup::Generate { dir } | TlsSetup::Files { dir, .. } => dir,
        }
    }
}

/// Pull-loop timing (PROTOCOL.md §5.5, §9.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PollTiming {
    /// Pause between quotes of one agent (`quote_interval`).
    pub quote_interval: Duration,
    /// Base pause before a retry (`retry_interval`).
    pub retry_interval: Duration,
    /// Retries before FAILED (`max_retries`).
    pub max_retries: u32,
    /// `retry_interval ^ n` instead of a fixed pause (`exponential_backoff`).
    pub exponential_backoff: bool,
    /// Deadline of one request to an agent (`request_timeout`).
    pub request_timeout: Duration,
}

impl Default for PollTiming {
    fn default() -> Self {
        PollTiming {
            quote_interval: Duration::from_secs(2),
            retry_interval: Duration::from_secs(2),
            max_retries: 5,
            exponential_backoff: true,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// `[revocations]` options the verifier uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSettings {
    /// `enabled_revocation_notifications` (default `['agent']`).
    pub notifiers: Vec<String>,
    /// `webhook_url` (empty: no webhook even if enabled).
    pub webhook_url: String,
    /// `webhook_max_age` (ours): a webhook notice older than this is dropped undelivered;
    /// `None` (0, the default) keeps every notice until the receiver acknowledges it.
    pub webhook_max_age: Option<Duration>,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        RevocationSettings {
            notifiers: vec!["agent".into()],
            webhook_url: String::new(),
            webhook_max_age: None,
        }
    }
}

/// Everything [`crate::start`] needs.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// HTTPS listener (`ip:port`, 8881). Port 0 picks a free port.
    pub addr: SocketAddr,
    /// `[verifier] uuid`: which agents in the database this instance polls.
    pub verifier_id: String,
    pub tls: TlsSetup,
    pub ca: CaOptions,
    pub server_sans: Vec<String>,
    pub database_url: DatabaseUrl,
    pub store_options: StoreOptions,
    /// Agents must send `mtls_cert` (upstream `enable_agent_mtls`).
    pub enable_agent_mtls: bool,
    pub max_body_bytes: usize,
    pub timing: PollTiming,
    /// Polls (request + check) running at once across all agents.
    pub max_concurrent_polls: usize,
    pub severity_labels: Vec<String>,
    pub severity_policy: Vec<SeverityRule>,
    /// `[revocations]`: notifiers and the webhook URL.
    pub revocations: RevocationSettings,
    /// Runtime and measured-boot policy options.
    pub policy: PolicySettings,
    /// Connection limits of the HTTPS listener (the cap is lowered at start to fit the
    /// open-files limit).
    pub connections: ConnectionLimits,
    /// Limits of `POST /verify/evidence`.
    pub evidence: EvidenceSettings,
    /// Push sessions: lifetimes and rate limits.
    pub sessions: SessionSettings,
}

impl VerifierSettings {
    /// Defaults for a verifier whose state lives in `keylime_dir`: loopback 8881,
    /// generated TLS in `cv_ca`, SQLite `cv_data.sqlite`, upstream timing.
    pub fn new(keylime_dir: &Path) -> Self {
        VerifierSettings {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8881),
            verifier_id: "default".into(),
            tls: TlsSetup::Generate {
                dir: keylime_dir.join("cv_ca"),
            },
            ca: CaOptions::default(),
            server_sans: vec!["127.0.0.1".into(), "localhost".into()],
            database_url: DatabaseUrl::Sqlite(keylime_dir.join("cv_data.sqlite")),
            store_options: StoreOptions::default(),
            enable_agent_mtls: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timing: PollTiming::default(),
            max_concurrent_polls: 256,
            severity_labels: keylime_attestation::failure::DEFAULT_SEVERITY_LABELS
                .map(String::from)
                .to_vec(),
            severity_policy: Vec::new(),
            revocations: RevocationSettings::default(),
            policy: PolicySettings::default(),
            connections: ConnectionLimits::default(),
            evidence: EvidenceSettings::default(),
            sessions: SessionSettings::default(),
        }
    }

    /// Read `verifier.conf` and `ca.conf` as upstream does and build the settings.
    pub fn from_environment() -> anyhow::Result<Self> {
        let verifier = VerifierConfig::load().context("reading verifier configuration")?;
        let ca = CaConfig::load().context("reading CA configuration")?;
        Self::from_config(&verifier, &ca)
    }

    /// Build settings from loaded configuration.
    pub fn from_config(cfg: &VerifierConfig, ca: &CaConfig) -> anyhow::Result<Self> {
        let ip: IpAddr = cfg
            .ip
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .with_context(|| format!("[verifier] ip {:?} is not an IP address", cfg.ip))?;
        let mut server_sans = vec![ip.to_string()];
        server_sans.extend(cfg.cert_subject_alternative_names.iter().cloned());
        if ip.is_unspecified() || ip.is_loopback() {
            server_sans.push("localhost".into());
        }
        let secs = |what: &str, v: f64| {
            Duration::try_from_secs_f64(v.max(0.0))
                .with_context(|| format!("[verifier] {what} = {v} is not a duration"))
        };
        Ok(VerifierSettings {
            addr: SocketAddr::new(ip, cfg.port),
            verifier_id: cfg.uuid.clone(),
            tls: tls_setup(cfg)?,
            ca: CaOptions {
                cert_country: ca.cert_country.clone(),
                cert_ca_name: ca.cert_ca_name.clone(),
                cert_state: ca.cert_state.clone(),
                cert_locality: ca.cert_locality.clone(),
                cert_organization: ca.cert_organization.clone(),
                cert_org_unit: ca.cert_org_unit.clone(),
                cert_ca_lifetime: ca.cert_ca_lifetime,
                cert_lifetime: ca.cert_lifetime,
                cert_bits: ca.cert_bits,
                cert_crl_dist: (!ca.cert_crl_dist.is_empty()).then(|| ca.cert_crl_dist.clone()),
                key_algorithm: KeyAlgorithm::Rsa,
            },
            server_sans,
            database_url: match &cfg.database_url {
                keylime_config::DatabaseUrl::Sqlite(p) => DatabaseUrl::Sqlite(p.clone()),
                keylime_config::DatabaseUrl::Postgres(u) => DatabaseUrl::Postgres(u.clone()),
                keylime_config::DatabaseUrl::Mysql(u) => DatabaseUrl::Mysql(u.clone()),
            },
            store_options: StoreOptions {
                auto_migrate: cfg.auto_migrate_db,
                max_connections: (cfg.database_pool_sz_ovfl.size
                    + cfg.database_pool_sz_ovfl.max_overflow)
                    .max(1),
            },
            enable_agent_mtls: cfg.enable_agent_mtls,
            max_body_bytes: usize::try_from(cfg.max_upload_size).unwrap_or(usize::MAX),
            timing: PollTiming {
                quote_interval: secs("quote_interval", cfg.quote_interval)?,
                retry_interval: secs("retry_interval", cfg.retry_interval)?,
                max_retries: cfg.max_retries,
                exponential_backoff: cfg.exponential_backoff,
                request_timeout: secs("request_timeout", cfg.request_timeout)?,
            },
            max_concurrent_polls: 256,
            severity_labels: cfg.severity_labels.clone(),
            severity_policy: cfg
                .severity_policy
                .iter()
                .map(|r| SeverityRule {
                    event_id: r.event_id.clone(),
                    severity_label: r.severity_label.clone(),
                })
                .collect(),
            revocations: RevocationSettings {
                notifiers: cfg.revocations.enabled_revocation_notifications.clone(),
                webhook_url: cfg.revocations.webhook_url.clone(),
                webhook_max_age: (cfg.revocations.webhook_max_age > 0)
                    .then(|| Duration::from_secs(cfg.revocations.webhook_max_age)),
            },
            policy: PolicySettings {
                measured_boot_policy_name: cfg.measured_boot_policy_name.clone(),
                measured_boot_evaluate_always: cfg.measured_boot_evaluate
                    == keylime_config::MeasuredBootEvaluate::Always,
                ignore_tomtou_errors: cfg.ignore_tomtou_errors,
                require_allow_list_signatures: cfg.require_allow_list_signatures,
            },
            connections: ConnectionLimits::from_config(&cfg.connections),
            evidence: EvidenceSettings::from_config(&cfg.verify_evidence),
            sessions: SessionSettings::from_config(cfg),
        })
    }
}

fn tls_setup(cfg: &VerifierConfig) -> anyhow::Result<TlsSetup> {
    if cfg.tls_dir == TlsDirSetting::Generate {
        return Ok(TlsSetup::Generate {
            dir: cfg.tls_dir_path(),
        });
    }
    let server = cfg.server_tls();
    let client = cfg.client_tls();
    let (Some(server_cert), Some(server_key)) = (server.cert, server.key) else {
        bail!("[verifier] server_cert and server_key must name files");
    };
    let (Some(client_cert), Some(client_key)) = (client.cert, client.key) else {
        bail!("[verifier] client_cert and client_key must name files");
    };
    if server.key_password.is_some() || client.key_password.is_some() {
        bail!("[verifier] encrypted private keys are not supported: use unencrypted key files");
    }
    let cas = |p: PeerVerification, option: &str| match p {
        PeerVerification::TrustedCas(paths) => Ok(paths),
        PeerVerification::Disabled => bail!("[verifier] {option} = all is refused"),
    };
    Ok(TlsSetup::Files {
        dir: server.tls_dir,
        server_cert,
        server_key,
        trusted_client_ca: cas(server.peer, "trusted_client_ca")?,
        client_cert,
        client_key,
        trusted_server_ca: cas(client.peer, "trusted_server_ca")?,
    })
}
