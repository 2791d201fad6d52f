//! Fuzz target `api_add_agent`: see `keylime_fuzz::api::add_agent`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::api::add_agent(data));
