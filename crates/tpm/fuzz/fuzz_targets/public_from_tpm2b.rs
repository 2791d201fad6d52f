#![no_main]
//! `Public::from_tpm2b` never panics; what parses re-encodes identically and converts to
//! SPKI (or fails with an error) without panicking.
use keylime_tpm::Public;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Public::from_tpm2b(data) {
        assert_eq!(p.to_tpm2b(), data);
        assert_eq!(Public::from_tpmt(p.tpmt_bytes()).ok().as_ref(), Some(&p));
        let _ = p.name();
        let _ = p.spki_der();
        let _ = p.public_key_pem();
    }
});
