//! The Keylime quote string: `"r" + b64(TPMS_ATTEST) + ":" + b64(TPMT_SIGNATURE) + ":" +
//! b64(PCR blob)` (PROTOCOL.md §4.3–4.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Result, TpmError};

/// Longest quote string accepted (a quote of 4 full banks is under 10 KiB).
pub const MAX_QUOTE_STRING: usize = 64 * 1024;

/// The three binary parts of a quote string, still undecoded as TPM structures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteParts {
    /// `TPMS_ATTEST` bytes exactly as signed.
    pub attest: Vec<u8>,
    /// `TPMT_SIGNATURE` bytes.
    pub signature: Vec<u8>,
    /// tpm2-tools serialized PCR blob (see [`crate::pcr_blob`]).
    pub pcr_blob: Vec<u8>,
}

/// Build a quote string from its binary parts.
pub fn encode_quote_string(attest: &[u8], sig: &[u8], pcr_blob: &[u8]) -> String {
    format!(
        "r{}:{}:{}",
        STANDARD.encode(attest),
        STANDARD.encode(sig),
        STANDARD.encode(pcr_blob)
    )
}

/// Split and base64-decode a quote string. All three parts must be present and non-empty.
pub fn decode_quote_string(s: &str) -> Result<QuoteParts> {
    if s.len() > MAX_QUOTE_STRING {
        return Err(TpmError::QuoteString(format!(
            "{} bytes exceeds the limit of {MAX_QUOTE_STRING}",
            s.len()
        )));
    }
    let body = s
        .strip_prefix('r')
        .ok_or_else(|| TpmError::QuoteString("does not start with 'r'".into()))?;
    let parts: Vec<&str> = body.split(':').collect();
    let [attest, signature, pcr_blob] = parts.as_slice() else {
        return Err(TpmError::QuoteString(format!(
            "expected 3 ':'-separated parts, found {}",
            parts.len()
        )));
    };
    let decode = |field: &'static str, text: &str| -> Result<Vec<u8>> {
        if text.is_empty() {
            return Err(TpmError::QuoteString(format!("{field} is empty")));
        }
        STANDARD
            .decode(text)
            .map_err(|source| TpmError::Base64 { field, source })
    };
    Ok(QuoteParts {
        attest: decode("quote TPMS_ATTEST", attest)?,
        signature: decode("quote TPMT_SIGNATURE", signature)?,
        pcr_blob: decode("quote PCR blob", pcr_blob)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = encode_quote_string(b"attest", b"sig", b"pcrs");
        assert_eq!(s, "rYXR0ZXN0:c2ln:cGNycw==");
        let p = decode_quote_string(&s).unwrap();
        assert_eq!(
            (
                p.attest.as_slice(),
                p.signature.as_slice(),
                p.pcr_blob.as_slice()
            ),
            (&b"attest"[..], &b"sig"[..], &b"pcrs"[..])
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "YXR0:c2ln:cGNycw==",
            "rYXR0:c2ln",
            "rYXR0:c2ln:cGNycw==:eA==",
            "r:c2ln:cGNycw==",
            "rYX!0:c2ln:cGNycw==",
        ] {
            assert!(decode_quote_string(bad).is_err(), "accepted {bad:?}");
        }
        let huge = format!("r{}", "A".repeat(MAX_QUOTE_STRING));
        assert!(matches!(
            decode_quote_string(&huge),
            Err(TpmError::QuoteString(_))
        ));
    }
}
