#![no_main]
//! The quote string decoder and every parser behind it never panic.
use keylime_tpm::{Attest, Signature, pcr_blob, quote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(parts) = quote::decode_quote_string(s)
    {
        let _ = Attest::parse(&parts.attest);
        let _ = Signature::parse(&parts.signature);
        let _ = pcr_blob::decode(&parts.pcr_blob);
    }
});
