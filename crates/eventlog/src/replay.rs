//! PCR replay: extend every bank present in the log, from zeros (PCR 0 from the startup
//! locality), skipping EV_NO_ACTION records, as a TPM would have.

use std::collections::BTreeMap;

use keylime_tpm::alg::HashAlg;

use crate::event_type::EventType;
use crate::log::EventLog;

/// Replayed PCR values: bank → PCR (or measurement-register) index → value. Only banks and
/// indexes that at least one event extended appear.
pub type PcrBanks = BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>;

/// Replay `log` into every bank it carries digests for.
pub fn replay(log: &EventLog) -> PcrBanks {
    let mut banks: PcrBanks = BTreeMap::new();
    for event in &log.events {
        if event.event_type == EventType::EV_NO_ACTION {
            continue;
        }
        for d in &event.digests {
            let Some(alg) = d.hash_alg() else { continue };
            let pcr = banks
                .entry(alg)
                .or_default()
                .entry(event.pcr)
                .or_insert_with(|| initial_value(alg, event.pcr, log.startup_locality));
            let next = alg.digest_parts(&[pcr, &d.digest]);
            *pcr = next;
        }
    }
    banks
}

fn initial_value(alg: HashAlg, pcr: u32, locality: Option<u8>) -> Vec<u8> {
    let mut v = vec![0u8; alg.digest_len()];
    if pcr == 0
        && let (Some(l), Some(last)) = (locality, v.last_mut())
    {
        *last = l;
    }
    v
}
