//! Quote verification (PROTOCOL.md §4.4–4.5): everything that proves a quote string came
//! from the agent's AK, for this nonce, over these PCR values — and nothing about whether
//! those values are *good* (that is policy, see `tpm_policy` and `pcr_checks`).
//!
//! Steps, each a [`QuoteError`] variant on failure:
//! 1. split and base64-decode `r<attest>:<sig>:<pcrblob>` (size-limited);
//! 2. parse `TPMS_ATTEST` (magic `TPM_GENERATED_VALUE`) and require `TPM_ST_ATTEST_QUOTE`;
//! 3. parse `TPMT_SIGNATURE`; RSA AKs must sign RSASSA (RSAPSS is refused as upstream
//!    does, §11 Q27), ECC AKs ECDSA; the signature's hash must be the reported `hash_alg`
//!    and its scheme the reported `sign_alg` (the latter is stricter than upstream: a lie
//!    would bypass `accept_tpm_signing_algs`);
//! 4. verify the signature over the exact attest bytes;
//! 5. `extraData` must equal the nonce (see [`Nonce`]);
//! 6. decode the PCR blob: one selection, in the signature's bank, selecting exactly the
//!    PCRs the TPM quoted (stricter than upstream, which relies on the digest alone and so
//!    lets a blob relabel PCR indexes), and `pcrDigest` = H(values in ascending order).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keylime_tpm::attest::ST_ATTEST_QUOTE;
use keylime_tpm::{
    Attest, AttestBody, ClockInfo, HashAlg, PcrSelection, SignAlg, Signature, TpmError, pcr_blob,
    pcr_digest, quote,
};
use serde::{Deserialize, Serialize};

use crate::ak::{AkKind, PreparedAk};

/// The nonce a quote must carry in `extraData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Nonce {
    /// Pull mode: the nonce text sent as `?nonce=`; the TPM gets its ASCII bytes. As
    /// upstream does, the bytes it base64-decodes to are accepted too.
    Text(String),
    /// Push mode: the raw challenge bytes; the quote may carry them or their base64 text.
    Bytes(Vec<u8>),
}

impl Nonce {
    /// Whether `extra_data` carries this nonce.
    pub fn matches(&self, extra_data: &[u8]) -> bool {
        match self {
            Nonce::Text(t) => {
                extra_data == t.as_bytes()
                    || STANDARD
                        .decode(t)
                        .is_ok_and(|d| !d.is_empty() && d == extra_data)
            }
            Nonce::Bytes(b) => {
                extra_data == b.as_slice() || extra_data == STANDARD.encode(b).as_bytes()
            }
        }
    }
}

/// Why a quote is not a valid quote of the AK over the nonce. The message becomes the
/// `error` of the `qoute_validation.quote_validation` event.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("quote string is malformed: {0}")]
    Malformed(#[source] TpmError),
    #[error("quote TPMS_ATTEST is malformed: {0}")]
    Attest(#[source] TpmError),
    #[error("quote TPMS_ATTEST has type 0x{0:04x}, expected TPM_ST_ATTEST_QUOTE (0x8018)")]
    NotAQuote(u16),
    #[error("quote TPMT_SIGNATURE is malformed: {0}")]
    SignatureFormat(#[source] TpmError),
    #[error("unsupported quote signature algorithm '{scheme}' for {key} keys")]
    SchemeNotAllowed { scheme: SignAlg, key: &'static str },
    #[error("quote was expected to use {expected} but used {used} instead")]
    HashMismatch { expected: HashAlg, used: HashAlg },
    #[error("agent reported sign_alg {reported:?} but the quote is signed with {used}")]
    SignAlgMismatch { reported: String, used: SignAlg },
    #[error("quote signature does not verify with the agent's AK: {0}")]
    BadSignature(#[source] TpmError),
    #[error("the nonce from the attestation differs from the expected nonce")]
    NonceMismatch,
    #[error("quote PCR blob is malformed: {0}")]
    PcrBlob(#[source] TpmError),
    #[error("quote PCR blob must hold exactly one selection in the {bank} bank, found {found}")]
    PcrBank { bank: HashAlg, found: String },
    #[error("quote PCR blob selects PCRs {blob:?} but the TPM quoted {quoted:?}")]
    PcrSelectionMismatch { blob: Vec<u8>, quoted: Vec<u8> },
    #[error("the digest used for quoting is different than the one that was calculated")]
    PcrDigestMismatch,
}

/// The PCR values a verified quote vouches for: one bank, PCR index → value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotedPcrs {
    pub bank: HashAlg,
    /// Lowercase hex values (upstream's `pcrs_dict`), keyed by PCR index.
    pub values: BTreeMap<u8, String>,
}

impl QuotedPcrs {
    pub fn contains(&self, pcr: u8) -> bool {
        self.values.contains_key(&pcr)
    }

    /// The value of `pcr` as hex, if quoted.
    pub fn hex(&self, pcr: u8) -> Option<&str> {
        self.values.get(&pcr).map(String::as_str)
    }
}

/// A quote that passed [`verify_quote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    pub clock: ClockInfo,
    pub firmware_version: u64,
    pub pcrs: QuotedPcrs,
    pub sign_alg: SignAlg,
}

/// Verify a Keylime quote string against the AK and nonce (steps in the module docs).
///
/// `hash_alg` is the agent's reported `hash_alg`; `sign_alg` its reported `sign_alg` if it
/// sent one (checked against the signature when given).
pub fn verify_quote(
    quote_str: &str,
    ak: &PreparedAk,
    nonce: &Nonce,
    hash_alg: HashAlg,
    sign_alg: Option<&str>,
) -> Result<VerifiedQuote, QuoteError> {
    let parts = quote::decode_quote_string(quote_str).map_err(QuoteError::Malformed)?;
    let attest = Attest::parse(&parts.attest).map_err(QuoteError::Attest)?;
    let (quoted_sel, signed_digest) = match &attest.body {
        AttestBody::Quote {
            pcr_select,
            pcr_digest,
        } if attest.attest_type == ST_ATTEST_QUOTE => (pcr_select, pcr_digest),
        _ => return Err(QuoteError::NotAQuote(attest.attest_type)),
    };
    let sig = Signature::parse(&parts.signature).map_err(QuoteError::SignatureFormat)?;
    let allowed = match ak.kind() {
        AkKind::Rsa => (SignAlg::RsaSsa, "RSA"),
        AkKind::Ecc => (SignAlg::Ecdsa, "EC"),
    };
    if sig.sign_alg() != allowed.0 {
        return Err(QuoteError::SchemeNotAllowed {
            scheme: sig.sign_alg(),
            key: allowed.1,
        });
    }
    if sig.hash() != hash_alg {
        return Err(QuoteError::HashMismatch {
            expected: hash_alg,
            used: sig.hash(),
        });
    }
    if let Some(reported) = sign_alg
        && !reported.eq_ignore_ascii_case(sig.sign_alg().name())
    {
        return Err(QuoteError::SignAlgMismatch {
            reported: reported.to_string(),
            used: sig.sign_alg(),
        });
    }
    ak.verify(&parts.attest, &sig)
        .map_err(QuoteError::BadSignature)?;
    if !nonce.matches(&attest.extra_data) {
        return Err(QuoteError::NonceMismatch);
    }

    let (blob_sel, values) = pcr_blob::decode(&parts.pcr_blob).map_err(QuoteError::PcrBlob)?;
    let pcrs = single_bank(&blob_sel, hash_alg)?;
    let quoted = single_bank(quoted_sel, hash_alg)?;
    if pcrs != quoted {
        return Err(QuoteError::PcrSelectionMismatch {
            blob: pcrs.to_vec(),
            quoted: quoted.to_vec(),
        });
    }
    if pcr_digest(hash_alg, &values) != *signed_digest {
        return Err(QuoteError::PcrDigestMismatch);
    }
    Ok(VerifiedQuote {
        clock: attest.clock_info,
        firmware_version: attest.firmware_version,
        pcrs: QuotedPcrs {
            bank: hash_alg,
            values: pcrs
                .iter()
                .copied()
                .zip(values.iter().map(hex::encode))
                .collect(),
        },
        sign_alg: sig.sign_alg(),
    })
}

/// The PCR indexes of the one non-empty selection, which must be in `bank`. No selection
/// at all means no PCRs.
fn single_bank(sels: &[PcrSelection], bank: HashAlg) -> Result<&[u8], QuoteError> {
    let non_empty: Vec<&PcrSelection> = sels.iter().filter(|s| !s.pcrs.is_empty()).collect();
    match non_empty.as_slice() {
        [] => Ok(&[]),
        [s] if s.hash == bank => Ok(&s.pcrs),
        other => Err(QuoteError::PcrBank {
            bank,
            found: other
                .iter()
                .map(|s| format!("{}:{:?}", s.hash, s.pcrs))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_forms() {
        let pull = Nonce::Text("abcdefghij0123456789".into());
        assert!(pull.matches(b"abcdefghij0123456789"));
        assert!(pull.matches(&STANDARD.decode("abcdefghij0123456789").unwrap()));
        assert!(!pull.matches(b"abcdefghij012345678"));
        assert!(!pull.matches(b""));
        let push = Nonce::Bytes(vec![0xde, 0xad, 0xbe, 0xef]);
        assert!(push.matches(&[0xde, 0xad, 0xbe, 0xef]));
        assert!(push.matches(b"3q2+7w=="));
        assert!(!push.matches(&[0xde, 0xad, 0xbe]));
        // An empty text nonce never matches a non-empty extraData.
        assert!(!Nonce::Text(String::new()).matches(b"x"));
    }
}
