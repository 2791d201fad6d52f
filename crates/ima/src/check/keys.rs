//! The keys trusted for file signatures during one check: the policy's
//! `verification-keys`, the keys learned earlier this boot (loaded only when a signature
//! names their id), and those learned in this chunk.

use std::cell::OnceCell;

use super::state::LearnedKey;
use crate::file_signature::PublicKey;

pub(crate) struct TrustedKeys<'a> {
    policy: &'a [PublicKey],
    prior: &'a [LearnedKey],
    prior_loaded: Vec<OnceCell<Option<PublicKey>>>,
    /// (chunk-relative entry index, record, key)
    learned: Vec<(u64, LearnedKey, PublicKey)>,
}

impl<'a> TrustedKeys<'a> {
    pub(crate) fn new(policy: &'a [PublicKey], prior: &'a [LearnedKey]) -> Self {
        TrustedKeys {
            policy,
            prior,
            prior_loaded: prior.iter().map(|_| OnceCell::new()).collect(),
            learned: Vec::new(),
        }
    }

    /// Every trusted key with `keyid`.
    pub(crate) fn keys_for(&self, keyid: u32) -> impl Iterator<Item = &PublicKey> {
        let policy = self.policy.iter().filter(move |k| k.keyid() == keyid);
        let prior = self
            .prior
            .iter()
            .zip(&self.prior_loaded)
            .filter(move |(r, _)| r.keyid == keyid)
            .filter_map(|(r, cell)| {
                cell.get_or_init(|| {
                    let k = r.load();
                    if k.is_none() {
                        tracing::warn!(keyring = %r.keyring, keyid = r.keyid, "stored learned key does not load");
                    }
                    k
                })
                .as_ref()
            });
        let learned = self
            .learned
            .iter()
            .filter(move |(_, r, _)| r.keyid == keyid)
            .map(|(_, _, k)| k);
        policy.chain(prior).chain(learned)
    }

    /// Trusts `key`, measured into `keyring` by the chunk's entry `index`.
    pub(crate) fn learn(&mut self, index: u64, keyring: &str, key: PublicKey) {
        let record = LearnedKey::new(keyring, &key);
        let known =
            self.prior.contains(&record) || self.learned.iter().any(|(_, r, _)| *r == record);
        if !known {
            tracing::debug!(keyring, keyid = record.keyid, "learned IMA key");
            self.learned.push((index, record, key));
        }
    }

    /// The keys to remember: the prior ones and those learned before chunk entry `end`
    /// (the part of the chunk the quote covers).
    pub(crate) fn into_learned(self, end: u64) -> Vec<LearnedKey> {
        let mut out = self.prior.to_vec();
        out.extend(
            self.learned
                .into_iter()
                .filter(|(i, _, _)| *i < end)
                .map(|(_, r, _)| r),
        );
        out
    }
}
