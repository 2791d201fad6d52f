//! The crate's single error type.
//!
//! Parse errors name the TPM structure being decoded and the byte offset (from the start of
//! the outermost input) where decoding failed, so a bad quote or public key can be reported
//! precisely to whoever sent it. TPM response codes are kept as the raw `u32` beside the
//! command that produced them.

use crate::rc::ResponseCode;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// The input ended before a field could be read.
    #[error("{structure}: truncated at offset {offset}: need {needed} bytes, {available} left")]
    Truncated {
        structure: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// Bytes remained after the structure was fully decoded.
    #[error("{structure}: {remaining} unexpected trailing bytes at offset {offset}")]
    TrailingBytes {
        structure: &'static str,
        offset: usize,
        remaining: usize,
    },
    /// A size field is larger than the structure allows.
    #[error("{structure}: size {size} at offset {offset} exceeds the maximum {max}")]
    SizeTooLarge {
        structure: &'static str,
        offset: usize,
        size: usize,
        max: usize,
    },
    /// A size prefix disagrees with the size of what it prefixes.
    #[error(
        "{structure}: size field at offset {offset} says {declared} bytes, content is {actual}"
    )]
    SizeMismatch {
        structure: &'static str,
        offset: usize,
        declared: usize,
        actual: usize,
    },
    /// A tag, magic number or selector has a value this structure does not allow.
    #[error("{structure}: unexpected {field} 0x{value:x} at offset {offset}")]
    BadValue {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        value: u32,
    },
    /// An algorithm identifier is not one this crate knows or supports in that position.
    #[error("unsupported {what} algorithm 0x{alg:04x}")]
    UnsupportedAlgorithm { what: &'static str, alg: u16 },
    /// An algorithm name (e.g. from configuration) is not recognised.
    #[error("unknown {what} algorithm name {name:?}")]
    UnknownAlgorithmName { what: &'static str, name: String },
    /// A public key is not usable (bad point, bad modulus, unsupported size).
    #[error("invalid {what} public key: {reason}")]
    InvalidKey { what: &'static str, reason: String },
    /// A signature does not verify or does not fit the key.
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    /// A cryptographic operation failed (encryption, key agreement).
    #[error("{operation} failed: {reason}")]
    Crypto {
        operation: &'static str,
        reason: String,
    },
    /// A base64 field could not be decoded.
    #[error("{field}: invalid base64: {source}")]
    Base64 {
        field: &'static str,
        source: base64::DecodeError,
    },
    /// A Keylime quote string is malformed.
    #[error("invalid quote string: {0}")]
    QuoteString(String),
    /// Caller-supplied arguments are inconsistent (e.g. a PCR index out of range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A TCTI string could not be parsed.
    #[error("invalid TCTI {tcti:?}: {reason}")]
    Tcti { tcti: String, reason: String },
    /// Talking to the TPM failed at the transport level.
    #[error("TPM transport {endpoint}: {source}")]
    Transport {
        endpoint: String,
        source: std::io::Error,
    },
    /// The TPM answered a command with an error code.
    #[error("TPM2_{command} failed: {rc}")]
    Tpm {
        command: &'static str,
        rc: ResponseCode,
    },
    /// The TPM's response could not be understood.
    #[error("TPM2_{command}: malformed response: {reason}")]
    BadResponse {
        command: &'static str,
        reason: String,
    },
}

impl TpmError {
    /// The TPM response code if this error came from the TPM.
    pub fn response_code(&self) -> Option<u32> {
        match self {
            TpmError::Tpm { rc, .. } => Some(rc.0),
            _ => None,
        }
    }

    /// Whether the TPM could not be reached, or no longer holds what this client loaded
    /// (see [`ResponseCode::is_lost_context`]): the cases where opening the TPM again and
    /// reloading its objects can help.
    pub fn is_lost_tpm(&self) -> bool {
        match self {
            TpmError::Transport { .. } => true,
            TpmError::Tpm { rc, .. } => rc.is_lost_context(),
            _ => false,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = TpmError> = std::result::Result<T, E>;
