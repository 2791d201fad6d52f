//! Fuzz the ASCII and binary list parsers and the template hashing of what they accept.
#![no_main]

use keylime_ima::{HashAlg, parse_binary_log, parse_log, template_hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for entry in parse_log(&text).flatten() {
        let _ = template_hash(&entry, HashAlg::Sha1);
        let _ = entry.signature();
        let _ = entry.buffer();
    }
    for record in parse_binary_log(data).flatten() {
        let _ = template_hash(&record, HashAlg::Sha256);
    }
});
