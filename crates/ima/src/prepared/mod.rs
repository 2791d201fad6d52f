//! A runtime policy prepared for evaluation: built once per policy version from a
//! [`RuntimePolicy`] and shared (`Arc`, it is `Send + Sync`) by every check that uses it.
//!
//! Preparation decodes and indexes the digest sections, compiles `excludes` into one
//! size-limited regex set, and loads `verification-keys`; after that an entry's evaluation
//! is a hash lookup, with no allocation and no re-parsing of the policy.

mod digest_index;
mod excludes;

use keylime_tpm::HashAlg;

use crate::file_signature::{PublicKey, SkippedKey, parse_verification_keys};
use crate::policy::{Generator, PolicyError, RuntimePolicy};

pub(crate) use digest_index::DigestIndex;
pub use digest_index::DigestList;
use excludes::Excludes;
pub use excludes::{EXCLUDES_DFA_SIZE_LIMIT, EXCLUDES_SIZE_LIMIT};

/// The name upstream uses for an `ignored_keyrings` entry that ignores every keyring.
const ALL_KEYRINGS: &str = "*";

/// A runtime policy indexed for evaluation.
#[derive(Clone)]
pub struct PreparedRuntimePolicy {
    generator: u64,
    log_hash_alg: HashAlg,
    pub(crate) digests: DigestIndex,
    pub(crate) keyrings: DigestIndex,
    pub(crate) ima_buf: DigestIndex,
    excludes: Excludes,
    ignored_keyrings: Vec<String>,
    verification_keys: Vec<PublicKey>,
    skipped_keys: Vec<SkippedKey>,
}

impl std::fmt::Debug for PreparedRuntimePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRuntimePolicy")
            .field("generator", &self.generator)
            .field("log_hash_alg", &self.log_hash_alg)
            .field("digests", &self.digests.names())
            .field("keyrings", &self.keyrings.names())
            .field("ima_buf", &self.ima_buf.names())
            .field("excludes", &self.excludes.len())
            .field("ignored_keyrings", &self.ignored_keyrings)
            .field("verification_keys", &self.verification_keys)
            .finish()
    }
}

impl PreparedRuntimePolicy {
    /// Indexes `policy`. Fails when `ima.log_hash_alg` is unknown, `ima.dm_policy` is not
    /// null (format v1), an exclude does not compile within the size limits, or
    /// `verification-keys` is not a valid keyring. Digest strings that are not lowercase hex
    /// are dropped (they could never match, as upstream compares lowercase hex).
    pub fn prepare(policy: &RuntimePolicy) -> Result<Self, PolicyError> {
        let log_hash_alg = policy.log_hash_alg()?;
        if policy.ima.dm_policy.is_some() {
            return Err(PolicyError::Schema {
                field: "ima.dm_policy".into(),
                problem: "must be null in format v1 (device-mapper policies are not supported)"
                    .into(),
            });
        }
        let excludes = Excludes::compile(&policy.excludes)?;
        let (verification_keys, skipped_keys) = parse_verification_keys(&policy.verification_keys)
            .map_err(|e| PolicyError::VerificationKeys(e.to_string()))?;
        for s in &skipped_keys {
            tracing::warn!(
                index = s.index,
                reason = %s.reason,
                "runtime policy verification key skipped"
            );
        }
        let prepared = PreparedRuntimePolicy {
            generator: policy.meta.generator,
            log_hash_alg,
            digests: DigestIndex::build(&policy.digests),
            keyrings: DigestIndex::build(&policy.keyrings),
            ima_buf: DigestIndex::build(&policy.ima_buf),
            excludes,
            ignored_keyrings: policy.ima.ignored_keyrings.clone(),
            verification_keys,
            skipped_keys,
        };
        let dropped =
            prepared.digests.dropped() + prepared.keyrings.dropped() + prepared.ima_buf.dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "runtime policy digests that are not lowercase hex were ignored"
            );
        }
        Ok(prepared)
    }

    /// H_log, the template-hash algorithm (`ima.log_hash_alg`).
    pub fn log_hash_alg(&self) -> HashAlg {
        self.log_hash_alg
    }

    /// `meta.generator`.
    pub fn generator(&self) -> Generator {
        Generator::from_code(self.generator).unwrap_or(Generator::Unknown)
    }

    /// False for generator ≤ 1 (the empty "no runtime policy" policy), which the push-mode
    /// engine does not enforce (PROTOCOL.md §11 Q34).
    pub fn enforcing(&self) -> bool {
        self.generator > Generator::EmptyAllowList.code()
    }

    /// Number of names in `digests`.
    pub fn digest_names(&self) -> usize {
        self.digests.names()
    }

    /// Number of `excludes` patterns.
    pub fn exclude_count(&self) -> usize {
        self.excludes.len()
    }

    /// The keys of `verification-keys` that loaded.
    pub fn verification_keys(&self) -> &[PublicKey] {
        &self.verification_keys
    }

    /// The keys of `verification-keys` that did not load, and why.
    pub fn skipped_verification_keys(&self) -> &[SkippedKey] {
        &self.skipped_keys
    }

    /// True when `path` matches an exclude.
    #[inline]
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excludes.is_excluded(path)
    }

    /// The digests `digests[name]` lists (`None`: the name is not listed).
    pub fn file_digests(&self, name: &str) -> Option<DigestList<'_>> {
        self.digests.get(name)
    }

    /// True when keys measured into `keyring` are not checked (listed in
    /// `ima.ignored_keyrings`, or `*` is).
    pub fn keyring_ignored(&self, keyring: &str) -> bool {
        self.ignored_keyrings
            .iter()
            .any(|k| k == ALL_KEYRINGS || k == keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn is_send_and_sync() {
        assert_send_sync::<PreparedRuntimePolicy>();
    }

    #[test]
    fn prepares_the_empty_policy() {
        let p = PreparedRuntimePolicy::prepare(&RuntimePolicy::empty()).unwrap();
        assert!(!p.enforcing());
        assert_eq!(p.log_hash_alg(), HashAlg::Sha1);
        assert!(!p.is_excluded("/tmp"));
        assert!(!p.keyring_ignored(".ima"));
        let mut q = RuntimePolicy::empty();
        q.meta.generator = 3;
        q.ima.ignored_keyrings = vec!["*".into()];
        q.ima.log_hash_alg = "sha256".into();
        let p = PreparedRuntimePolicy::prepare(&q).unwrap();
        assert!(p.enforcing());
        assert!(p.keyring_ignored(".ima"));
        assert_eq!(p.log_hash_alg(), HashAlg::Sha256);
        q.ima.dm_policy = Some(serde_json::json!({}));
        assert!(matches!(
            PreparedRuntimePolicy::prepare(&q),
            Err(PolicyError::Schema { field, .. }) if field == "ima.dm_policy"
        ));
    }
}
