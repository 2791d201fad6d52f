//! Fuzz target `eventlog_mb_check`: see `keylime_fuzz::eventlog::mb_check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::eventlog::mb_check(data));
