//! PCR commands (read, extend, reset) and the signed attestations Quote and Certify.

use std::collections::BTreeMap;

use super::{KeyHandle, QuoteOutput, Tpm, bad_response};
use crate::alg::{HashAlg, SignAlg};
use crate::command::{Auth, Command, cc};
use crate::error::{Result, TpmError};
use crate::marshal::{Reader, tpm2b_checked};
use crate::pcr::PcrSelection;
use crate::signature::Signature;

impl Tpm {
    /// `TPM2_Quote` over `selection` with `qualifying_data` (the nonce) as extraData. The
    /// scheme is `sign` with the AK's scheme hash (or its name hash if it has no scheme).
    pub fn quote(
        &mut self,
        ak: &KeyHandle,
        qualifying_data: &[u8],
        selection: &PcrSelection,
        sign: SignAlg,
    ) -> Result<QuoteOutput> {
        let key_scheme = ak.public.scheme;
        if let Some(s) = key_scheme
            && s.alg != sign.tpm_id()
        {
            return Err(TpmError::InvalidArgument(format!(
                "AK scheme 0x{:04x} does not match requested {sign}",
                s.alg
            )));
        }
        let hash = key_scheme
            .and_then(|s| s.hash)
            .unwrap_or(ak.public.name_alg);
        let data = tpm2b_checked("TPM2B_DATA", qualifying_data, 64)?;
        let mut c = Command::new("Quote", cc::QUOTE)
            .handle(ak.handle)
            .auth(Auth::Password(Vec::new()));
        c.params.bytes(&data).u16(sign.tpm_id()).u16(hash.tpm_id());
        PcrSelection::write_list(std::slice::from_ref(selection), &mut c.params);
        let resp = self.execute(c, 0)?;
        let mut r = Reader::new(&resp.params, "Quote response");
        let attest = r
            .tpm2b(2048)
            .map_err(|e| bad_response("Quote", e))?
            .to_vec();
        let signature = r.rest().to_vec();
        Signature::parse(&signature).map_err(|e| bad_response("Quote", e))?;
        Ok(QuoteOutput { attest, signature })
    }

    /// `TPM2_Certify`: `signer` signs an attestation that `object` is loaded in this TPM
    /// (`TPMS_CERTIFY_INFO` with the object's name). Both keys use empty passwords; `sign`
    /// must match the signer's scheme, as for [`Tpm::quote`].
    pub fn certify(
        &mut self,
        object: &KeyHandle,
        signer: &KeyHandle,
        qualifying_data: &[u8],
        sign: SignAlg,
    ) -> Result<QuoteOutput> {
        let hash = signing_hash(signer, sign)?;
        let data = tpm2b_checked("TPM2B_DATA", qualifying_data, 64)?;
        let mut c = Command::new("Certify", cc::CERTIFY)
            .handle(object.handle)
            .handle(signer.handle)
            .auth(Auth::Password(Vec::new()))
            .auth(Auth::Password(Vec::new()));
        c.params.bytes(&data).u16(sign.tpm_id()).u16(hash.tpm_id());
        let resp = self.execute(c, 0)?;
        split_attest_and_signature("Certify", &resp.params)
    }

    /// PCR values of `selection`, in its (ascending) order. Loops because a TPM returns at
    /// most 8 digests per PCR_Read.
    pub fn pcr_read(&mut self, selection: &PcrSelection) -> Result<Vec<Vec<u8>>> {
        let mut values: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let mut remaining = selection.clone();
        while !remaining.pcrs.is_empty() {
            let mut c = Command::new("PCR_Read", cc::PCR_READ);
            PcrSelection::write_list(std::slice::from_ref(&remaining), &mut c.params);
            let resp = self.execute(c, 0)?;
            let parse = || -> Result<(Vec<PcrSelection>, Vec<Vec<u8>>)> {
                let mut r = Reader::new(&resp.params, "PCR_Read response");
                r.u32()?; // pcrUpdateCounter
                let sels = PcrSelection::read_list(&mut r)?;
                let n = r.count(8)?;
                let digests = (0..n)
                    .map(|_| r.tpm2b(64).map(<[u8]>::to_vec))
                    .collect::<Result<_>>()?;
                Ok((sels, digests))
            };
            let (sels, digests) = parse().map_err(|e| bad_response("PCR_Read", e))?;
            let returned: Vec<u8> = sels
                .iter()
                .filter(|s| s.hash == selection.hash)
                .flat_map(|s| s.pcrs.iter().copied())
                .filter(|p| remaining.pcrs.contains(p))
                .collect();
            if returned.is_empty() || returned.len() != digests.len() {
                return Err(TpmError::BadResponse {
                    command: "PCR_Read",
                    reason: format!(
                        "PCRs {:?} of bank {} not returned ({} digests for {:?})",
                        remaining.pcrs,
                        selection.hash,
                        digests.len(),
                        returned
                    ),
                });
            }
            for (p, d) in returned.into_iter().zip(digests) {
                if d.len() != selection.hash.digest_len() {
                    return Err(TpmError::BadResponse {
                        command: "PCR_Read",
                        reason: format!(
                            "PCR {p} value of {} bytes in bank {}",
                            d.len(),
                            selection.hash
                        ),
                    });
                }
                values.insert(p, d);
            }
            remaining.pcrs.retain(|p| !values.contains_key(p));
        }
        Ok(selection
            .pcrs
            .iter()
            .filter_map(|p| values.remove(p))
            .collect())
    }

    /// `TPM2_PCR_Extend` of one bank of `pcr` with `digest` (must be the bank's size).
    pub fn pcr_extend(&mut self, pcr: u8, bank: HashAlg, digest: &[u8]) -> Result<()> {
        if digest.len() != bank.digest_len() {
            return Err(TpmError::InvalidArgument(format!(
                "{}-byte digest for the {bank} bank",
                digest.len()
            )));
        }
        let mut c = Command::new("PCR_Extend", cc::PCR_EXTEND)
            .handle(u32::from(pcr))
            .auth(Auth::Password(Vec::new()));
        c.params.u32(1).u16(bank.tpm_id()).bytes(digest);
        self.execute(c, 0).map(|_| ())
    }

    /// `TPM2_PCR_Reset` (allowed from locality 0 for PCR 16 and 23 on PC-client TPMs).
    pub fn pcr_reset(&mut self, pcr: u8) -> Result<()> {
        let c = Command::new("PCR_Reset", cc::PCR_RESET)
            .handle(u32::from(pcr))
            .auth(Auth::Password(Vec::new()));
        self.execute(c, 0).map(|_| ())
    }
}

/// The hash for signing with `key` under `sign`: the key's scheme hash, or its name hash if
/// the key has no scheme. A key whose scheme is not `sign` cannot sign with it.
fn signing_hash(key: &KeyHandle, sign: SignAlg) -> Result<HashAlg> {
    match key.public.scheme {
        Some(s) if s.alg != sign.tpm_id() => Err(TpmError::InvalidArgument(format!(
            "key scheme 0x{:04x} does not match requested {sign}",
            s.alg
        ))),
        scheme => Ok(scheme.and_then(|s| s.hash).unwrap_or(key.public.name_alg)),
    }
}

/// `TPM2B_ATTEST` then `TPMT_SIGNATURE`, as Quote and Certify return them.
fn split_attest_and_signature(command: &'static str, params: &[u8]) -> Result<QuoteOutput> {
    let mut r = Reader::new(params, "TPM2B_ATTEST");
    let attest = r
        .tpm2b(2048)
        .map_err(|e| bad_response(command, e))?
        .to_vec();
    let signature = r.rest().to_vec();
    Signature::parse(&signature).map_err(|e| bad_response(command, e))?;
    Ok(QuoteOutput { attest, signature })
}
