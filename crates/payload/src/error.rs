//! The one error type of this crate.

/// What went wrong with a key, a payload or a signature.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// A key share or key had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {actual}")]
    KeyLength {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    /// A base64 field did not decode.
    #[error("{what} is not valid base64: {source}")]
    Base64 {
        what: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    /// The encrypted payload is shorter than IV + tag.
    #[error("encrypted payload is {actual} bytes, shorter than the {minimum}-byte IV + GCM tag")]
    PayloadTooShort { actual: usize, minimum: usize },
    /// The encrypted payload exceeds the size this crate accepts.
    #[error("encrypted payload is {actual} base64 characters, more than the limit of {limit}")]
    PayloadTooLarge { actual: usize, limit: usize },
    /// AES-GCM authentication failed: wrong key or tampered ciphertext.
    #[error("payload decryption failed: wrong bootstrap key or corrupted ciphertext")]
    PayloadAuthentication,
    /// A PEM text could not be read as the expected key or certificate.
    #[error("{what} PEM is invalid: {reason}")]
    Pem { what: &'static str, reason: String },
    /// The certificate or key is not an RSA key.
    #[error("{what} does not hold an RSA key")]
    NotRsa { what: &'static str },
    /// RSA-OAEP encryption failed (e.g. the data is too long for the key).
    #[error("RSA-OAEP encryption failed: {0}")]
    OaepEncrypt(String),
    /// RSA-OAEP decryption failed (wrong key or corrupted ciphertext).
    #[error("RSA-OAEP decryption failed")]
    OaepDecrypt,
    /// Producing a signature failed.
    #[error("RSA-PSS signing failed: {0}")]
    Sign(String),
    /// The signature does not verify against the message and key.
    #[error("revocation signature does not verify against the message and the revocation key")]
    BadSignature,
}
