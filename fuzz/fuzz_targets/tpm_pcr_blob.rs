//! Fuzz target `tpm_pcr_blob`: see `keylime_fuzz::tpm::pcr_blob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::pcr_blob(data));
