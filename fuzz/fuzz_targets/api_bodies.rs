//! Fuzz target `api_bodies`: see `keylime_fuzz::api::bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::api::bodies(data));
