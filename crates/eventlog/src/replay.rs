//! PCR replay: extend every bank present in the log, from zeros (PCR 0 from the startup
//! locality, or from locality 4 when an H-CRTM event opens it), skipping EV_NO_ACTION
//! records, as a TPM would have.

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
                .or_insert_with(|| {
                    // An H-CRTM sequence (_TPM_Hash_Start at locality 4) resets PCR 0 to
                    // 0...04 before its first extend.
                    let locality = if event.event_type == EventType::EV_EFI_HCRTM_EVENT {
                        Some(4)
                    } else {
                        log.startup_locality
                    };
                    initial_value(alg, event.pcr, locality)
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{DigestCheck, Event, EventDigest, LogFormat};

    fn event(number: usize, pcr: u32, event_type: EventType, digest: &[u8]) -> Event {
        Event {
            number,
            offset: 0,
            pcr,
            event_type,
            digests: vec![EventDigest {
                alg_id: HashAlg::Sha256.tpm_id(),
                digest: digest.to_vec(),
            }],
            data: Vec::new(),
            data_offset: 0,
            digest_check: DigestCheck::NotApplicable,
        }
    }

    #[test]
    fn hcrtm_starts_pcr0_at_locality_4() {
        let d = HashAlg::Sha256.digest(b"H-CRTM code");
        let log = EventLog {
            format: LogFormat::CryptoAgile,
            spec_id: None,
            events: vec![
                event(0, 0, EventType::EV_EFI_HCRTM_EVENT, &d),
                event(1, 0, EventType::EV_SEPARATOR, &d),
            ],
            startup_locality: None,
            trailing: None,
        };
        let mut start = vec![0u8; 32];
        start[31] = 4;
        let once = HashAlg::Sha256.digest_parts(&[&start, &d]);
        let twice = HashAlg::Sha256.digest_parts(&[&once, &d]);
        assert_eq!(replay(&log)[&HashAlg::Sha256][&0], twice);
    }
}
