#![no_main]
//! `Attest::parse` never panics on arbitrary bytes.
use keylime_tpm::Attest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Attest::parse(data);
});
