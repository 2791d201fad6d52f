//! TPM structures an agent sends: every parser must refuse bad bytes with an error, and what
//! parses must re-encode to the same bytes.

use keylime_tpm::{Attest, CredentialBlob, Public, Signature, quote};

/// `TPM2B_PUBLIC` (EK, AK, IAK, IDevID at the registrar; the AK at the verifier).
pub fn public(data: &[u8]) {
    if let Ok(p) = Public::from_tpm2b(data) {
        assert_eq!(p.to_tpm2b(), data, "TPM2B_PUBLIC re-encodes identically");
        assert_eq!(
            Public::from_tpmt(p.tpmt_bytes()).ok().as_ref(),
            Some(&p),
            "TPMT_PUBLIC parses to the same key"
        );
        let _ = p.name();
        let _ = p.spki_der();
        let _ = p.public_key_pem();
    }
}

/// `TPMS_ATTEST` (quotes, TPM2_Certify).
pub fn attest(data: &[u8]) {
    let _ = Attest::parse(data);
}

/// `TPMT_SIGNATURE`.
pub fn signature(data: &[u8]) {
    if let Ok(sig) = Signature::parse(data) {
        assert_eq!(
            sig.to_bytes(),
            data,
            "TPMT_SIGNATURE re-encodes identically"
        );
    }
}

/// The tpm2-tools PCR blob: a decoded single-bank blob re-encodes to a blob that decodes
/// to the same selection and values (padding bytes may differ).
pub fn pcr_blob(data: &[u8]) {
    use keylime_tpm::pcr_blob::{decode, encode};
    if let Ok((sels, values)) = decode(data)
        && let [sel] = sels.as_slice()
        && let Ok(again) = encode(sel, &values)
    {
        assert_eq!(decode(&again).ok(), Some((sels.clone(), values)));
    }
}

/// The tpm2-tools credential blob (`tpm2_makecredential` output).
pub fn credential(data: &[u8]) {
    if let Ok(blob) = CredentialBlob::from_tpm2_tools(data) {
        assert_eq!(
            blob.to_tpm2_tools(),
            data,
            "credential blob re-encodes identically"
        );
    }
}

/// The quote string `r<TPMS_ATTEST>:<TPMT_SIGNATURE>:<PCR blob>` (base64 parts) and every
/// parser behind it.
pub fn quote_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parts) = quote::decode_quote_string(text) {
        attest(&parts.attest);
        signature(&parts.signature);
        pcr_blob(&parts.pcr_blob);
    }
}
