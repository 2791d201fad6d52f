//! Fuzz target `attestation_quote`: see `keylime_fuzz::attestation::quote`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::attestation::quote(data));
