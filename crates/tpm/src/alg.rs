//! TPM algorithm identifiers and the algorithm enums used across the crate (hash, curve,
//! signing scheme, EK kind), with their upstream Keylime string names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Result, TpmError};

/// `TPM_ALG_*` identifiers used by this crate (TPM 2.0 Part 2, table 9).
pub mod id {
    pub const RSA: u16 = 0x0001;
    pub const SHA1: u16 = 0x0004;
    pub const HMAC: u16 = 0x0005;
    pub const AES: u16 = 0x0006;
    pub const KEYEDHASH: u16 = 0x0008;
    pub const XOR: u16 = 0x000A;
    pub const SHA256: u16 = 0x000B;
    pub const SHA384: u16 = 0x000C;
    pub const SHA512: u16 = 0x000D;
    pub const NULL: u16 = 0x0010;
    pub const SM3_256: u16 = 0x0012;
    pub const SM4: u16 = 0x0013;
    pub const RSASSA: u16 = 0x0014;
    pub const RSAES: u16 = 0x0015;
    pub const RSAPSS: u16 = 0x0016;
    pub const OAEP: u16 = 0x0017;
    pub const ECDSA: u16 = 0x0018;
    pub const ECDH: u16 = 0x0019;
    pub const ECDAA: u16 = 0x001A;
    pub const SM2: u16 = 0x001B;
    pub const ECSCHNORR: u16 = 0x001C;
    pub const ECMQV: u16 = 0x001D;
    pub const KDF1_SP800_56A: u16 = 0x0020;
    pub const KDF2: u16 = 0x0021;
    pub const KDF1_SP800_108: u16 = 0x0022;
    pub const ECC: u16 = 0x0023;
    pub const SYMCIPHER: u16 = 0x0025;
    pub const CAMELLIA: u16 = 0x0026;
    pub const CTR: u16 = 0x0040;
    pub const OFB: u16 = 0x0041;
    pub const CBC: u16 = 0x0042;
    pub const CFB: u16 = 0x0043;
    pub const ECB: u16 = 0x0044;
}

/// A TPM hash algorithm (also a PCR bank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HashAlg {
    #[serde(rename = "sha1")]
    Sha1,
    #[serde(rename = "sha256")]
    Sha256,
    #[serde(rename = "sha384")]
    Sha384,
    #[serde(rename = "sha512")]
    Sha512,
    #[serde(rename = "sm3_256")]
    Sm3_256,
}

impl HashAlg {
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sm3_256,
    ];

    /// From a `TPM_ALG_ID`; `None` if it is not a supported hash.
    pub fn from_tpm_id(alg: u16) -> Option<HashAlg> {
        Some(match alg {
            id::SHA1 => HashAlg::Sha1,
            id::SHA256 => HashAlg::Sha256,
            id::SHA384 => HashAlg::Sha384,
            id::SHA512 => HashAlg::Sha512,
            id::SM3_256 => HashAlg::Sm3_256,
            _ => return None,
        })
    }

    /// Like [`HashAlg::from_tpm_id`] but an error naming what the id was for.
    pub fn try_from_tpm_id(alg: u16, what: &'static str) -> Result<HashAlg> {
        HashAlg::from_tpm_id(alg).ok_or(TpmError::UnsupportedAlgorithm { what, alg })
    }

    pub fn tpm_id(self) -> u16 {
        match self {
            HashAlg::Sha1 => id::SHA1,
            HashAlg::Sha256 => id::SHA256,
            HashAlg::Sha384 => id::SHA384,
            HashAlg::Sha512 => id::SHA512,
            HashAlg::Sm3_256 => id::SM3_256,
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 | HashAlg::Sm3_256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Upstream Keylime's name (`sha256`, `sm3_256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Sm3_256 => "sm3_256",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.digest_parts(&[data])
    }

    /// Digest of the concatenation of `parts`.
    pub fn digest_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts),
            HashAlg::Sm3_256 => run::<sm3::Sm3>(parts),
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = TpmError;
    fn from_str(s: &str) -> Result<Self> {
        HashAlg::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| TpmError::UnknownAlgorithmName {
                what: "hash",
                name: s.to_string(),
            })
    }
}

/// A TPM ECC curve (`TPM_ECC_CURVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EccCurve {
    NistP192,
    NistP224,
    NistP256,
    NistP384,
    NistP521,
    /// A curve this crate has no arithmetic for, kept by id.
    Other(u16),
}

impl EccCurve {
    pub fn from_tpm_id(curve: u16) -> EccCurve {
        match curve {
            1 => EccCurve::NistP192,
            2 => EccCurve::NistP224,
            3 => EccCurve::NistP256,
            4 => EccCurve::NistP384,
            5 => EccCurve::NistP521,
            other => EccCurve::Other(other),
        }
    }

    pub fn tpm_id(self) -> u16 {
        match self {
            EccCurve::NistP192 => 1,
            EccCurve::NistP224 => 2,
            EccCurve::NistP256 => 3,
            EccCurve::NistP384 => 4,
            EccCurve::NistP521 => 5,
            EccCurve::Other(id) => id,
        }
    }

    /// Coordinate size in bytes, when known.
    pub fn coordinate_len(self) -> Option<usize> {
        match self {
            EccCurve::NistP192 => Some(24),
            EccCurve::NistP224 => Some(28),
            EccCurve::NistP256 => Some(32),
            EccCurve::NistP384 => Some(48),
            EccCurve::NistP521 => Some(66),
            EccCurve::Other(_) => None,
        }
    }

    /// Key size in bits, when known.
    pub fn bits(self) -> Option<u16> {
        match self {
            EccCurve::NistP192 => Some(192),
            EccCurve::NistP224 => Some(224),
            EccCurve::NistP256 => Some(256),
            EccCurve::NistP384 => Some(384),
            EccCurve::NistP521 => Some(521),
            EccCurve::Other(_) => None,
        }
    }
}

/// A signing scheme for an AK and its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignAlg {
    #[serde(rename = "rsassa")]
    RsaSsa,
    #[serde(rename = "rsapss")]
    RsaPss,
    #[serde(rename = "ecdsa")]
    Ecdsa,
}

impl SignAlg {
    pub fn from_tpm_id(alg: u16) -> Option<SignAlg> {
        Some(match alg {
            id::RSASSA => SignAlg::RsaSsa,
            id::RSAPSS => SignAlg::RsaPss,
            id::ECDSA => SignAlg::Ecdsa,
            _ => return None,
        })
    }

    pub fn tpm_id(self) -> u16 {
        match self {
            SignAlg::RsaSsa => id::RSASSA,
            SignAlg::RsaPss => id::RSAPSS,
            SignAlg::Ecdsa => id::ECDSA,
        }
    }

    /// Whether this scheme needs an RSA key (otherwise ECC).
    pub fn is_rsa(self) -> bool {
        matches!(self, SignAlg::RsaSsa | SignAlg::RsaPss)
    }

    pub fn name(self) -> &'static str {
        match self {
            SignAlg::RsaSsa => "rsassa",
            SignAlg::RsaPss => "rsapss",
            SignAlg::Ecdsa => "ecdsa",
        }
    }
}

impl fmt::Display for SignAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignAlg {
    type Err = TpmError;
    fn from_str(s: &str) -> Result<Self> {
        [SignAlg::RsaSsa, SignAlg::RsaPss, SignAlg::Ecdsa]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| TpmError::UnknownAlgorithmName {
                what: "signing",
                name: s.to_string(),
            })
    }
}

/// The EK kinds this crate can create from the TCG default (low-range) templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EkAlg {
    /// Template L-1: RSA 2048, SHA-256, AES-128-CFB. EK certificate at NV 0x01c00002.
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// Template L-2: ECC NIST P-256, SHA-256, AES-128-CFB. EK certificate at NV 0x01c0000a.
    #[serde(rename = "ecc256")]
    EccP256,
}

impl EkAlg {
    /// Upstream Keylime's `enc_alg` name (API >= 2.5).
    pub fn name(self) -> &'static str {
        match self {
            EkAlg::Rsa2048 => "rsa2048",
            EkAlg::EccP256 => "ecc256",
        }
    }

    /// NV index of the EK certificate for this key kind.
    pub fn cert_nv_index(self) -> u32 {
        match self {
            EkAlg::Rsa2048 => 0x01C0_0002,
            EkAlg::EccP256 => 0x01C0_000A,
        }
    }
}

impl fmt::Display for EkAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EkAlg {
    type Err = TpmError;
    /// Accepts upstream's `enc_alg` names: `rsa`/`rsa2048`, `ecc`/`ecc256`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" | "rsa2048" => Ok(EkAlg::Rsa2048),
            "ecc" | "ecc256" => Ok(EkAlg::EccP256),
            _ => Err(TpmError::UnknownAlgorithmName {
                what: "encryption",
                name: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in HashAlg::ALL {
            assert_eq!(h.name().parse::<HashAlg>().unwrap(), h);
            assert_eq!(HashAlg::from_tpm_id(h.tpm_id()), Some(h));
            assert_eq!(h.digest(b"abc").len(), h.digest_len());
        }
        assert!("md5".parse::<HashAlg>().is_err());
        assert_eq!("ECDSA".parse::<SignAlg>().unwrap(), SignAlg::Ecdsa);
        assert_eq!("rsa".parse::<EkAlg>().unwrap(), EkAlg::Rsa2048);
        assert_eq!(
            serde_json::to_string(&HashAlg::Sm3_256).unwrap(),
            "\"sm3_256\""
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(HashAlg::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
