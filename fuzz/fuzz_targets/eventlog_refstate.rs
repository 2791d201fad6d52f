//! Fuzz target `eventlog_refstate`: see `keylime_fuzz::eventlog::refstate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylime_fuzz::eventlog::refstate(data));
