//! Conversion of TPM public keys to standard forms: RustCrypto key objects,
//! SubjectPublicKeyInfo DER, and the PEM text upstream Keylime sends as `pubkey`.

use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPublicKey};

use crate::alg::EccCurve;
use crate::error::{Result, TpmError};
use crate::public::{Public, PublicKey};

/// An ECC public key on a curve we have arithmetic for.
#[derive(Debug, Clone)]
pub(crate) enum EcKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
}

/// Left-pad a coordinate to the curve's fixed size (some TPMs drop leading zeros).
pub(crate) fn pad_coordinate(c: &[u8], len: usize, what: &'static str) -> Result<Vec<u8>> {
    let trimmed = {
        let first = c.iter().position(|&b| b != 0).unwrap_or(c.len());
        &c[first..]
    };
    if trimmed.len() > len {
        return Err(TpmError::InvalidKey {
            what,
            reason: format!("coordinate of {} bytes exceeds {len}", c.len()),
        });
    }
    let mut out = vec![0u8; len - trimmed.len()];
    out.extend_from_slice(trimmed);
    Ok(out)
}

fn sec1_point(curve: EccCurve, x: &[u8], y: &[u8]) -> Result<Vec<u8>> {
    let len = curve
        .coordinate_len()
        .ok_or(TpmError::UnsupportedAlgorithm {
            what: "ECC curve",
            alg: curve.tpm_id(),
        })?;
    let mut point = vec![0x04];
    point.extend(pad_coordinate(x, len, "ECC")?);
    point.extend(pad_coordinate(y, len, "ECC")?);
    Ok(point)
}

fn bad_point(e: impl std::fmt::Display) -> TpmError {
    TpmError::InvalidKey {
        what: "ECC",
        reason: format!("point not on curve: {e}"),
    }
}

impl Public {
    /// The RSA public key, or an error if this is not a usable RSA key.
    pub(crate) fn rsa_key(&self) -> Result<RsaPublicKey> {
        match &self.key {
            PublicKey::Rsa {
                modulus, exponent, ..
            } => RsaPublicKey::new(
                BigUint::from_bytes_be(modulus),
                BigUint::from(PublicKey::rsa_exponent(*exponent)),
            )
            .map_err(|e| TpmError::InvalidKey {
                what: "RSA",
                reason: e.to_string(),
            }),
            PublicKey::Ecc { .. } => Err(TpmError::InvalidKey {
                what: "RSA",
                reason: "key is ECC".into(),
            }),
        }
    }

    /// The ECC public key, or an error if this is not a usable ECC key.
    pub(crate) fn ec_key(&self) -> Result<EcKey> {
        let PublicKey::Ecc { curve, x, y } = &self.key else {
            return Err(TpmError::InvalidKey {
                what: "ECC",
                reason: "key is RSA".into(),
            });
        };
        let point = sec1_point(*curve, x, y)?;
        Ok(match curve {
            EccCurve::NistP256 => {
                EcKey::P256(p256::PublicKey::from_sec1_bytes(&point).map_err(bad_point)?)
            }
            EccCurve::NistP384 => {
                EcKey::P384(p384::PublicKey::from_sec1_bytes(&point).map_err(bad_point)?)
            }
            EccCurve::NistP521 => {
                EcKey::P521(p521::PublicKey::from_sec1_bytes(&point).map_err(bad_point)?)
            }
            other => {
                return Err(TpmError::UnsupportedAlgorithm {
                    what: "ECC curve",
                    alg: other.tpm_id(),
                });
            }
        })
    }

    /// DER `SubjectPublicKeyInfo` of the key (RSA, or EC on P-256/P-384/P-521).
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        let doc = match &self.key {
            PublicKey::Rsa { .. } => self.rsa_key()?.to_public_key_der(),
            PublicKey::Ecc { .. } => match self.ec_key()? {
                EcKey::P256(k) => k.to_public_key_der(),
                EcKey::P384(k) => k.to_public_key_der(),
                EcKey::P521(k) => k.to_public_key_der(),
            },
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|e| TpmError::InvalidKey {
                what: "SubjectPublicKeyInfo",
                reason: e.to_string(),
            })
    }

    /// PEM `PUBLIC KEY` text with LF line endings and a trailing newline, as upstream sends.
    pub fn public_key_pem(&self) -> Result<String> {
        let der = self.spki_der()?;
        let doc =
            rsa::pkcs8::Document::try_from(der.as_slice()).map_err(|e| TpmError::InvalidKey {
                what: "SubjectPublicKeyInfo",
                reason: e.to_string(),
            })?;
        doc.to_pem("PUBLIC KEY", LineEnding::LF)
            .map_err(|e| TpmError::InvalidKey {
                what: "SubjectPublicKeyInfo",
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::{HashAlg, id};
    use crate::marshal::Writer;

    fn ecc_public(x: &[u8], y: &[u8]) -> Public {
        let mut w = Writer::new();
        w.u16(id::ECC).u16(id::SHA256).u32(0x0005_0072).tpm2b(&[]);
        w.u16(id::NULL)
            .u16(id::ECDSA)
            .u16(id::SHA256)
            .u16(3)
            .u16(id::NULL);
        w.tpm2b(x).tpm2b(y);
        Public::from_tpmt(&w.buf).unwrap()
    }

    #[test]
    fn ec_spki_matches_p256_encoding() {
        let sk = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pt =
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false);
        let p = ecc_public(pt.x().unwrap(), pt.y().unwrap());
        assert_eq!(p.name_alg, HashAlg::Sha256);
        let der = p.spki_der().unwrap();
        assert_eq!(der, sk.public_key().to_public_key_der().unwrap().as_bytes());
        let pem = p.public_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    }

    #[test]
    fn off_curve_point_is_rejected() {
        let p = ecc_public(&[1u8; 32], &[2u8; 32]);
        assert!(matches!(p.spki_der(), Err(TpmError::InvalidKey { .. })));
    }

    #[test]
    fn short_coordinates_are_padded() {
        assert_eq!(pad_coordinate(&[0, 0, 5], 2, "x").unwrap(), vec![0, 5]);
        assert_eq!(pad_coordinate(&[5], 3, "x").unwrap(), vec![0, 0, 5]);
        assert!(pad_coordinate(&[1, 2, 3], 2, "x").is_err());
    }
}
