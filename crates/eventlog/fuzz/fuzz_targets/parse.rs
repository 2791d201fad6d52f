//! Fuzz the event-log parser, the replay and every event decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = keylime_eventlog::EventLog::parse(data) {
        let _ = keylime_eventlog::replay(&log);
        for event in &log.events {
            if let Ok(keylime_eventlog::EventData::Variable(v)) = event.decode() {
                let _ = v.signature_lists();
            }
        }
    }
});
