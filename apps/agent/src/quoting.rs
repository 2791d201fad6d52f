//! Producing quotes (PROTOCOL.md §4.3–4.6): PCR 16 is reset and extended with
//! H_bank(NK public PEM) before every quote, PCR 16 is always selected, one bank (the
//! agent's `tpm_hash_alg`) is quoted, and the PCR values travel in the tpm2-tools blob.
//! Also reads the IMA list and the UEFI event log that an integrity quote carries.
//!
//! Everything here runs on a blocking thread with the TPM held (see `shared_tpm`).

use std::io::{BufRead as _, Read as _};
use std::path::Path;

use keylime_tpm::{
    Attest, AttestBody, ClockInfo, HashAlg, KeyHandle, PcrSelection, SignAlg, Tpm, TpmError,
};
use keylime_tpm::{pcr_blob, pcr_digest, quote::encode_quote_string};

/// The debug PCR that carries the payload-key binding.
pub const PCR_PAYLOAD_KEY: u8 = 16;
/// How often a quote is retried when a PCR changed between Quote and PCR_Read.
const QUOTE_ATTEMPTS: usize = 3;
/// Largest IMA list / event log read into a response.
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// What a quote needs from the agent's TPM identity.
pub struct QuoteRequest<'a> {
    pub ak: &'a KeyHandle,
    pub hash: HashAlg,
    pub sign: SignAlg,
    /// The qualifying data (nonce bytes).
    pub nonce: &'a [u8],
    /// Requested PCRs (bit n = PCR n); PCR 16 is added.
    pub mask: u32,
    /// The NK public PEM, bound into PCR 16.
    pub pubkey_pem: &'a str,
}

/// A quote as served, and the TPM clock it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The Keylime quote string.
    pub text: String,
    pub clock: ClockInfo,
}

/// Binds PCR 16 to the payload key and quotes.
pub fn bind_and_quote(tpm: &mut Tpm, req: &QuoteRequest<'_>) -> Result<Quote, TpmError> {
    tpm.pcr_reset(PCR_PAYLOAD_KEY)?;
    let binding = req.hash.digest(req.pubkey_pem.as_bytes());
    tpm.pcr_extend(PCR_PAYLOAD_KEY, req.hash, &binding)?;
    let selection = PcrSelection::from_mask(req.hash, req.mask | (1 << PCR_PAYLOAD_KEY));
    for _ in 0..QUOTE_ATTEMPTS {
        let out = tpm.quote(req.ak, req.nonce, &selection, req.sign)?;
        let values = tpm.pcr_read(&selection)?;
        // A PCR extended between Quote and PCR_Read would make the blob disagree with the
        // signed digest: check and retry rather than send a quote that cannot verify.
        let attest = Attest::parse(&out.attest)?;
        let signed = match &attest.body {
            AttestBody::Quote { pcr_digest, .. } => pcr_digest.clone(),
            _ => {
                return Err(TpmError::BadResponse {
                    command: "Quote",
                    reason: "response is not a quote attestation".into(),
                });
            }
        };
        if pcr_digest(req.hash, &values) == signed {
            let blob = pcr_blob::encode(&selection, &values)?;
            return Ok(Quote {
                text: encode_quote_string(&out.attest, &out.signature, &blob),
                clock: attest.clock_info,
            });
        }
        tracing::debug!("PCRs changed during the quote; quoting again");
    }
    Err(TpmError::BadResponse {
        command: "Quote",
        reason: format!("PCR values kept changing across {QUOTE_ATTEMPTS} quote attempts"),
    })
}

/// `enc_alg` / `tpm_enc_alg` of the EK: `rsa2048`, `ecc256`… from API 2.5 on, `rsa` /
/// `ecc` before (PROTOCOL.md §4.3).
pub fn enc_alg_name(ek: &KeyHandle, with_bits: bool) -> String {
    match &ek.public.key {
        keylime_tpm::PublicKey::Rsa { bits, .. } if with_bits => format!("rsa{bits}"),
        keylime_tpm::PublicKey::Rsa { .. } => "rsa".into(),
        keylime_tpm::PublicKey::Ecc { curve, .. } if with_bits => match curve.bits() {
            Some(bits) => format!("ecc{bits}"),
            None => "ecc".into(),
        },
        keylime_tpm::PublicKey::Ecc { .. } => "ecc".into(),
    }
}

/// The IMA ASCII list from entry `from` on, and the index of the first entry returned.
/// A `from` past the end returns the whole list from 0 (as upstream). `None` when the
/// file does not exist or cannot be read.
pub fn read_ima_list(path: &Path, from: u64) -> Option<(String, u64)> {
    match collect_ima_entries(path, from)? {
        (chunk, count) if from <= count => Some((chunk, from)),
        // Asked past the end (a new boot's shorter list): the whole list, from entry 0.
        _ => collect_ima_entries(path, 0).map(|(all, _)| (all, 0)),
    }
}

/// The entries from index `from` on (blank lines are not entries, as the verifier counts),
/// read line by line so only the returned chunk is held; also the total entry count.
fn collect_ima_entries(path: &Path, from: u64) -> Option<(String, u64)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the IMA measurement list");
            }
            return None;
        }
    };
    let mut reader = std::io::BufReader::new(file.take(MAX_LOG_BYTES));
    let mut chunk = String::new();
    let mut line = String::new();
    let mut count = 0u64;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if line.trim().is_empty() => {}
            Ok(_) => {
                if count >= from {
                    chunk.push_str(&line);
                }
                count += 1;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the IMA measurement list");
                return None;
            }
        }
    }
    Some((chunk, count))
}

/// The raw UEFI event log, or `None` when absent/unreadable.
pub fn read_boot_log(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut data = Vec::new();
    match file.take(MAX_LOG_BYTES).read_to_end(&mut data) {
        Ok(_) => Some(data),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the measured-boot log");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ima_list_from_offset_and_past_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ima");
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(read_ima_list(&path, 0), Some(("a\nb\nc\n".into(), 0)));
        assert_eq!(read_ima_list(&path, 2), Some(("c\n".into(), 2)));
        assert_eq!(read_ima_list(&path, 3), Some((String::new(), 3)));
        assert_eq!(read_ima_list(&path, 9), Some(("a\nb\nc\n".into(), 0)));
        assert_eq!(read_ima_list(&dir.path().join("none"), 0), None);
        // Blank lines are not entries (the verifier skips them too).
        std::fs::write(&path, "\na\n\nb\nc\n").unwrap();
        assert_eq!(read_ima_list(&path, 2), Some(("c\n".into(), 2)));
        assert_eq!(read_ima_list(&path, 3), Some((String::new(), 3)));
    }
}
