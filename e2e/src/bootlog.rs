//! Boot-log replayer for end-to-end tests: extends swtpm's PCRs from a real UEFI event log
//! (every event but `EV_NO_ACTION`, in every bank the log carries and the TPM has), so an
//! agent serving that log (`measuredboot_ml_path`) quotes PCRs that match it. Runs before
//! the agent starts (our TPM client flushes stale transient objects on open).

use keylime_eventlog::{EventType, parse};
use keylime_tpm::{Tcti, Tpm};

/// Replays `log` into the TPM at `tcti`; returns how many extends were made.
pub fn replay_into_tpm(tcti: &str, log: &[u8]) -> usize {
    let parsed = parse(log).unwrap_or_else(|e| panic!("event log does not parse: {e}"));
    assert!(
        parsed.startup_locality.is_none(),
        "a log with a StartupLocality event cannot be replayed into a TPM started at locality 0"
    );
    let mut tpm = Tpm::open(&Tcti::parse(tcti).expect("tcti")).expect("open swtpm");
    let mut extends = 0;
    for event in &parsed.events {
        if event.event_type == EventType::EV_NO_ACTION || event.pcr > 23 {
            continue;
        }
        for d in &event.digests {
            let Some(bank) = d.hash_alg() else { continue };
            let pcr = u8::try_from(event.pcr).expect("PCR index");
            tpm.pcr_extend(pcr, bank, &d.digest)
                .unwrap_or_else(|e| panic!("extending PCR {pcr} ({bank}): {e}"));
            extends += 1;
        }
    }
    extends
}

/// A copy of `log` with the first `sha256` digest of event `number` changed: what the log
/// of a machine that booted a different component looks like (its PCRs replayed from it).
pub fn with_changed_digest(log: &[u8], number: usize) -> Vec<u8> {
    let parsed = parse(log).expect("event log");
    let event = parsed
        .events
        .iter()
        .find(|e| e.number == number)
        .expect("event number");
    // TCG_PCR_EVENT2: pcrIndex u32, eventType u32, count u32, then (algId u16, digest)…
    let mut at = event.offset + 12;
    let mut out = log.to_vec();
    for d in &event.digests {
        at += 2;
        if d.alg_id == 0x000b {
            out[at] ^= 0xff;
            return out;
        }
        at += d.digest.len();
    }
    panic!("event {number} has no sha256 digest");
}
