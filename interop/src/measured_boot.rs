//! A recorded UEFI event log (shared test data) played into an agent's swtpm: the log is
//! written where the agent serves it (`measuredboot_ml_path`) and every measuring event's
//! SHA-256 digest is extended into its PCR, as the firmware would have, so that the log
//! replays to the quoted PCRs 0–9.

use std::path::Path;

use keylime_eventlog::{EventLog, EventType, HashAlg};

/// The recorded log the scenarios use: a SHA-256-only crypto-agile log with no
/// StartupLocality event (PCR 0 starts at zero, as swtpm's does).
pub const RECORDED_LOG: &str = "eventlog/keylime-tests/mb_log.bin";

/// Writes the recorded log to `log` and extends its events into the TPM behind `tcti`.
/// Returns the number of events extended.
pub fn play_event_log(log: &Path, tcti: &str) -> usize {
    let path = keylime_testkit::testdata(RECORDED_LOG);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    play_log_bytes(log, tcti, &bytes)
}

/// Writes the event log `bytes` to `log` and extends its events into the TPM behind
/// `tcti`. Returns the number of events extended.
pub fn play_log_bytes(log: &Path, tcti: &str, bytes: &[u8]) -> usize {
    let parsed = EventLog::parse(bytes).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert_eq!(
        parsed.startup_locality.unwrap_or(0),
        0,
        "swtpm cannot start PCR 0 at another locality"
    );
    let mut extended = 0;
    for event in &parsed.events {
        if event.event_type == EventType::EV_NO_ACTION {
            continue;
        }
        let Some(d) = event
            .digests
            .iter()
            .find(|d| d.hash_alg() == Some(HashAlg::Sha256))
        else {
            continue;
        };
        keylime_testkit::swtpm::pcr_extend(
            tcti,
            &format!("{}:sha256={}", event.pcr, hex_string(&d.digest)),
        );
        extended += 1;
    }
    std::fs::write(log, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", log.display()));
    extended
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
