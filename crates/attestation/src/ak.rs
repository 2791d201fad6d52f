//! The agent's attestation key, parsed once and kept in a form ready for verification.
//!
//! Signatures are checked with `ring` where it supports the key and hash (RSA 2048–8192
//! PKCS#1 v1.5 with SHA-1/256/384/512; ECDSA P-256 + SHA-256, P-384 + SHA-384), which is the
//! hot path of every quote check; anything else (RSA-PSS, P-521, SM3, short RSA keys,
//! mixed curve/hash pairs ring only offers in ASN.1 form) goes
//! through `keylime_tpm::verify_signature`. Which *schemes* are acceptable for a quote is
//! decided by the caller (see `quote`), not here.

use keylime_tpm::{EccCurve, HashAlg, Public, PublicKey, Signature, TpmError, verify_signature};
use ring::signature::{self as rs, RsaPublicKeyComponents, UnparsedPublicKey};

/// What the key is, for the quote scheme rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkKind {
    Rsa,
    Ecc,
}

#[derive(Debug, Clone)]
enum RingKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { curve: EccCurve, point: Vec<u8> },
}

/// An AK (`TPM2B_PUBLIC`) prepared for repeated signature checks.
#[derive(Debug, Clone)]
pub struct PreparedAk {
    public: Public,
    ring: Option<RingKey>,
}

/// Why an AK could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("ak_tpm is not a usable TPM2B_PUBLIC: {0}")]
pub struct AkError(#[from] pub TpmError);

impl PreparedAk {
    /// Parse a `TPM2B_PUBLIC` (the registrar's `aik_tpm` / verifier's `ak_tpm`, decoded).
    pub fn from_tpm2b(ak_tpm: &[u8]) -> Result<Self, AkError> {
        let public = Public::from_tpm2b(ak_tpm)?;
        let ring = match &public.key {
            PublicKey::Rsa {
                modulus,
                exponent,
                bits,
            } if (2048..=8192).contains(bits) => {
                let e = PublicKey::rsa_exponent(*exponent).to_be_bytes();
                let first = e.iter().position(|&b| b != 0).unwrap_or(e.len() - 1);
                Some(RingKey::Rsa {
                    n: modulus.clone(),
                    e: e[first..].to_vec(),
                })
            }
            PublicKey::Ecc { curve, x, y } => {
                match (curve.coordinate_len(), curve) {
                    (Some(len), EccCurve::NistP256 | EccCurve::NistP384)
                        if x.len() <= len && y.len() <= len =>
                    {
                        // Uncompressed SEC1 point, coordinates left-padded.
                        let mut point = vec![0x04];
                        point.resize(1 + len - x.len(), 0);
                        point.extend(x);
                        point.resize(1 + 2 * len - y.len(), 0);
                        point.extend(y);
                        Some(RingKey::Ec {
                            curve: *curve,
                            point,
                        })
                    }
                    _ => None,
                }
            }
            PublicKey::Rsa { .. } => None,
        };
        Ok(PreparedAk { public, ring })
    }

    pub fn public(&self) -> &Public {
        &self.public
    }

    pub fn kind(&self) -> AkKind {
        match self.public.key {
            PublicKey::Rsa { .. } => AkKind::Rsa,
            PublicKey::Ecc { .. } => AkKind::Ecc,
        }
    }

    /// Verify `sig` over `message` (the exact `TPMS_ATTEST` bytes).
    pub fn verify(&self, message: &[u8], sig: &Signature) -> Result<(), TpmError> {
        match self.ring_verify(message, sig) {
            Some(true) => Ok(()),
            Some(false) => Err(TpmError::BadSignature(format!(
                "{}-{} signature does not verify with the AK",
                sig.sign_alg(),
                sig.hash()
            ))),
            None => verify_signature(&self.public, message, sig),
        }
    }

    /// `Some(valid)` when ring handles this key/scheme/hash, `None` otherwise.
    fn ring_verify(&self, message: &[u8], sig: &Signature) -> Option<bool> {
        match (self.ring.as_ref()?, sig) {
            (RingKey::Rsa { n, e }, Signature::RsaSsa { hash, sig }) => {
                let params: &rs::RsaParameters = match hash {
                    HashAlg::Sha1 => &rs::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                    HashAlg::Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                    HashAlg::Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                    HashAlg::Sha512 => &rs::RSA_PKCS1_2048_8192_SHA512,
                    HashAlg::Sm3_256 => return None,
                };
                Some(
                    RsaPublicKeyComponents { n, e }
                        .verify(params, message, sig)
                        .is_ok(),
                )
            }
            (RingKey::Ec { curve, point }, Signature::Ecdsa { hash, r, s }) => {
                let (alg, len): (&rs::EcdsaVerificationAlgorithm, usize) = match (curve, hash) {
                    (EccCurve::NistP256, HashAlg::Sha256) => (&rs::ECDSA_P256_SHA256_FIXED, 32),
                    (EccCurve::NistP384, HashAlg::Sha384) => (&rs::ECDSA_P384_SHA384_FIXED, 48),
                    _ => return None,
                };
                let (Some(r), Some(s)) = (fixed(r, len), fixed(s, len)) else {
                    return Some(false);
                };
                let mut rs_bytes = r;
                rs_bytes.extend(s);
                Some(
                    UnparsedPublicKey::new(alg, point)
                        .verify(message, &rs_bytes)
                        .is_ok(),
                )
            }
            _ => None,
        }
    }
}

/// Left-pad a big-endian scalar to `len` bytes; `None` if it does not fit.
fn fixed(v: &[u8], len: usize) -> Option<Vec<u8>> {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    let v = v.get(first..)?;
    if v.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - v.len()];
    out.extend(v);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_pads_and_rejects_oversize() {
        assert_eq!(fixed(&[1, 2], 4), Some(vec![0, 0, 1, 2]));
        assert_eq!(fixed(&[0, 0, 0, 0, 0, 9], 4), Some(vec![0, 0, 0, 9]));
        assert_eq!(fixed(&[1, 2, 3, 4, 5], 4), None);
        assert_eq!(fixed(&[], 2), Some(vec![0, 0]));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(PreparedAk::from_tpm2b(&[0, 3, 1, 2, 3]).is_err());
        assert!(PreparedAk::from_tpm2b(&[]).is_err());
    }
}
