//! Fuzz target `tpm_public`: see `keylime_fuzz::tpm::public`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::public(data));
