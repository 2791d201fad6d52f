//! The IMA signature as the `sig` field carries it (`struct signature_v2_hdr`, big-endian):
//! `type u8` (3 = `EVM_IMA_XATTR_DIGSIG`, 5 = portable), `version u8` (2), `hash_algo u8`
//! (kernel `hash_info` id), `keyid u32` (last 4 bytes of the key's identifier),
//! `sig_size u16`, then `sig_size` signature bytes.

/// Size of the fixed header before the signature bytes.
pub const SIGNATURE_HEADER_LEN: usize = 9;

/// `EVM_IMA_XATTR_DIGSIG`.
pub const XATTR_DIGSIG: u8 = 3;
/// `EVM_XATTR_PORTABLE_DIGSIG`.
pub const XATTR_PORTABLE_DIGSIG: u8 = 5;

/// A signature field whose header is self-consistent (9 bytes, then exactly `sig_size`
/// bytes). Type and version are *not* checked here: a well-formed field of another type
/// simply does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaSignature<'a> {
    pub sig_type: u8,
    pub version: u8,
    /// Kernel `hash_info` id of the signed digest.
    pub hash_algo: u8,
    pub keyid: u32,
    /// The raw signature (PKCS#1 v1.5 for RSA, DER `ECDSA-Sig-Value` for EC keys).
    pub signature: &'a [u8],
}

/// Why a `sig` field is not a signature header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureHeaderError {
    #[error("signature field is {len} bytes, shorter than the 9-byte header")]
    TooShort { len: usize },
    #[error("signature header announces {announced} signature bytes but {present} follow")]
    SizeMismatch { announced: usize, present: usize },
}

impl<'a> ImaSignature<'a> {
    /// Splits `field` into header and signature; the size must match exactly (as upstream's
    /// parser requires).
    pub fn parse(field: &'a [u8]) -> Result<Self, SignatureHeaderError> {
        let Some((head, signature)) = field.split_first_chunk::<SIGNATURE_HEADER_LEN>() else {
            return Err(SignatureHeaderError::TooShort { len: field.len() });
        };
        let announced = usize::from(u16::from_be_bytes([head[7], head[8]]));
        if announced != signature.len() {
            return Err(SignatureHeaderError::SizeMismatch {
                announced,
                present: signature.len(),
            });
        }
        Ok(ImaSignature {
            sig_type: head[0],
            version: head[1],
            hash_algo: head[2],
            keyid: u32::from_be_bytes([head[3], head[4], head[5], head[6]]),
            signature,
        })
    }

    /// True for a v2 digital signature (type 3 or 5, version 2), the only kind verified.
    pub fn is_v2_digsig(&self) -> bool {
        matches!(self.sig_type, XATTR_DIGSIG | XATTR_PORTABLE_DIGSIG) && self.version == 2
    }

    /// The name of the signed digest's algorithm as IMA log prefixes write it, for the
    /// kernel `hash_info` ids this crate knows.
    pub fn hash_name(&self) -> Option<&'static str> {
        kernel_hash_name(self.hash_algo)
    }
}

/// Kernel `hash_info` id → algorithm name (`include/uapi/linux/hash_info.h`).
pub fn kernel_hash_name(id: u8) -> Option<&'static str> {
    Some(match id {
        1 => "md5",
        2 => "sha1",
        4 => "sha256",
        5 => "sha384",
        6 => "sha512",
        7 => "sha224",
        18 => "streebog256",
        19 => "streebog512",
        _ => return None,
    })
}

/// Algorithm name → kernel `hash_info` id (the inverse of [`kernel_hash_name`]).
pub fn kernel_hash_id(name: &str) -> Option<u8> {
    Some(match name {
        "md5" => 1,
        "sha1" => 2,
        "sha256" => 4,
        "sha384" => 5,
        "sha512" => 6,
        "sha224" => 7,
        "streebog256" => 18,
        "streebog512" => 19,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_size_check() {
        let mut f = vec![3, 2, 4, 0xf3, 0x45, 0x2d, 0x23, 0, 2, 0xaa, 0xbb];
        let s = ImaSignature::parse(&f).unwrap();
        assert_eq!(s.keyid, 0xf3452d23);
        assert_eq!(s.hash_name(), Some("sha256"));
        assert_eq!(s.signature, &[0xaa, 0xbb]);
        assert!(s.is_v2_digsig());
        f.push(0);
        assert_eq!(
            ImaSignature::parse(&f),
            Err(SignatureHeaderError::SizeMismatch {
                announced: 2,
                present: 3
            })
        );
        assert_eq!(
            ImaSignature::parse(&f[..8]),
            Err(SignatureHeaderError::TooShort { len: 8 })
        );
        for id in [1, 2, 4, 5, 6, 7, 18, 19] {
            assert_eq!(kernel_hash_id(kernel_hash_name(id).unwrap()), Some(id));
        }
        assert_eq!(kernel_hash_name(3), None);
    }
}
