//! Fixed-size digest values and the per-bank hasher: no heap allocation per digest.

use keylime_tpm::HashAlg;
use sha1::Digest as _;

/// Largest digest handled (sha512).
pub const MAX_DIGEST_LEN: usize = 64;

/// A digest of up to [`MAX_DIGEST_LEN`] bytes held inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigestBuf {
    len: u8,
    bytes: [u8; MAX_DIGEST_LEN],
}

impl DigestBuf {
    /// `len` zero bytes (a PCR's reset value); `len` is clamped to [`MAX_DIGEST_LEN`].
    pub fn zeros(len: usize) -> Self {
        Self::filled(0, len)
    }

    /// `len` bytes of `byte` (`0xFF` is the violation value).
    pub fn filled(byte: u8, len: usize) -> Self {
        let len = len.min(MAX_DIGEST_LEN);
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        bytes[..len].fill(byte);
        DigestBuf {
            len: len as u8,
            bytes,
        }
    }

    /// Copies `data`; `None` if it is empty or longer than [`MAX_DIGEST_LEN`].
    pub fn from_slice(data: &[u8]) -> Option<Self> {
        if data.is_empty() || data.len() > MAX_DIGEST_LEN {
            return None;
        }
        let mut d = Self::zeros(data.len());
        d.bytes[..data.len()].copy_from_slice(data);
        Some(d)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when every byte is zero (an IMA violation's template hash).
    pub fn is_all_zero(&self) -> bool {
        self.as_slice().iter().all(|&b| b == 0)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(self.len() * 2);
        for b in self.as_slice() {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        &mut self.bytes[..len]
    }
}

impl std::fmt::Debug for DigestBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestBuf({})", self.to_hex())
    }
}

impl AsRef<[u8]> for DigestBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// One running hash of a supported bank algorithm.
#[derive(Clone)]
pub(crate) enum BankHasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl BankHasher {
    /// `None` for algorithms this crate does not replay (sm3_256).
    pub(crate) fn new(alg: HashAlg) -> Option<Self> {
        Some(match alg {
            HashAlg::Sha1 => BankHasher::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => BankHasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => BankHasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => BankHasher::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            BankHasher::Sha1(h) => h.update(data),
            BankHasher::Sha256(h) => h.update(data),
            BankHasher::Sha384(h) => h.update(data),
            BankHasher::Sha512(h) => h.update(data),
        }
    }

    /// Writes the digest and resets the hasher for the next use.
    #[inline]
    pub(crate) fn finalize_reset(&mut self) -> DigestBuf {
        fn out(bytes: &[u8]) -> DigestBuf {
            DigestBuf::from_slice(bytes).unwrap_or(DigestBuf::zeros(0))
        }
        match self {
            BankHasher::Sha1(h) => out(&h.finalize_reset()),
            BankHasher::Sha256(h) => out(&h.finalize_reset()),
            BankHasher::Sha384(h) => out(&h.finalize_reset()),
            BankHasher::Sha512(h) => out(&h.finalize_reset()),
        }
    }
}
