//! Fuzz target `tpm_attest`: see `keylime_fuzz::tpm::attest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::attest(data));
