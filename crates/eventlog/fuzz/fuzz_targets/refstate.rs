//! Fuzz reference-state validation: any JSON document, under every built-in policy.
#![no_main]

use keylime_eventlog::PreparedMbPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(refstate) = serde_json::from_slice::<serde_json::Value>(data) {
        for name in ["example", "accept-all", "reject-all"] {
            let _ = PreparedMbPolicy::prepare(name, Some(&refstate));
        }
    }
});
