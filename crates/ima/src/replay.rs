//! PCR 10 replay: `pcr = H_B(pcr || H_B(template data))` per bank, violations extending
//! all-`0xFF`, from zeros or from a stored value at `next_ima_ml_entry` (incremental), and
//! the search for the position where the running value equals the quoted PCR 10 (the log may
//! run ahead of the quote; PROTOCOL.md §8.1).

use keylime_tpm::HashAlg;

use crate::digest::{BankHasher, DigestBuf};
use crate::error::ImaError;
use crate::template::{TemplateHasher, TemplateRecord};

/// Where the running PCR 10 value equalled the quoted one: the verified prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedMatch {
    /// Absolute index of the first entry *not* covered by the quote (`next_ima_ml_entry`).
    pub next_entry: u64,
    /// Every replayed bank's value at that position, in the order the banks were given.
    pub values: Vec<(HashAlg, DigestBuf)>,
}

/// The running PCR 10 value of one bank.
#[derive(Clone)]
pub struct Replay {
    bank: HashAlg,
    hasher: BankHasher,
    value: DigestBuf,
    next_entry: u64,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("bank", &self.bank)
            .field("value", &self.value)
            .field("next_entry", &self.next_entry)
            .finish()
    }
}

fn check_len(what: &'static str, bank: HashAlg, value: &[u8]) -> Result<(), ImaError> {
    if value.len() != bank.digest_len() {
        return Err(ImaError::ValueLength {
            what,
            bank,
            len: value.len(),
            expected: bank.digest_len(),
        });
    }
    Ok(())
}

impl Replay {
    /// A replay from the reset value (zeros) at entry 0.
    pub fn new(bank: HashAlg) -> Result<Self, ImaError> {
        Self::resume(bank, &vec![0; bank.digest_len()], 0)
    }

    /// A replay continuing from `start_value`, the bank's value after `entry_index` entries.
    pub fn resume(bank: HashAlg, start_value: &[u8], entry_index: u64) -> Result<Self, ImaError> {
        let hasher = BankHasher::new(bank).ok_or(ImaError::UnsupportedBank(bank))?;
        check_len("start value", bank, start_value)?;
        let value = DigestBuf::from_slice(start_value).ok_or(ImaError::UnsupportedBank(bank))?;
        Ok(Replay {
            bank,
            hasher,
            value,
            next_entry: entry_index,
        })
    }

    pub fn bank(&self) -> HashAlg {
        self.bank
    }

    /// The running value.
    pub fn value(&self) -> &DigestBuf {
        &self.value
    }

    /// Absolute index of the next entry to feed.
    pub fn next_entry(&self) -> u64 {
        self.next_entry
    }

    /// Extends one entry whose measurement (H_B of its template data, or the violation
    /// value) is already known.
    pub fn extend_measurement(&mut self, measurement: &[u8]) {
        let mut buf = [0u8; 2 * crate::digest::MAX_DIGEST_LEN];
        let v = self.value.as_slice();
        if let Some(dst) = buf.get_mut(..v.len() + measurement.len()) {
            let (a, b) = dst.split_at_mut(v.len());
            a.copy_from_slice(v);
            b.copy_from_slice(measurement);
            self.hasher.update(dst);
        } else {
            self.hasher.update(v);
            self.hasher.update(measurement);
        }
        self.value = self.hasher.finalize_reset();
        self.next_entry += 1;
    }

    /// Extends one entry: H_B(template data), or all-`0xFF` for a violation.
    pub fn extend_entry<R: TemplateRecord>(&mut self, entry: &R) {
        let m = if entry.is_violation_record() {
            DigestBuf::filled(0xFF, self.bank.digest_len())
        } else {
            let h = &mut self.hasher;
            entry.for_each_template_part(|p| h.update(p));
            h.finalize_reset()
        };
        self.extend_measurement(m.as_slice());
    }

    /// Feeds every entry; stops at the first parse error.
    pub fn feed<R: TemplateRecord>(
        &mut self,
        entries: impl IntoIterator<Item = Result<R, ImaError>>,
    ) -> Result<(), ImaError> {
        for e in entries {
            self.extend_entry(&e?);
        }
        Ok(())
    }

    /// Feeds every entry and reports the first position (before any entry, or after one)
    /// where the running value equals `quoted`. The replay continues to the end either way.
    pub fn find_quoted<R: TemplateRecord>(
        &mut self,
        entries: impl IntoIterator<Item = Result<R, ImaError>>,
        quoted: &[u8],
    ) -> Result<Option<QuotedMatch>, ImaError> {
        check_len("quoted PCR 10", self.bank, quoted)?;
        let mut found = None;
        let mut note = |r: &Replay| {
            if found.is_none() && r.value.as_slice() == quoted {
                found = Some(QuotedMatch {
                    next_entry: r.next_entry,
                    values: vec![(r.bank, r.value)],
                });
            }
        };
        note(self);
        for e in entries {
            self.extend_entry(&e?);
            note(self);
        }
        Ok(found)
    }
}

/// The outcome of one entry's template-hash check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryCheck {
    /// Column 2 equals H_log(template data).
    Ok,
    /// All-zero column 2: not checked, extended as all-`0xFF`.
    Violation,
    /// Column 2 differs from H_log(template data) (`computed`).
    Mismatch { computed: DigestBuf },
}

/// Checks template hashes and replays several banks in one pass, hashing each entry's
/// template data once per distinct algorithm; optionally watches for the quoted PCR 10.
#[derive(Clone)]
pub struct ChainVerifier {
    log_alg: HashAlg,
    hasher: TemplateHasher,
    banks: Vec<Replay>,
    quoted: Option<(usize, DigestBuf)>,
    matched: Option<QuotedMatch>,
}

impl ChainVerifier {
    /// Replays `banks` from zeros; template hashes are checked with `log_alg` (the policy's
    /// `ima.log_hash_alg`, default sha1).
    pub fn new(log_alg: HashAlg, banks: &[HashAlg]) -> Result<Self, ImaError> {
        let starts = banks
            .iter()
            .map(|&b| Replay::new(b))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_replays(log_alg, starts)
    }

    /// Continues replays previously saved (each with its own start value; they should all
    /// be at the same `next_entry`).
    pub fn from_replays(log_alg: HashAlg, banks: Vec<Replay>) -> Result<Self, ImaError> {
        let mut algs = vec![log_alg];
        algs.extend(banks.iter().map(|r| r.bank));
        Ok(ChainVerifier {
            log_alg,
            hasher: TemplateHasher::new(&algs)?,
            banks,
            quoted: None,
            matched: None,
        })
    }

    /// Watches for `value` in `bank` (which must be replayed); the current position is
    /// compared at once (a quote that covers no new entry).
    pub fn expect_quoted(&mut self, bank: HashAlg, value: &[u8]) -> Result<(), ImaError> {
        let i = self
            .banks
            .iter()
            .position(|r| r.bank == bank)
            .ok_or(ImaError::UnsupportedBank(bank))?;
        check_len("quoted PCR 10", bank, value)?;
        let v = DigestBuf::from_slice(value).ok_or(ImaError::UnsupportedBank(bank))?;
        self.quoted = Some((i, v));
        self.matched = None;
        self.note_match();
        Ok(())
    }

    fn note_match(&mut self) {
        if self.matched.is_some() {
            return;
        }
        if let Some((i, q)) = &self.quoted
            && let Some(r) = self.banks.get(*i)
            && r.value == *q
        {
            self.matched = Some(QuotedMatch {
                next_entry: r.next_entry,
                values: self.banks.iter().map(|b| (b.bank, b.value)).collect(),
            });
        }
    }

    /// Checks `entry`'s template hash and extends it into every bank.
    pub fn process<R: TemplateRecord>(&mut self, entry: &R) -> EntryCheck {
        let check = if entry.is_violation_record() {
            for r in &mut self.banks {
                let ff = DigestBuf::filled(0xFF, r.bank.digest_len());
                r.extend_measurement(ff.as_slice());
            }
            EntryCheck::Violation
        } else {
            self.hasher.hash(entry);
            for r in &mut self.banks {
                if let Some(m) = self.hasher.get(r.bank) {
                    r.extend_measurement(m.as_slice());
                }
            }
            match self.hasher.get(self.log_alg) {
                Some(c) if c == entry.logged_template_hash() => EntryCheck::Ok,
                Some(c) => EntryCheck::Mismatch { computed: *c },
                None => EntryCheck::Mismatch {
                    computed: DigestBuf::zeros(0),
                },
            }
        };
        self.note_match();
        check
    }

    /// The replays, in the order given.
    pub fn replays(&self) -> &[Replay] {
        &self.banks
    }

    /// The running value of `bank`.
    pub fn value(&self, bank: HashAlg) -> Option<&DigestBuf> {
        self.banks.iter().find(|r| r.bank == bank).map(|r| &r.value)
    }

    /// Absolute index of the next entry.
    pub fn next_entry(&self) -> u64 {
        self.banks.first().map_or(0, |r| r.next_entry)
    }

    /// The first position where the quoted value was reached, if it was.
    pub fn quoted_match(&self) -> Option<&QuotedMatch> {
        self.matched.as_ref()
    }
}
