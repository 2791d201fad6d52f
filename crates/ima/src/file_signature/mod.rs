//! IMA file signatures (`ima-sig`): the v2 signature header, the keys that verify it and
//! their key ids, and the policy's `verification-keys` keyring (PROTOCOL.md §8.1, §8.2).
//!
//! A signature is checked the way the kernel and upstream Keylime check it: a v2 digital
//! signature (type 3 or 5, version 2) whose hash algorithm is the one of the logged file
//! digest, by a trusted key with the signature's key id, over the file digest as logged.

mod header;
mod keyring;
mod keys;

pub use header::{
    ImaSignature, SIGNATURE_HEADER_LEN, SignatureHeaderError, kernel_hash_id, kernel_hash_name,
};
pub use keyring::{KeyringError, SkippedKey, parse_verification_keys};
pub use keys::{KeyError, PublicKey};

/// The outcome of checking one `sig` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A trusted key with the signature's key id verified it.
    Valid { keyid: u32 },
    /// The header is inconsistent.
    Malformed(SignatureHeaderError),
    /// Not a v2 digital signature (type, version).
    NotV2 { sig_type: u8, version: u8 },
    /// The signature's hash algorithm is unknown or differs from the file digest's.
    HashMismatch { signature: u8, digest: String },
    /// No trusted key has this id.
    NoKey { keyid: u32 },
    /// Keys with this id exist but none verifies the signature.
    Invalid { keyid: u32 },
}

impl SignatureCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid { .. })
    }
}

/// Checks the raw `sig` field against `digest` (logged with algorithm `digest_alg`), trying
/// every key `keys_for` yields for the signature's key id.
pub fn check_signature<'k, I>(
    sig_field: &[u8],
    digest_alg: &str,
    digest: &[u8],
    keys_for: impl FnOnce(u32) -> I,
) -> SignatureCheck
where
    I: Iterator<Item = &'k PublicKey>,
{
    let sig = match ImaSignature::parse(sig_field) {
        Ok(s) => s,
        Err(e) => return SignatureCheck::Malformed(e),
    };
    if !sig.is_v2_digsig() {
        return SignatureCheck::NotV2 {
            sig_type: sig.sig_type,
            version: sig.version,
        };
    }
    if sig.hash_name() != Some(digest_alg) {
        return SignatureCheck::HashMismatch {
            signature: sig.hash_algo,
            digest: digest_alg.to_owned(),
        };
    }
    let mut any = false;
    for key in keys_for(sig.keyid) {
        any = true;
        if key.verify_digest(digest_alg, digest, sig.signature) {
            return SignatureCheck::Valid { keyid: sig.keyid };
        }
    }
    if any {
        SignatureCheck::Invalid { keyid: sig.keyid }
    } else {
        SignatureCheck::NoKey { keyid: sig.keyid }
    }
}
