//! Fuzz target `ima_parse`: see `keylime_fuzz::ima::parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::ima::parse(data));
