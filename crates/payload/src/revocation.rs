//! Revocation message signatures (PROTOCOL.md §7): RSA-PSS with SHA-256, MGF1-SHA-256
//! and the maximum salt length, over the UTF-8 bytes of `msg`, base64 on the wire.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::traits::PublicKeyParts;
use rsa::{Pss, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PayloadError;
use crate::keys::{parse_rsa_private_key_pem, parse_rsa_public_key_pem};

/// Largest base64 signature accepted (an RSA-16384 signature is 2,732 characters).
const MAX_SIGNATURE_B64_LEN: usize = 4096;

/// The body of a revocation notification: the message JSON text and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEnvelope {
    /// The inner message, a JSON object serialised to a string.
    pub msg: String,
    /// b64 RSA-PSS signature of `msg`; `""` when the verifier has no revocation key.
    pub signature: String,
}

impl RevocationEnvelope {
    /// Signs `msg` with the revocation private key and wraps both.
    pub fn signed(msg: String, key_pem: &str) -> Result<Self, PayloadError> {
        let signature = sign(&msg, key_pem)?;
        Ok(Self { msg, signature })
    }

    /// Verifies the signature with the revocation certificate or public key.
    pub fn verify(&self, cert_or_pubkey_pem: &str) -> Result<(), PayloadError> {
        verify(&self.msg, &self.signature, cert_or_pubkey_pem)
    }
}

/// The PSS maximum salt length for a key of `modulus_bits` and SHA-256:
/// emLen - hLen - 2, emLen = ceil((modBits - 1) / 8).
fn max_salt_len(modulus_bits: usize) -> usize {
    let em_len = modulus_bits.saturating_sub(1).div_ceil(8);
    em_len.saturating_sub(Sha256::output_size() + 2)
}

/// Signs `msg` with the RSA private key in `key_pem`; returns the b64 signature.
pub fn sign(msg: &str, key_pem: &str) -> Result<String, PayloadError> {
    let key = parse_rsa_private_key_pem(key_pem)?;
    let salt = max_salt_len(key.n().bits());
    let digest = Sha256::digest(msg.as_bytes());
    let sig = key
        .sign_with_rng(
            &mut rand::rngs::OsRng,
            Pss::new_with_salt::<Sha256>(salt),
            &digest,
        )
        .map_err(|e| PayloadError::Sign(e.to_string()))?;
    Ok(STANDARD.encode(sig))
}

/// Verifies a b64 RSA-PSS signature of `msg` with the key of a certificate or public
/// key PEM. The maximum salt length is tried first (what upstream signs with), then
/// the digest length (the other common choice).
pub fn verify(
    msg: &str,
    signature_b64: &str,
    cert_or_pubkey_pem: &str,
) -> Result<(), PayloadError> {
    let key = parse_rsa_public_key_pem(cert_or_pubkey_pem)?;
    verify_with_key(msg, signature_b64, &key)
}

/// As [`verify`] with an already parsed key.
pub fn verify_with_key(
    msg: &str,
    signature_b64: &str,
    key: &RsaPublicKey,
) -> Result<(), PayloadError> {
    let text = signature_b64.trim();
    if text.is_empty() || text.len() > MAX_SIGNATURE_B64_LEN {
        return Err(PayloadError::BadSignature);
    }
    let sig = STANDARD
        .decode(text)
        .map_err(|source| PayloadError::Base64 {
            what: "revocation signature",
            source,
        })?;
    let digest = Sha256::digest(msg.as_bytes());
    let max = max_salt_len(key.n().bits());
    for salt in [max, Sha256::output_size()] {
        if key
            .verify(Pss::new_with_salt::<Sha256>(salt), &digest, &sig)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(PayloadError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = r#"{"type":"revocation","agent_id":"D432FBB3-D2F1-4A97-9EF7-75BD81C00000"}"#;

    /// Signed by Python `cryptography` (PSS, MGF1-SHA256, salt MAX_LENGTH) with the
    /// upstream test key testdata/keys/ima/keylime/rsa2048.pem.
    const PYTHON_SIGNATURE: &str = "Po54fik9t/x3a7uguCHcUlLQxYqHXs30I6NPLU4n9UZiJCV4zi+vWGiow1HDktwLToBkZIgYH2Gh3RNu7vDauLUGNcdTHeWhU5XvVjQgsxlFPoZ2dwYgcJt324tuZHZ2r9en6ILD/Cn7bUVqQlcywZE4shctsf/0nV2PjsLL9smGmlxS3hXDVyVZD3E2OgJhDPjHl8qh6hqqN5lDLu4vuIdRkpWfyTQ3NYpj1VPfrIJWwpi8+XfmTij9+Vxw3IGvJkfdu6ASMKPZ4+BsY9GLUBkXV0C1g0lIirPpVEuSHFXSpKHXZMi25f1IN/2wm8v3Uzak/atNUGHtqI0w6recsw==";

    fn testdata(rel: &str) -> String {
        let path = keylime_testkit::testdata(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    #[test]
    fn max_salt_for_rsa2048_is_222() {
        assert_eq!(max_salt_len(2048), 222);
    }

    #[test]
    fn verifies_python_signature() {
        let pubkey = testdata("keys/ima/keylime/rsa2048pub.pem");
        verify(MSG, PYTHON_SIGNATURE, &pubkey).expect("upstream-style signature verifies");
        assert!(matches!(
            verify(
                &MSG.replace("revocation", "comm_error"),
                PYTHON_SIGNATURE,
                &pubkey
            ),
            Err(PayloadError::BadSignature)
        ));
    }

    #[test]
    fn sign_then_verify_with_pkcs1_key() {
        let key = testdata("keys/ima/keylime/rsa2048.pem");
        let pubkey = testdata("keys/ima/keylime/rsa2048pub.pem");
        let env = RevocationEnvelope::signed(MSG.to_string(), &key).expect("sign");
        env.verify(&pubkey).expect("verify");
        let json = serde_json::to_string(&env).expect("json");
        let back: RevocationEnvelope = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, env);
    }

    #[test]
    fn bad_signatures_are_errors_not_panics() {
        let pubkey = testdata("keys/ima/keylime/rsa2048pub.pem");
        for sig in [
            "",
            "!!!",
            "AAAA",
            &"A".repeat(5000),
            &PYTHON_SIGNATURE[..100],
        ] {
            assert!(verify(MSG, sig, &pubkey).is_err(), "accepted {sig:?}");
        }
        assert!(verify(MSG, PYTHON_SIGNATURE, "garbage").is_err());
    }
}
