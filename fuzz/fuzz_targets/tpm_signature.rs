//! Fuzz target `tpm_signature`: see `keylime_fuzz::tpm::signature`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::signature(data));
