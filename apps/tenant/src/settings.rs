//! The tenant's runtime settings: where the verifier and registrar are, the TLS client
//! identity and trust anchors, accepted TPM algorithms, EK checking and retry timing.
//! Built from `tenant.conf` ([`TenantSettings::from_config`]) with command-line overrides
//! applied by the caller, or directly (tests).

use std::path::PathBuf;
use std::time::Duration;

use keylime_attestation::AcceptedAlgorithms;
use keylime_config::{PeerVerification, TenantConfig};

use crate::error::TenantError;

/// A service endpoint (`ip`, `port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    /// `https://host:port` (IPv6 literals bracketed).
    pub fn base_url(&self, scheme: &str) -> String {
        let host = self.host.trim_matches(|c| c == '[' || c == ']');
        if host.contains(':') {
            format!("{scheme}://[{host}]:{}", self.port)
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The tenant's TLS client material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// Client certificate (PEM) presented to the verifier, registrar and agents.
    pub cert: PathBuf,
    /// Its private key (PEM, unencrypted).
    pub key: PathBuf,
    /// CA files trusted for server certificates (upstream `trusted_server_ca`, a list so
    /// one tenant can trust a verifier CA and a registrar CA); empty = accept any server.
    pub trusted_server_ca: Vec<PathBuf>,
}

/// Retry budget for polls (status after add/delete, `/keys/verify`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub retry_interval: Duration,
    pub exponential_backoff: bool,
}

impl RetryPolicy {
    /// Pause before try `n` (1-based): `interval^n` seconds with backoff (upstream
    /// `retry_time`), else `interval`. Capped at one minute.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.retry_interval.as_secs_f64();
        let secs = if self.exponential_backoff && base > 1.0 {
            base.powi(i32::try_from(n).unwrap_or(i32::MAX))
        } else {
            base
        };
        Duration::from_secs_f64(secs.clamp(0.0, 60.0))
    }
}

/// Everything a [`crate::Tenant`] needs.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    pub verifier: Endpoint,
    /// `-vi/--cvid`: the verifier id used by list/bulk queries.
    pub verifier_id: Option<String>,
    /// The registrar's HTTPS endpoint (`registrar_port`, 8891).
    pub registrar: Endpoint,
    pub tls: ClientTls,
    pub accepted_algorithms: AcceptedAlgorithms,
    pub require_ek_cert: bool,
    pub tpm_cert_store: PathBuf,
    /// `ek_check_script`; run with the EK in its environment after the quote check.
    pub ek_check_script: Option<PathBuf>,
    pub max_payload_size: u64,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl TenantSettings {
    /// Settings from `tenant.conf`.
    pub fn from_config(cfg: &TenantConfig) -> Result<Self, TenantError> {
        let files = cfg.client_tls();
        if files.key_password.is_some() {
            return Err(TenantError::Unsupported(
                "an encrypted client key (client_key_password)".into(),
            ));
        }
        let missing = |what: &str| {
            TenantError::Config(format!(
                "[tenant] {what} is empty: a client certificate is required"
            ))
        };
        let trusted_server_ca = match files.peer {
            PeerVerification::TrustedCas(list) => list,
            PeerVerification::Disabled => Vec::new(),
        };
        let secs = |what: &str, v: f64| {
            Duration::try_from_secs_f64(v.max(0.0)).map_err(|_| {
                TenantError::Config(format!("[tenant] {what} = {v} is not a duration"))
            })
        };
        let script = cfg.ek_check_script.trim();
        Ok(TenantSettings {
            verifier: Endpoint::new(cfg.verifier_ip.clone(), cfg.verifier_port),
            verifier_id: None,
            registrar: Endpoint::new(cfg.registrar_ip.clone(), cfg.registrar_port),
            tls: ClientTls {
                cert: files.cert.ok_or_else(|| missing("client_cert"))?,
                key: files.key.ok_or_else(|| missing("client_key"))?,
                trusted_server_ca,
            },
            accepted_algorithms: AcceptedAlgorithms {
                hash: cfg.accept_tpm_hash_algs.clone(),
                encryption: cfg.accept_tpm_encryption_algs.clone(),
                signing: cfg.accept_tpm_signing_algs.clone(),
            },
            require_ek_cert: cfg.require_ek_cert,
            tpm_cert_store: cfg.tpm_cert_store.clone(),
            ek_check_script: (!script.is_empty())
                .then(|| keylime_config::resolve_in(&cfg.keylime_dir, script)),
            max_payload_size: cfg.max_payload_size,
            request_timeout: secs("request_timeout", cfg.request_timeout)?,
            retry: RetryPolicy {
                max_retries: cfg.max_retries.max(1),
                retry_interval: secs("retry_interval", cfg.retry_interval)?,
                exponential_backoff: cfg.exponential_backoff,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            Endpoint::new("127.0.0.1", 8881).base_url("https"),
            "https://127.0.0.1:8881"
        );
        assert_eq!(
            Endpoint::new("::1", 9002).base_url("http"),
            "http://[::1]:9002"
        );
        assert_eq!(
            Endpoint::new("[::1]", 1).base_url("https"),
            "https://[::1]:1"
        );
    }

    #[test]
    fn backoff() {
        let p = RetryPolicy {
            max_retries: 5,
            retry_interval: Duration::from_secs(2),
            exponential_backoff: true,
        };
        assert_eq!(p.delay(3), Duration::from_secs(8));
        assert_eq!(p.delay(30), Duration::from_secs(60));
        let p = RetryPolicy {
            exponential_backoff: false,
            ..p
        };
        assert_eq!(p.delay(3), Duration::from_secs(2));
    }

    #[test]
    fn from_default_config_trusts_listed_cas() {
        let dir = tempfile::tempdir().unwrap();
        let sources = keylime_config::Sources::isolated(dir.path())
            .with_env("KEYLIME_DIR", dir.path().display().to_string())
            .with_env(
                "KEYLIME_TENANT_TRUSTED_SERVER_CA",
                "['cacert.crt', '/x/reg.crt']",
            );
        let cfg = TenantConfig::load_from(&sources).unwrap();
        let s = TenantSettings::from_config(&cfg).unwrap();
        assert_eq!(s.registrar.port, 8891);
        assert_eq!(s.tls.trusted_server_ca.len(), 2);
        assert_eq!(s.tls.trusted_server_ca[1], PathBuf::from("/x/reg.crt"));
        assert!(s.tls.cert.ends_with("client-cert.crt"));
    }
}
