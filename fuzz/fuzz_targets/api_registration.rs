//! Fuzz target `api_registration`: see `keylime_fuzz::api::registration`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::api::registration(data));
