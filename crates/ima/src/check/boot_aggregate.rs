//! `boot_aggregate`: the first IMA entry, the digest of the boot PCRs when IMA started
//! (kernel `ima_calc_boot_aggregate`: H over PCRs 0–7 in the SHA-1 bank, 0–9 in others).
//! It is accepted when the policy lists it, when the measured-boot log yields it, or when
//! it equals the aggregate of the quoted PCRs 0–7 or 0–9 in the quote's bank.

use std::collections::BTreeMap;

use keylime_tpm::HashAlg;

use crate::digest::{BankHasher, DigestBuf};

/// The entry name of the boot aggregate.
pub const BOOT_AGGREGATE: &str = "boot_aggregate";

/// H_bank(PCR 0 ‖ … ‖ PCR `last`) from quoted PCR values; `None` unless every one of them
/// is present with the bank's size (or the bank is not hashed by this crate).
pub fn boot_aggregate(bank: HashAlg, pcrs: &BTreeMap<u8, Vec<u8>>, last: u8) -> Option<DigestBuf> {
    let mut h = BankHasher::new(bank)?;
    for i in 0..=last {
        let v = pcrs.get(&i)?;
        if v.len() != bank.digest_len() {
            return None;
        }
        h.update(v);
    }
    Some(h.finalize_reset())
}

/// The aggregates an entry may carry besides those the policy lists.
pub(crate) struct BootAggregates<'a> {
    bank_name: &'static str,
    from_quote: Vec<DigestBuf>,
    from_event_log: &'a [(HashAlg, Vec<u8>)],
}

impl<'a> BootAggregates<'a> {
    pub(crate) fn new(
        bank: HashAlg,
        quoted: &BTreeMap<u8, Vec<u8>>,
        from_event_log: &'a [(HashAlg, Vec<u8>)],
    ) -> Self {
        let from_quote = [7u8, 9]
            .into_iter()
            .filter_map(|last| boot_aggregate(bank, quoted, last))
            .collect();
        BootAggregates {
            bank_name: bank.name(),
            from_quote,
            from_event_log,
        }
    }

    /// True when `digest` (of algorithm `alg`) is a known aggregate. Event-log aggregates
    /// are compared by value only, as upstream merges them into the policy's hex list.
    pub(crate) fn accepts(&self, alg: &str, digest: &[u8]) -> bool {
        (alg == self.bank_name && self.from_quote.iter().any(|d| d.as_slice() == digest))
            || self.from_event_log.iter().any(|(_, d)| d == digest)
    }

    /// Every known aggregate as hex (for a failure's `expected`).
    pub(crate) fn expected_hex(&self) -> impl Iterator<Item = String> + '_ {
        self.from_event_log
            .iter()
            .map(|(_, d)| d.iter().map(|b| format!("{b:02x}")).collect())
            .chain(self.from_quote.iter().map(DigestBuf::to_hex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn aggregates_need_every_pcr() {
        let mut pcrs: BTreeMap<u8, Vec<u8>> = (0..8).map(|i| (i, vec![i; 32])).collect();
        let want: Vec<u8> = {
            let mut h = sha2::Sha256::new();
            for i in 0..8u8 {
                h.update([i; 32]);
            }
            h.finalize().to_vec()
        };
        assert_eq!(
            boot_aggregate(HashAlg::Sha256, &pcrs, 7)
                .unwrap()
                .as_slice(),
            want.as_slice()
        );
        assert!(boot_aggregate(HashAlg::Sha256, &pcrs, 9).is_none());
        assert!(
            boot_aggregate(HashAlg::Sha1, &pcrs, 7).is_none(),
            "wrong sizes"
        );
        let b = BootAggregates::new(HashAlg::Sha256, &pcrs, &[]);
        assert!(b.accepts("sha256", &want));
        assert!(!b.accepts("sha1", &want));
        pcrs.remove(&3);
        assert!(boot_aggregate(HashAlg::Sha256, &pcrs, 7).is_none());
        let extra = [(HashAlg::Sha1, vec![1u8; 20])];
        let b = BootAggregates::new(HashAlg::Sha256, &pcrs, &extra);
        assert!(b.accepts("sha1", &[1; 20]));
        assert_eq!(b.expected_hex().collect::<Vec<_>>(), vec!["01".repeat(20)]);
    }
}
