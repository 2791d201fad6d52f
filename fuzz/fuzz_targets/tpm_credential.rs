//! Fuzz target `tpm_credential`: see `keylime_fuzz::tpm::credential`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::credential(data));
