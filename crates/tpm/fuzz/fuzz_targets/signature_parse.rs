#![no_main]
//! `Signature::parse` never panics; what parses re-encodes identically.
use keylime_tpm::Signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = Signature::parse(data) {
        assert_eq!(sig.to_bytes(), data);
    }
});
