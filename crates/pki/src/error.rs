//! The one error type of this crate. Every variant names the input (a path, a
//! certificate subject, a store file) and what was wrong with it.

use std::path::PathBuf;

/// Errors from certificate generation, TLS configuration and EK certificate checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or directory could not be read, written or created.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", "creating directory", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A PEM file held no certificate.
    #[error("no certificate found in {path}")]
    NoCertificate {
        /// The file read.
        path: PathBuf,
    },

    /// A PEM file held no private key (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in {path}")]
    NoPrivateKey {
        /// The file read.
        path: PathBuf,
    },

    /// A PEM file could not be parsed.
    #[error("malformed PEM in {what}: {reason}")]
    Pem {
        /// The input (a path or a description).
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// Key generation failed.
    #[error("generating {what} key: {reason}")]
    KeyGeneration {
        /// Which key ("CA", "server", ...).
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// An existing private key could not be used for signing.
    #[error("loading private key {path}: {reason}")]
    KeyLoad {
        /// The key file.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },

    /// rcgen refused to build or sign a certificate.
    #[error("creating {what} certificate: {source}")]
    CertGeneration {
        /// Which certificate ("CA", "server", "client", "agent").
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },

    /// A CaOptions value is unusable.
    #[error("invalid CA option {option}: {reason}")]
    InvalidCaOption {
        /// The option name as in upstream `ca.conf`.
        option: &'static str,
        /// Why it is unusable.
        reason: String,
    },

    /// A certificate (or bundle) could not be parsed.
    #[error("cannot parse {what}: {reason}")]
    CertParse {
        /// Which certificate ("EK certificate", "store file IFX1.pem", ...).
        what: String,
        /// The parser's complaint.
        reason: String,
    },

    /// An input is larger than this crate accepts.
    #[error("{what} is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The input.
        what: String,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// rustls rejected a configuration (bad key, unusable certificate, ...).
    #[error("building TLS configuration: {0}")]
    Tls(#[from] rustls::Error),

    /// A client-certificate verifier could not be built (for example no trusted CA).
    #[error("building client certificate verifier: {0}")]
    ClientVerifier(String),

    /// The TPM cert store directory could not be read or held no certificate.
    #[error("TPM cert store {path}: {reason}")]
    CertStore {
        /// The store directory.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// No certificate in the TPM cert store (or the extra intermediates) issued the certificate.
    #[error(
        "certificate '{subject}' (issuer '{issuer}') does not chain to any CA in the TPM cert store"
    )]
    UnknownIssuer {
        /// Subject of the certificate whose issuer is missing.
        subject: String,
        /// The issuer name it asks for.
        issuer: String,
    },

    /// A CA with the right name was found but the signature does not verify with its key.
    #[error(
        "signature of certificate '{subject}' does not verify with the key of '{issuer}' ({source_name}): {reason}"
    )]
    BadSignature {
        /// Subject of the signed certificate.
        subject: String,
        /// Subject of the candidate issuer.
        issuer: String,
        /// Where the candidate issuer came from (store file name or "intermediate #n").
        source_name: String,
        /// Why verification failed.
        reason: String,
    },

    /// An untrusted intermediate that would issue the certificate is not a CA.
    #[error(
        "intermediate '{issuer}' ({source_name}) that would issue '{subject}' is not a CA (basicConstraints cA is not true)"
    )]
    IssuerNotCa {
        /// Subject of the certificate.
        subject: String,
        /// Subject of the intermediate.
        issuer: String,
        /// Which intermediate.
        source_name: String,
    },

    /// The certificate's signature algorithm or its issuer's key type is not supported.
    #[error("unsupported signature algorithm {algorithm} in certificate '{subject}'")]
    UnsupportedAlgorithm {
        /// Subject of the certificate.
        subject: String,
        /// The algorithm (OID or name).
        algorithm: String,
    },

    /// A certificate of the chain is outside its validity period and the policy enforces it.
    #[error("certificate '{subject}' is not valid at {at} (valid {not_before} .. {not_after})")]
    NotValidAtTime {
        /// Subject of the certificate.
        subject: String,
        /// The time checked (RFC 3339).
        at: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },

    /// The chain ended at a store CA that is not self-signed, and the policy requires a root.
    #[error("chain of '{subject}' ends at '{anchor}', which is not a self-signed root")]
    NoSelfSignedRoot {
        /// Subject of the verified certificate.
        subject: String,
        /// Subject of the last certificate reached.
        anchor: String,
    },

    /// Input that should hold a certificate held none.
    #[error("no certificate in {what}")]
    Empty {
        /// The input.
        what: String,
    },
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
