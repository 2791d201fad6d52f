//! The tenant's error type: one variant per thing that can fail, each message naming the
//! service or input involved so the CLI can print it on one line.

use std::path::PathBuf;

/// Why a tenant command failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// A command-line or configuration value is unusable.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// TLS material could not be loaded or combined.
    #[error("TLS setup failed: {what}: {reason}")]
    Tls { what: String, reason: String },
    /// A file could not be read or written.
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The peer could not be reached (connect, TLS handshake, timeout).
    #[error("cannot reach {peer} at {url}: {reason}")]
    Unreachable {
        peer: String,
        url: String,
        reason: String,
    },
    /// The peer answered with a status the command cannot accept.
    #[error("{peer} answered {code} to {method} {path}: {message}")]
    UnexpectedStatus {
        peer: String,
        method: &'static str,
        path: String,
        code: u16,
        message: String,
    },
    /// The verifier refused a policy command (4xx/5xx): its answer as upstream's tenant
    /// prints it (a Python `dict`, `{}` for a body that is not JSON).
    #[error("{answer}")]
    Refused { code: u16, answer: String },
    /// The peer's body is not what the protocol says.
    #[error("{peer} sent a malformed response to {path}: {reason}")]
    MalformedResponse {
        peer: String,
        path: String,
        reason: String,
    },
    /// The agent is unknown to the registrar (or not yet activated); upstream's words.
    #[error(
        "Agent {agent_id} does not exist on {registrar}. Check the agent logs to for error messages while attempting to get registered."
    )]
    NotRegistered {
        agent_id: String,
        registrar: String,
        message: String,
    },
    /// The agent is unknown to the verifier; upstream's words.
    #[error("Agent {agent_id} does not exist on {verifier}.")]
    NotOnVerifier { agent_id: String, verifier: String },
    /// The verifier already has the agent (409).
    #[error(
        "the verifier ({verifier}) already has agent {agent_id}: run \"delete\" or \"update\" first"
    )]
    AlreadyOnVerifier { agent_id: String, verifier: String },
    /// The registrar record is unusable (missing key, bad AK…).
    #[error("registrar record of agent {agent_id} is unusable: {reason}")]
    BadRegistrarRecord { agent_id: String, reason: String },
    /// The EK certificate check failed.
    #[error("EK certificate of agent {agent_id} rejected: {reason}")]
    EkCertificate { agent_id: String, reason: String },
    /// The identity quote did not verify.
    #[error("identity quote of agent {agent_id} is invalid for nonce {nonce}: {reason}")]
    InvalidQuote {
        agent_id: String,
        nonce: String,
        reason: String,
    },
    /// No API version is common to the tenant and the agent.
    #[error("agent {agent_id} has no API version in common with the tenant: {reason}")]
    Version { agent_id: String, reason: String },
    /// A policy given on the command line is unusable (unreadable file, invalid policy or
    /// signature, checksum mismatch, PCR conflict) or a policy name is missing.
    #[error("{0}")]
    Policy(String),
    /// Payload or key preparation failed.
    #[error("payload preparation failed: {0}")]
    Payload(String),
    /// Something did not happen within the retry budget.
    #[error("{what} after {tries} tries")]
    GaveUp { what: String, tries: u32 },
    /// A mode this tenant does not implement.
    #[error("{0} is not yet supported by this tenant")]
    Unsupported(String),
}

impl TenantError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TenantError::File {
            path: path.into(),
            source,
        }
    }
}
