//! Fuzz target `ima_check`: see `keylime_fuzz::ima::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::ima::check(data));
