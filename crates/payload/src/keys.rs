//! Reading RSA keys from the PEM texts that travel in Keylime: SPKI or PKCS#1 public
//! keys, X.509 certificates (the revocation certificate), PKCS#8 or PKCS#1 private keys.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::PayloadError;

/// Largest PEM text accepted (a certificate chain fits easily).
const MAX_PEM_LEN: usize = 256 * 1024;

fn first_block(text: &str, what: &'static str) -> Result<pem::Pem, PayloadError> {
    if text.len() > MAX_PEM_LEN {
        return Err(PayloadError::Pem {
            what,
            reason: format!("{} bytes exceeds the {MAX_PEM_LEN}-byte limit", text.len()),
        });
    }
    let blocks = pem::parse_many(text).map_err(|e| PayloadError::Pem {
        what,
        reason: e.to_string(),
    })?;
    blocks.into_iter().next().ok_or(PayloadError::Pem {
        what,
        reason: "no PEM block found".into(),
    })
}

/// Reads an RSA public key from a PEM `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1)
/// or `CERTIFICATE` block (the first block of the text is used).
pub fn parse_rsa_public_key_pem(text: &str) -> Result<RsaPublicKey, PayloadError> {
    const WHAT: &str = "RSA public key or certificate";
    let block = first_block(text, WHAT)?;
    let invalid = |reason: String| PayloadError::Pem { what: WHAT, reason };
    match block.tag() {
        "PUBLIC KEY" => RsaPublicKey::from_public_key_der(block.contents()).map_err(|e| {
            if matches!(e, rsa::pkcs8::spki::Error::OidUnknown { .. }) {
                PayloadError::NotRsa { what: "public key" }
            } else {
                invalid(e.to_string())
            }
        }),
        "RSA PUBLIC KEY" => {
            RsaPublicKey::from_pkcs1_der(block.contents()).map_err(|e| invalid(e.to_string()))
        }
        "CERTIFICATE" => {
            let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
                .map_err(|e| invalid(format!("certificate does not parse: {e}")))?;
            RsaPublicKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).map_err(|_| {
                PayloadError::NotRsa {
                    what: "certificate",
                }
            })
        }
        other => Err(invalid(format!("unexpected PEM block type {other:?}"))),
    }
}

/// Reads an RSA private key from a PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY`
/// (PKCS#1) block.
pub fn parse_rsa_private_key_pem(text: &str) -> Result<RsaPrivateKey, PayloadError> {
    const WHAT: &str = "RSA private key";
    let block = first_block(text, WHAT)?;
    // Never echo key material in the error: only the decoder's message.
    let invalid = |reason: String| PayloadError::Pem { what: WHAT, reason };
    match block.tag() {
        "PRIVATE KEY" => {
            RsaPrivateKey::from_pkcs8_der(block.contents()).map_err(|e| invalid(e.to_string()))
        }
        "RSA PRIVATE KEY" => {
            RsaPrivateKey::from_pkcs1_der(block.contents()).map_err(|e| invalid(e.to_string()))
        }
        other => Err(invalid(format!("unexpected PEM block type {other:?}"))),
    }
}
