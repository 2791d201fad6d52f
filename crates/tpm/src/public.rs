//! `TPMT_PUBLIC` / `TPM2B_PUBLIC`: parsing, marshalling and object names.
//!
//! A [`Public`] keeps the exact bytes it was parsed from: object names and MakeCredential
//! must hash the TPM's own encoding, never a re-marshalled copy.

use crate::alg::{EccCurve, HashAlg, id};
use crate::error::{Result, TpmError};
use crate::marshal::{Reader, Writer};

/// Largest `TPMT_PUBLIC` accepted (an RSA-8192 key with a SHA-512 policy fits easily).
pub const MAX_TPMT_PUBLIC: usize = 2048;
const MAX_DIGEST: usize = 64;
const MAX_RSA_MODULUS: usize = 1024;
const MAX_ECC_COORD: usize = 128;

/// `TPMA_OBJECT` bits.
pub mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const ST_CLEAR: u32 = 1 << 2;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
}

/// The public part of a TPM RSA or ECC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `exponent` is as stored by the TPM: 0 means the default 65537 (see
    /// [`PublicKey::rsa_exponent`]).
    Rsa {
        modulus: Vec<u8>,
        exponent: u32,
        bits: u16,
    },
    Ecc {
        curve: EccCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

impl PublicKey {
    /// The effective RSA public exponent (0 in the TPM encoding means 65537).
    pub fn rsa_exponent(exponent: u32) -> u32 {
        if exponent == 0 { 65537 } else { exponent }
    }
}

/// `TPMT_SYM_DEF_OBJECT` when not NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDef {
    pub alg: u16,
    pub key_bits: u16,
    pub mode: u16,
}

/// The key's scheme (`TPMT_RSA_SCHEME` / `TPMT_ECC_SCHEME`) when not NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigScheme {
    /// `TPM_ALG_ID` of the scheme (RSASSA, RSAPSS, OAEP, RSAES, ECDSA, ECDH, ...).
    pub alg: u16,
    /// The scheme's hash, absent for schemes without one (RSAES).
    pub hash: Option<HashAlg>,
}

impl SigScheme {
    /// The signing algorithm, if this is a signing scheme this crate supports.
    pub fn sign_alg(&self) -> Option<crate::alg::SignAlg> {
        crate::alg::SignAlg::from_tpm_id(self.alg)
    }
}

/// A parsed `TPMT_PUBLIC` for an RSA or ECC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub name_alg: HashAlg,
    pub object_attributes: u32,
    pub auth_policy: Vec<u8>,
    pub key: PublicKey,
    pub symmetric: Option<SymDef>,
    pub scheme: Option<SigScheme>,
    tpmt: Vec<u8>,
}

impl Public {
    /// Parse a `TPM2B_PUBLIC` (u16 size prefix); the whole input must be consumed.
    pub fn from_tpm2b(bytes: &[u8]) -> Result<Public> {
        let mut r = Reader::new(bytes, "TPM2B_PUBLIC");
        let inner = r.tpm2b_reader(MAX_TPMT_PUBLIC, "TPMT_PUBLIC")?;
        r.finish()?;
        Public::parse(inner)
    }

    /// Parse a bare `TPMT_PUBLIC`; the whole input must be consumed.
    pub fn from_tpmt(bytes: &[u8]) -> Result<Public> {
        if bytes.len() > MAX_TPMT_PUBLIC {
            return Err(TpmError::SizeTooLarge {
                structure: "TPMT_PUBLIC",
                offset: 0,
                size: bytes.len(),
                max: MAX_TPMT_PUBLIC,
            });
        }
        Public::parse(Reader::new(bytes, "TPMT_PUBLIC"))
    }

    /// Read a `TPM2B_PUBLIC` from inside a larger structure (e.g. a TPM response).
    pub(crate) fn read_tpm2b(r: &mut Reader<'_>) -> Result<Public> {
        let inner = r.tpm2b_reader(MAX_TPMT_PUBLIC, "TPMT_PUBLIC")?;
        Public::parse(inner)
    }

    fn parse(mut r: Reader<'_>) -> Result<Public> {
        let tpmt = r.rest().to_vec();
        let at = r.offset();
        let obj_type = r.u16()?;
        let name_at = r.offset();
        let name_alg_id = r.u16()?;
        let name_alg = HashAlg::from_tpm_id(name_alg_id)
            .ok_or_else(|| r.bad_value("nameAlg", name_at, name_alg_id.into()))?;
        let object_attributes = r.u32()?;
        let auth_policy = r.tpm2b(MAX_DIGEST)?.to_vec();
        let (key, symmetric, scheme) = match obj_type {
            id::RSA => {
                let symmetric = read_sym_def_object(&mut r)?;
                let scheme = read_scheme(&mut r, true)?;
                let bits = r.u16()?;
                let exponent = r.u32()?;
                let modulus = r.tpm2b(MAX_RSA_MODULUS)?.to_vec();
                (
                    PublicKey::Rsa {
                        modulus,
                        exponent,
                        bits,
                    },
                    symmetric,
                    scheme,
                )
            }
            id::ECC => {
                let symmetric = read_sym_def_object(&mut r)?;
                let scheme = read_scheme(&mut r, false)?;
                let curve = EccCurve::from_tpm_id(r.u16()?);
                let kdf_at = r.offset();
                let kdf = r.u16()?;
                match kdf {
                    id::NULL => {}
                    id::KDF1_SP800_56A | id::KDF2 | id::KDF1_SP800_108 => {
                        r.u16()?;
                    }
                    other => return Err(r.bad_value("kdf scheme", kdf_at, other.into())),
                }
                let x = r.tpm2b(MAX_ECC_COORD)?.to_vec();
                let y = r.tpm2b(MAX_ECC_COORD)?.to_vec();
                (PublicKey::Ecc { curve, x, y }, symmetric, scheme)
            }
            other => return Err(r.bad_value("object type", at, other.into())),
        };
        r.finish()?;
        Ok(Public {
            name_alg,
            object_attributes,
            auth_policy,
            key,
            symmetric,
            scheme,
            tpmt,
        })
    }

    /// The exact `TPMT_PUBLIC` bytes this was parsed from.
    pub fn tpmt_bytes(&self) -> &[u8] {
        &self.tpmt
    }

    /// `TPM2B_PUBLIC`: the `TPMT_PUBLIC` bytes with their u16 size prefix.
    pub fn to_tpm2b(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.tpm2b(&self.tpmt);
        w.into_vec()
    }

    /// The object's name: `nameAlg` (u16 big-endian) followed by `H_nameAlg(TPMT_PUBLIC)`.
    pub fn name(&self) -> Vec<u8> {
        let mut name = self.name_alg.tpm_id().to_be_bytes().to_vec();
        name.extend(self.name_alg.digest(&self.tpmt));
        name
    }

    /// Whether every bit of `bits` (see [`attr`]) is set.
    pub fn has_attributes(&self, bits: u32) -> bool {
        self.object_attributes & bits == bits
    }
}

fn read_sym_def_object(r: &mut Reader<'_>) -> Result<Option<SymDef>> {
    let at = r.offset();
    let alg = r.u16()?;
    match alg {
        id::NULL => Ok(None),
        id::AES | id::SM4 | id::CAMELLIA => {
            let key_bits = r.u16()?;
            let mode = r.u16()?;
            Ok(Some(SymDef {
                alg,
                key_bits,
                mode,
            }))
        }
        other => Err(r.bad_value("symmetric algorithm", at, other.into())),
    }
}

fn read_scheme(r: &mut Reader<'_>, rsa: bool) -> Result<Option<SigScheme>> {
    let at = r.offset();
    let alg = r.u16()?;
    let has_hash = match (rsa, alg) {
        (_, id::NULL) => return Ok(None),
        (true, id::RSASSA | id::RSAPSS | id::OAEP) => true,
        (true, id::RSAES) => false,
        (false, id::ECDSA | id::ECDH | id::ECSCHNORR | id::SM2 | id::ECMQV | id::ECDAA) => true,
        (_, other) => return Err(r.bad_value("scheme", at, other.into())),
    };
    let hash = if has_hash {
        let hat = r.offset();
        let h = r.u16()?;
        Some(HashAlg::from_tpm_id(h).ok_or_else(|| r.bad_value("scheme hash", hat, h.into()))?)
    } else {
        None
    };
    if alg == id::ECDAA {
        r.u16()?; // count
    }
    Ok(Some(SigScheme { alg, hash }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `TPM2B_PUBLIC` of an RSA AK as written by `tpm2_createak -G rsa -g sha256 -s rsassa`
    /// (restricted signing, RSASSA-SHA256), with a synthetic modulus.
    pub(crate) fn sample_rsa_ak() -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(id::RSA).u16(id::SHA256).u32(0x0005_0072).tpm2b(&[]);
        w.u16(id::NULL)
            .u16(id::RSASSA)
            .u16(id::SHA256)
            .u16(2048)
            .u32(0);
        w.tpm2b(&[0xC5; 256]);
        let mut out = Writer::new();
        out.tpm2b(&w.buf);
        out.into_vec()
    }

    #[test]
    fn parses_rsa_ak_and_round_trips() {
        let b = sample_rsa_ak();
        let p = Public::from_tpm2b(&b).unwrap();
        assert_eq!(p.name_alg, HashAlg::Sha256);
        assert!(p.has_attributes(attr::RESTRICTED | attr::SIGN_ENCRYPT));
        assert_eq!(
            p.scheme,
            Some(SigScheme {
                alg: id::RSASSA,
                hash: Some(HashAlg::Sha256)
            })
        );
        assert!(
            matches!(p.key, PublicKey::Rsa { bits: 2048, exponent: 0, ref modulus } if modulus.len() == 256)
        );
        assert_eq!(p.to_tpm2b(), b);
        assert_eq!(Public::from_tpmt(p.tpmt_bytes()).unwrap(), p);
        let name = p.name();
        assert_eq!(&name[..2], &[0x00, 0x0B]);
        assert_eq!(name[2..], HashAlg::Sha256.digest(&b[2..])[..]);
    }

    #[test]
    fn rejects_truncation_at_every_length() {
        let b = sample_rsa_ak();
        for len in 0..b.len() {
            assert!(
                Public::from_tpm2b(&b[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes_and_size_mismatch() {
        let mut b = sample_rsa_ak();
        b.push(0);
        assert!(matches!(
            Public::from_tpm2b(&b),
            Err(TpmError::TrailingBytes { offset, .. }) if offset == b.len() - 1
        ));
        // Size prefix claims more than is there.
        let mut b = sample_rsa_ak();
        b[1] = b[1].wrapping_add(1);
        assert!(matches!(
            Public::from_tpm2b(&b),
            Err(TpmError::Truncated { .. })
        ));
        // Size prefix claims less: the TPMT is cut short inside the modulus.
        let mut b = sample_rsa_ak();
        b[1] = b[1].wrapping_sub(1);
        assert!(Public::from_tpm2b(&b).is_err());
    }

    #[test]
    fn rejects_unknown_type_and_oversize() {
        let mut b = sample_rsa_ak();
        b[2] = 0x77;
        assert!(matches!(
            Public::from_tpm2b(&b),
            Err(TpmError::BadValue {
                field: "object type",
                offset: 2,
                ..
            })
        ));
        let big = vec![0u8; MAX_TPMT_PUBLIC + 1];
        assert!(matches!(
            Public::from_tpmt(&big),
            Err(TpmError::SizeTooLarge { .. })
        ));
        let mut huge = vec![0xFF, 0xFF];
        huge.extend(vec![0u8; 0xFFFF]);
        assert!(matches!(
            Public::from_tpm2b(&huge),
            Err(TpmError::SizeTooLarge { offset: 0, .. })
        ));
    }
}
