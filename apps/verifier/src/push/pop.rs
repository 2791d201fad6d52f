//! The TPM proof of possession (PROTOCOL.md §6.1): a TPM2_Certify of the agent's AK by
//! itself, with the session's challenge as qualifying data. Checked as upstream checks it:
//! TPM-generated, certify type, `extraData` = challenge, certified name = the enrolled
//! AK's name, and a valid RSASSA/SHA-256 signature by that AK.

use keylime_tpm::attest::{ST_ATTEST_CERTIFY, TPM_GENERATED_VALUE};
use keylime_tpm::{Attest, AttestBody, HashAlg, Public, SignAlg, Signature, verify_signature};

/// Why a proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PopError {
    #[error("the enrolled ak_tpm is not usable: {0}")]
    Ak(String),
    #[error("message is not a TPMS_ATTEST: {0}")]
    Message(String),
    #[error("message is not a TPM2_Certify attestation (type {0:#06x})")]
    NotCertify(u16),
    #[error("message does not carry this session's challenge")]
    WrongChallenge,
    #[error("the certified object is not the agent's AK")]
    WrongObject,
    #[error("signature is not a TPMT_SIGNATURE: {0}")]
    SignatureFormat(String),
    #[error("signature must be RSASSA with SHA-256, found {scheme} with {hash}")]
    SignatureScheme {
        scheme: &'static str,
        hash: &'static str,
    },
    #[error("signature does not verify with the agent's AK")]
    BadSignature,
}

/// Check `message` (TPMS_ATTEST) and `signature` (TPMT_SIGNATURE) against the AK
/// (`ak_tpm`, a TPM2B_PUBLIC) and the session's `challenge`.
pub fn verify_certify(
    ak_tpm: &[u8],
    challenge: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), PopError> {
    let ak = Public::from_tpm2b(ak_tpm).map_err(|e| PopError::Ak(e.to_string()))?;
    let attest = Attest::parse(message).map_err(|e| PopError::Message(e.to_string()))?;
    if attest.magic != TPM_GENERATED_VALUE || attest.attest_type != ST_ATTEST_CERTIFY {
        return Err(PopError::NotCertify(attest.attest_type));
    }
    if attest.extra_data != challenge {
        return Err(PopError::WrongChallenge);
    }
    match &attest.body {
        AttestBody::Certify { name, .. } if *name == ak.name() => {}
        _ => return Err(PopError::WrongObject),
    }
    let sig = Signature::parse(signature).map_err(|e| PopError::SignatureFormat(e.to_string()))?;
    if sig.sign_alg() != SignAlg::RsaSsa || sig.hash() != HashAlg::Sha256 {
        return Err(PopError::SignatureScheme {
            scheme: sig.sign_alg().name(),
            hash: sig.hash().name(),
        });
    }
    verify_signature(&ak, message, &sig).map_err(|_| PopError::BadSignature)
}
