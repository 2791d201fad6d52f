#![doc = include_str!("../README.md")]
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
