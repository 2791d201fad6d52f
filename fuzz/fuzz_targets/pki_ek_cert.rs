//! Fuzz target `pki_ek_cert`: see `keylime_fuzz::pki::ek_cert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::pki::ek_cert(data));
