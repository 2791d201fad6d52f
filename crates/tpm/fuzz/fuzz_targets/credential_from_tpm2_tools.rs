#![no_main]
//! `CredentialBlob::from_tpm2_tools` never panics; what parses re-encodes identically.
use keylime_tpm::CredentialBlob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(blob) = CredentialBlob::from_tpm2_tools(data) {
        assert_eq!(blob.to_tpm2_tools(), data);
    }
});
