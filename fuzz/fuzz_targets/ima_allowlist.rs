//! Fuzz target `ima_allowlist`: see `keylime_fuzz::ima::allowlist`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::ima::allowlist(data));
