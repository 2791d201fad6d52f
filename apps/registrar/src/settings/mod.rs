//! The registrar's runtime settings: listeners, TLS material, database, registration
//! policy and request limits. Built from upstream-format configuration
//! ([`RegistrarSettings::from_config`], in `from_config`) or directly (tests, embedding).

mod from_config;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keylime_pki::CaOptions;
use keylime_store::{DatabaseUrl, StoreOptions};
use keylime_web::limits::ConnectionLimits;

use crate::registration_checks::TpmIdentity;

/// Default largest request body (registration bodies are a few KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default whole-request deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the HTTPS listener's certificates come from.
#[derive(Debug, Clone)]
pub enum TlsSetup {
    /// `tls_dir = generate`: create a CA, a server certificate and a client certificate
    /// for the tenant/verifier in `dir` on first start; reuse them afterwards.
    Generate {
        /// The directory (upstream: `$KEYLIME_DIR/reg_ca`).
        dir: PathBuf,
    },
    /// Existing files.
    Files {
        /// The directory the paths were resolved against (reported back).
        dir: PathBuf,
        /// Server certificate chain (PEM).
        server_cert: PathBuf,
        /// Server private key (PEM).
        server_key: PathBuf,
        /// CAs whose client certificates grant admin access.
        trusted_client_ca: Vec<PathBuf>,
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

/// Everything [`crate::start`] needs.
#[derive(Debug, Clone)]
pub struct RegistrarSettings {
    /// Plain HTTP listener (`ip:port`, 8890). Port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// HTTPS listener (`ip:tls_port`, 8891). Port 0 picks a free port.
    pub https_addr: SocketAddr,
    /// TLS material.
    pub tls: TlsSetup,
    /// CA options used when generating.
    pub ca: CaOptions,
    /// Subject alternative names of a generated server certificate.
    pub server_sans: Vec<String>,
    /// The database.
    pub database_url: DatabaseUrl,
    /// Pool and migration options.
    pub store_options: StoreOptions,
    /// `[tenant] require_ek_cert`.
    pub require_ek_cert: bool,
    /// `[tenant] tpm_cert_store`.
    pub tpm_cert_store: Option<PathBuf>,
    /// `[registrar] tpm_identity`.
    pub tpm_identity: TpmIdentity,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Whole-request deadline.
    pub request_timeout: Duration,
    /// Connection limits of each listener (the cap is lowered at start to fit the
    /// open-files limit).
    pub connections: ConnectionLimits,
}

impl RegistrarSettings {
    /// Defaults for a registrar whose state lives in `keylime_dir`: loopback listeners on
    /// 8890/8891, generated TLS in `reg_ca`, SQLite `reg_data.sqlite`, EK certificate
    /// required and checked against `tpm_cert_store` in the same directory.
    pub fn new(keylime_dir: &Path) -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        RegistrarSettings {
            http_addr: SocketAddr::new(loopback, 8890),
            https_addr: SocketAddr::new(loopback, 8891),
            tls: TlsSetup::Generate {
                dir: keylime_dir.join("reg_ca"),
            },
            ca: CaOptions::default(),
            server_sans: vec!["127.0.0.1".into(), "localhost".into()],
            database_url: DatabaseUrl::Sqlite(keylime_dir.join("reg_data.sqlite")),
            store_options: StoreOptions::default(),
            require_ek_cert: true,
            tpm_cert_store: Some(keylime_dir.join("tpm_cert_store")),
            tpm_identity: TpmIdentity::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connections: ConnectionLimits::default(),
        }
    }
}
