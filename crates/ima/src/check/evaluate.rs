//! Each entry judged against the prepared policy (PROTOCOL.md §8.1 "Validation"), with
//! upstream's event ids and messages. The caller keeps these events only for a proven
//! chain.
//!
//! The order of the tests differs from upstream's where the outcome cannot: a listed digest
//! is looked up before the exclude regexes and before any signature is verified, since
//! each of them alone accepts the entry.

use serde_json::json;

use super::boot_aggregate::{BOOT_AGGREGATE, BootAggregates};
use super::failures::{FailureSink, ids, message};
use super::keys::TrustedKeys;
use crate::entry::{Entry, Template};
use crate::file_signature::{KeyError, PublicKey, check_signature};
use crate::prepared::{DigestIndex, PreparedRuntimePolicy};

/// Which digest section a name is looked up in.
#[derive(Clone, Copy)]
enum Section {
    Digests,
    Keyrings,
    ImaBuf,
}

pub(crate) struct Evaluator<'a> {
    policy: &'a PreparedRuntimePolicy,
    boot: BootAggregates<'a>,
    pub(crate) keys: TrustedKeys<'a>,
    pub(crate) evaluated: u64,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        policy: &'a PreparedRuntimePolicy,
        boot: BootAggregates<'a>,
        keys: TrustedKeys<'a>,
    ) -> Self {
        Evaluator {
            policy,
            boot,
            keys,
            evaluated: 0,
        }
    }

    fn index(&self, s: Section) -> &'a DigestIndex {
        match s {
            Section::Digests => &self.policy.digests,
            Section::Keyrings => &self.policy.keyrings,
            Section::ImaBuf => &self.policy.ima_buf,
        }
    }

    /// Judges one entry (chunk-relative `index`); violations are not judged.
    #[inline]
    pub(crate) fn evaluate(&mut self, index: u64, entry: &Entry<'_>, sink: &mut FailureSink) {
        if entry.is_violation() {
            return;
        }
        self.evaluated += 1;
        match entry.template {
            Template::Ima | Template::ImaNg | Template::ImaModsig => self.file(entry, sink),
            Template::ImaSig => self.signed_file(entry, sink),
            Template::ImaBuf => self.buffer(index, entry, sink),
        }
    }

    #[inline]
    fn file(&self, entry: &Entry<'_>, sink: &mut FailureSink) {
        if entry.name == BOOT_AGGREGATE {
            self.boot_aggregate(entry, sink);
        } else {
            self.listed_or_fail(Section::Digests, entry, sink);
        }
    }

    /// The digest is listed under the entry's name, or the name is excluded.
    #[inline]
    fn accepted(&self, section: Section, name: &str, digest: &[u8]) -> bool {
        self.index(section)
            .get(name)
            .is_some_and(|l| l.contains(digest))
            || self.policy.is_excluded(name)
    }

    fn listed_or_fail(&self, section: Section, entry: &Entry<'_>, sink: &mut FailureSink) -> bool {
        let digest = entry.digest.digest.as_slice();
        if self.accepted(section, entry.name, digest) {
            return true;
        }
        self.fail_digest(section, entry, sink);
        false
    }

    fn fail_digest(&self, section: Section, entry: &Entry<'_>, sink: &mut FailureSink) {
        let name = entry.name;
        match self.index(section).get(name) {
            // logged inside the closures, so the log is capped with the events (at debug:
            // the caller reports the events it keeps)
            None => {
                sink.push(ids::NOT_IN_ALLOWLIST, || {
                    tracing::debug!(path = name, "file not found in allowlist");
                    message(format!("File not found in allowlist: {name}"))
                });
            }
            Some(list) => {
                sink.push(ids::RUNTIME_POLICY_HASH, || {
                    let got = entry.digest.digest.to_hex();
                    tracing::debug!(path = name, digest = %got, "hash not found in runtime policy");
                    json!({
                        "message": "Hash not found in runtime policy",
                        "got": got,
                        "expected": list.to_hex(),
                    })
                });
            }
        }
    }

    fn boot_aggregate(&self, entry: &Entry<'_>, sink: &mut FailureSink) {
        let digest = entry.digest.digest.as_slice();
        if self.accepted(Section::Digests, BOOT_AGGREGATE, digest)
            || self.boot.accepts(entry.digest.algorithm_name(), digest)
        {
            return;
        }
        let listed = self.policy.digests.get(BOOT_AGGREGATE);
        let mut expected: Vec<String> = listed.map(|l| l.to_hex()).unwrap_or_default();
        expected.extend(self.boot.expected_hex());
        if listed.is_none() && expected.is_empty() {
            sink.push(ids::NOT_IN_ALLOWLIST, || {
                message(format!("File not found in allowlist: {BOOT_AGGREGATE}"))
            });
        } else {
            let got = entry.digest.digest.to_hex();
            tracing::debug!(digest = %got, "boot_aggregate not accepted");
            sink.push(ids::RUNTIME_POLICY_HASH, || {
                json!({
                    "message": "Hash not found in runtime policy",
                    "got": got,
                    "expected": expected,
                })
            });
        }
    }

    fn signed_file(&self, entry: &Entry<'_>, sink: &mut FailureSink) {
        if entry.name == BOOT_AGGREGATE {
            return self.boot_aggregate(entry, sink);
        }
        let digest = entry.digest.digest.as_slice();
        if self.accepted(Section::Digests, entry.name, digest) {
            return;
        }
        if !entry.sig_hex.is_empty() {
            let sig = entry.signature();
            let alg = entry.digest.algorithm_name();
            let outcome = check_signature(&sig, alg, digest, |id| self.keys.keys_for(id));
            if outcome.is_valid() {
                return;
            }
            tracing::debug!(path = entry.name, ?outcome, "file signature not accepted");
        }
        // upstream falls back to the digests, with the ima-ng event ids
        self.fail_digest(Section::Digests, entry, sink);
    }

    fn buffer(&mut self, index: u64, entry: &Entry<'_>, sink: &mut FailureSink) {
        let data = entry.buffer();
        match PublicKey::from_key_material(&data) {
            Ok(key) => {
                if !self.policy.keyring_ignored(entry.name)
                    && self.listed_or_fail(Section::Keyrings, entry, sink)
                {
                    self.keys.learn(index, entry.name, key);
                }
            }
            Err(e @ KeyError::UnsupportedType(_)) => {
                let name = entry.name;
                sink.push(ids::INVALID_KEY, || {
                    message(format!(
                        "key from {name} does not have a supported key: {e}"
                    ))
                });
            }
            Err(KeyError::NotAKey | KeyError::Malformed { .. }) => {
                self.listed_or_fail(Section::ImaBuf, entry, sink);
            }
        }
    }
}
