//! Payload encryption: `b64(iv16 || AES-256-GCM(K, iv16, plaintext) || tag16)`, the
//! layout of upstream's `crypto.encrypt` used by the tenant for `--payload`.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use crate::{BootstrapKey, PayloadError};

/// AES-256-GCM with upstream's 16-byte IV.
type Aes256Gcm16 = AesGcm<Aes256, U16>;

const IV_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// Largest base64 payload [`decrypt_payload`] accepts (64 MiB of text).
pub const MAX_PAYLOAD_B64_LEN: usize = 64 * 1024 * 1024;

/// Encrypts a payload under K with a fresh random IV; returns the base64 text sent as
/// `payload` in `POST /keys/ukey`.
pub fn encrypt_payload(k: &BootstrapKey, plaintext: &[u8]) -> String {
    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    encrypt_with_iv(k, &iv, plaintext)
}

fn encrypt_with_iv(k: &BootstrapKey, iv: &[u8; IV_LEN], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm16::new(k.as_bytes().into());
    // GCM encryption only fails for plaintexts beyond 2^36 bytes, far above any payload.
    let ct = match cipher.encrypt(Nonce::<U16>::from_slice(iv), plaintext) {
        Ok(ct) => ct,
        Err(_) => unreachable!("AES-GCM plaintext above 64 GiB"),
    };
    let mut blob = Vec::with_capacity(IV_LEN + ct.len());
    blob.extend_from_slice(iv);
    blob.extend_from_slice(&ct);
    STANDARD.encode(blob)
}

/// Decrypts a base64 payload produced by [`encrypt_payload`] (or upstream's tenant).
/// Surrounding whitespace is ignored.
pub fn decrypt_payload(k: &BootstrapKey, b64: &str) -> Result<Vec<u8>, PayloadError> {
    let text = b64.trim();
    if text.len() > MAX_PAYLOAD_B64_LEN {
        return Err(PayloadError::PayloadTooLarge {
            actual: text.len(),
            limit: MAX_PAYLOAD_B64_LEN,
        });
    }
    let blob = STANDARD
        .decode(text)
        .map_err(|source| PayloadError::Base64 {
            what: "encrypted payload",
            source,
        })?;
    if blob.len() < IV_LEN + TAG_LEN {
        return Err(PayloadError::PayloadTooShort {
            actual: blob.len(),
            minimum: IV_LEN + TAG_LEN,
        });
    }
    let (iv, ct) = blob.split_at(IV_LEN);
    let cipher = Aes256Gcm16::new(k.as_bytes().into());
    cipher
        .decrypt(Nonce::<U16>::from_slice(iv), ct)
        .map_err(|_| PayloadError::PayloadAuthentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting_key() -> BootstrapKey {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        BootstrapKey::from_bytes(k)
    }

    /// Produced by Python `cryptography`'s AESGCM with K = bytes(range(32)),
    /// iv = bytes(range(100, 116)), plaintext "keylime secure payload".
    const PYTHON_VECTOR: &str =
        "ZGVmZ2hpamtsbW5vcHFyc7PWOj2NeUL4wZzO/DWyzBU7CDSv/YvQUzAnfTxKPBZkR59KvYEe";

    #[test]
    fn decrypts_independent_known_answer() {
        let pt = decrypt_payload(&counting_key(), PYTHON_VECTOR).expect("decrypt");
        assert_eq!(pt, b"keylime secure payload");
    }

    #[test]
    fn encrypts_known_answer_with_fixed_iv() {
        let mut iv = [0u8; 16];
        for (i, b) in iv.iter_mut().enumerate() {
            *b = 100 + i as u8;
        }
        assert_eq!(
            encrypt_with_iv(&counting_key(), &iv, b"keylime secure payload"),
            PYTHON_VECTOR
        );
    }

    #[test]
    fn round_trip_including_empty() {
        let k = BootstrapKey::generate();
        for pt in [&b""[..], b"x", &[7u8; 10_000]] {
            let b64 = encrypt_payload(&k, pt);
            assert_eq!(decrypt_payload(&k, &b64).expect("decrypt"), pt);
        }
        // Fresh IV each time.
        assert_ne!(encrypt_payload(&k, b"a"), encrypt_payload(&k, b"a"));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let b64 = encrypt_payload(&BootstrapKey::generate(), b"secret");
        let err = decrypt_payload(&BootstrapKey::generate(), &b64).unwrap_err();
        assert!(matches!(err, PayloadError::PayloadAuthentication));
    }

    #[test]
    fn truncated_and_tampered_payloads_are_rejected() {
        let k = counting_key();
        let blob = STANDARD.decode(PYTHON_VECTOR).expect("b64");
        for cut in 0..blob.len() {
            let res = decrypt_payload(&k, &STANDARD.encode(&blob[..cut]));
            assert!(res.is_err(), "truncation to {cut} bytes accepted");
        }
        let mut tampered = blob.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            decrypt_payload(&k, &STANDARD.encode(&tampered)),
            Err(PayloadError::PayloadAuthentication)
        ));
        assert!(matches!(
            decrypt_payload(&k, "not base64!"),
            Err(PayloadError::Base64 { .. })
        ));
        assert!(matches!(
            decrypt_payload(&k, "AAAA"),
            Err(PayloadError::PayloadTooShort {
                actual: 3,
                minimum: 32
            })
        ));
    }
}
