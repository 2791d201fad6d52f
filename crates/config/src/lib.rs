//! Keylime configuration in upstream's formats and option names.
//!
//! * Services (`verifier`, `registrar`, `tenant`, `ca`, `logging`) read the
//!   INI files `/etc/keylime/<c>.conf` plus `<c>.conf.d/` snippets with the
//!   semantics of Python's `configparser` ([`ini`]), overridden by
//!   `KEYLIME_<COMPONENT>[_<SECTION>]_<OPTION>` variables.
//! * The agent reads layered TOML (`agent.conf`, `agent.conf.d/`) and
//!   `KEYLIME_AGENT_<OPTION>` variables ([`AgentConfig`]).
//!
//! Every option has upstream's default (templates 2.6, rust-keylime), so an
//! empty machine yields a working configuration. Unknown options are logged
//! at debug level and otherwise ignored. Where files come from is injectable
//! through [`Sources`]; [`Sources::system`] is the real machine.
//!
//! This crate does no I/O beyond reading configuration files and never
//! creates directories or certificates: it only says where they are.
//!
//! ```
//! use keylime_config::{Sources, VerifierConfig, VerifierMode};
//! let dir = tempfile::tempdir().unwrap();
//! let sources = Sources::isolated(dir.path()).with_env("KEYLIME_VERIFIER_MODE", "push");
//! let cfg = VerifierConfig::load_from(&sources).unwrap();
//! assert_eq!(cfg.mode, VerifierMode::Push);
//! assert_eq!(cfg.port, 8881);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent;
mod ca;
mod connections;
mod durable;
mod error;
mod evidence;
pub mod ini;
mod logging;
mod paths;
pub mod pyliteral;
mod reader;
mod registrar;
mod sources;
mod tenant;
pub mod values;
mod verifier;

pub use agent::{
    AGENT_API_VERSIONS, AGENT_CONFIG_ENV, AgentConfig, ApiVersionsSetting, DEFAULT_IMA_ML_PATH,
    DEFAULT_MEASUREDBOOT_ML_PATH, DEFAULT_RUN_AS, EkHandleSetting, PUSH_API_VERSIONS, UuidSetting,
    agent_list,
};
pub use ca::CaConfig;
pub use connections::ConnectionConfig;
pub use durable::DurableAttestationConfig;
pub use error::{ConfigError, Origin};
pub use evidence::{EvidenceAccess, VerifyEvidenceConfig};
pub use logging::{LogLevel, LoggingConfig};
pub use paths::{
    CA_CERT_FILE, DatabaseUrl, PeerVerification, PoolSize, REGISTRAR_CA_DIR, TlsDirSetting,
    TlsFiles, TrustedCaSetting, VERIFIER_CA_DIR, resolve_in,
};
pub use registrar::{MalformedCertAction, RegistrarConfig, TpmIdentity};
pub use sources::{DEFAULT_KEYLIME_DIR, ServiceComponent, Sources, keylime_dir};
pub use tenant::TenantConfig;
pub use verifier::{
    MeasuredBootEvaluate, RevocationsConfig, SeverityRule, VerifierConfig, VerifierMode,
};
