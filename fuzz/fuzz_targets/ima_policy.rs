//! Fuzz target `ima_policy`: see `keylime_fuzz::ima::policy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::ima::policy(data));
