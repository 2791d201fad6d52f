//! Fuzz target `eventlog_parse`: see `keylime_fuzz::eventlog::parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::eventlog::parse(data));
