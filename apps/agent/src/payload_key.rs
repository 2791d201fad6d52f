//! The agent's payload key NK: an RSA-2048 key created on first start and kept in
//! `payload_key` (under `keylime_dir`, mode 0600, written atomically). Its public PEM is
//! what `/keys/pubkey` and the quotes return, what PCR 16 is bound to, and what the
//! tenant and verifier encrypt the key shares U and V for (RSA-OAEP-SHA1).
//!
//! `payload_key_password` is not supported: the key is stored unencrypted, protected by
//! file permissions, as upstream's Rust agent does by default.

use std::path::{Path, PathBuf};

use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use thiserror::Error;

/// Size of a newly created payload key.
const NK_BITS: usize = 2048;

/// Why the payload key could not be loaded or created.
#[derive(Debug, Error)]
pub enum PayloadKeyError {
    #[error("cannot read payload_key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("payload_key {path} is not a usable RSA private key: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: keylime_payload::PayloadError,
    },
    #[error("cannot create the RSA payload key: {0}")]
    Generate(String),
    #[error("cannot write payload_key {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// NK and its public PEM (SPKI, `-----BEGIN PUBLIC KEY-----`, trailing newline).
pub struct PayloadKey {
    key: RsaPrivateKey,
    pubkey_pem: String,
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadKey")
            .field("pubkey_pem", &self.pubkey_pem)
            .finish_non_exhaustive()
    }
}

impl PayloadKey {
    /// Loads NK from `path`, or creates it there when the file does not exist. A file
    /// that exists but cannot be read as an RSA key is an error (never overwritten).
    pub fn load_or_create(path: &Path) -> Result<Self, PayloadKeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = keylime_payload::parse_rsa_private_key_pem(&text).map_err(|source| {
                    PayloadKeyError::Parse {
                        path: path.into(),
                        source,
                    }
                })?;
                tracing::info!(path = %path.display(), "payload key loaded");
                Self::from_key(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, NK_BITS)
                    .map_err(|e| PayloadKeyError::Generate(e.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| PayloadKeyError::Generate(e.to_string()))?;
                crate::private_files::write_private(path, pem.as_bytes()).map_err(|source| {
                    PayloadKeyError::Write {
                        path: path.into(),
                        source,
                    }
                })?;
                tracing::info!(path = %path.display(), "payload key created");
                Self::from_key(key)
            }
            Err(source) => Err(PayloadKeyError::Read {
                path: path.into(),
                source,
            }),
        }
    }

    fn from_key(key: RsaPrivateKey) -> Result<Self, PayloadKeyError> {
        let pubkey_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| PayloadKeyError::Generate(e.to_string()))?;
        Ok(Self { key, pubkey_pem })
    }

    /// The public key as served by `/keys/pubkey` and bound into PCR 16.
    pub fn pubkey_pem(&self) -> &str {
        &self.pubkey_pem
    }

    /// The private key, for RSA-OAEP decryption of the key shares.
    pub fn private_key(&self) -> &RsaPrivateKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn created_once_then_reloaded_with_same_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/payload-private.pem");
        let first = PayloadKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            first
                .pubkey_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert!(first.pubkey_pem().ends_with("-----END PUBLIC KEY-----\n"));
        let second = PayloadKey::load_or_create(&path).unwrap();
        assert_eq!(first.pubkey_pem(), second.pubkey_pem());
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload-private.pem");
        std::fs::write(&path, "garbage").unwrap();
        let err = PayloadKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, PayloadKeyError::Parse { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
    }
}
