//! Fuzz target `tpm_quote_string`: see `keylime_fuzz::tpm::quote_string`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::tpm::quote_string(data));
