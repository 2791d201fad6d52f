//! The runtime policy model, format version 1 (PROTOCOL.md §8.2, upstream
//! `RUNTIME_POLICY_SCHEMA`): deserialization with a size limit, upstream's schema checks with
//! errors that name the offending key, and DSSE-envelope unwrapping.
//!
//! This module only *models* a policy; evaluating entries against it (exclude regexes,
//! digests, keyrings, signatures) needs the indexed form, [`crate::PreparedRuntimePolicy`],
//! built once per policy version.

mod dsse;
pub mod generate;
mod legacy;

use std::collections::BTreeMap;

use keylime_tpm::HashAlg;
use serde::{Deserialize, Serialize};

pub use dsse::{DsseEnvelope, DsseSignature, PolicyDocument};
pub use dsse::{
    DsseKey, EcdsaSigningKey, KEYLIME_PAYLOAD_TYPE, pae, sign_ecdsa, sign_with_keyid, verify,
};
pub use legacy::from_legacy;

/// Default upper bound on a policy document (upstream policies reach about 20 MiB).
pub const DEFAULT_MAX_POLICY_LEN: usize = 64 << 20;

/// The only format version upstream writes.
pub const RUNTIME_POLICY_VERSION: u64 = 1;

/// Errors loading a runtime policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("runtime policy is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("runtime policy is not valid JSON for format v1: {0}")]
    Json(String),
    #[error("runtime policy field {field}: {problem}")]
    Schema { field: String, problem: String },
    #[error("runtime policy DSSE envelope: {0}")]
    Dsse(String),
    /// An `excludes` regular expression does not compile (or exceeds the size limit).
    #[error("runtime policy exclude {pattern:?}: {problem}")]
    Exclude { pattern: String, problem: String },
    /// `verification-keys` is not a valid IMA keyring.
    #[error("runtime policy verification-keys: {0}")]
    VerificationKeys(String),
}

fn schema(field: impl Into<String>, problem: impl Into<String>) -> PolicyError {
    PolicyError::Schema {
        field: field.into(),
        problem: problem.into(),
    }
}

/// `meta.generator`: which tool wrote the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generator {
    Unknown = 0,
    EmptyAllowList = 1,
    CompatibleAllowList = 2,
    LegacyAllowList = 3,
}

impl Generator {
    pub fn from_code(code: u64) -> Option<Generator> {
        Some(match code {
            0 => Generator::Unknown,
            1 => Generator::EmptyAllowList,
            2 => Generator::CompatibleAllowList,
            3 => Generator::LegacyAllowList,
            _ => return None,
        })
    }

    pub fn code(self) -> u64 {
        self as u64
    }
}

/// `meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMeta {
    pub version: u64,
    /// Upstream treats a missing generator as [`Generator::Unknown`] when storing.
    #[serde(default)]
    pub generator: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `ima`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImaSection {
    pub ignored_keyrings: Vec<String>,
    /// Name of H_log, the template-hash algorithm (`sha1`, `sha256`, `sha384`, `sha512`).
    pub log_hash_alg: String,
    /// Must be null in format v1 (upstream schema).
    pub dm_policy: Option<serde_json::Value>,
}

impl Default for ImaSection {
    fn default() -> Self {
        ImaSection {
            ignored_keyrings: Vec::new(),
            log_hash_alg: "sha1".into(),
            dm_policy: None,
        }
    }
}

/// Path (or keyring / buffer name) → accepted lowercase hex digests.
pub type DigestMap = BTreeMap<String, Vec<String>>;

/// A runtime policy, format v1. Field names and order serialize as upstream's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePolicy {
    pub meta: PolicyMeta,
    pub release: u64,
    pub digests: DigestMap,
    pub excludes: Vec<String>,
    pub keyrings: DigestMap,
    pub ima: ImaSection,
    #[serde(rename = "ima-buf")]
    pub ima_buf: DigestMap,
    /// JSON text of an IMA keyring (`{"pubkeys": [...], "keyids": [...]}`) or "".
    #[serde(rename = "verification-keys")]
    pub verification_keys: String,
}

/// The same document with every top-level key optional, for [`RuntimePolicy::from_json_lenient`].
#[derive(Deserialize)]
struct LenientPolicy {
    meta: PolicyMeta,
    #[serde(default)]
    release: u64,
    #[serde(default)]
    digests: DigestMap,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    keyrings: DigestMap,
    #[serde(default)]
    ima: ImaSection,
    #[serde(default, rename = "ima-buf")]
    ima_buf: DigestMap,
    #[serde(default, rename = "verification-keys")]
    verification_keys: String,
}

fn check_len(bytes: &[u8], max: usize) -> Result<(), PolicyError> {
    if bytes.len() > max {
        return Err(PolicyError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

fn is_policy_digest(s: &str) -> bool {
    (40..=128).contains(&s.len()) && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// A string as Python's `repr` writes it (single quotes unless the text holds one).
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

impl PolicyError {
    /// The text upstream's verifier puts after "Runtime policy is malformatted: ": a schema
    /// violation's own message (jsonschema's wording where we reproduce it), else the error.
    pub fn upstream_message(&self) -> String {
        match self {
            PolicyError::Schema { problem, .. } => problem.clone(),
            other => other.to_string(),
        }
    }
}

fn check_digest_map(section: &str, map: &DigestMap) -> Result<(), PolicyError> {
    for (name, list) in map {
        if list.is_empty() {
            return Err(schema(format!("{section}[{name:?}]"), "empty digest list"));
        }
        if let Some(bad) = list.iter().find(|d| !is_policy_digest(d)) {
            // jsonschema's wording, as upstream's verifier reports it.
            return Err(schema(
                format!("{section}[{name:?}]"),
                format!(
                    "{} does not match '^[0-9a-f]{{40,128}}$'",
                    python_repr(&if bad.len() <= 4096 {
                        bad.clone()
                    } else {
                        crate::error::excerpt(bad)
                    })
                ),
            ));
        }
    }
    Ok(())
}

impl RuntimePolicy {
    /// The policy stored when none is given (generator 1: "no runtime policy").
    pub fn empty() -> Self {
        RuntimePolicy {
            meta: PolicyMeta {
                version: RUNTIME_POLICY_VERSION,
                generator: Generator::EmptyAllowList.code(),
                timestamp: None,
            },
            release: 0,
            digests: DigestMap::new(),
            excludes: Vec::new(),
            keyrings: DigestMap::new(),
            ima: ImaSection::default(),
            ima_buf: DigestMap::new(),
            verification_keys: String::new(),
        }
    }

    /// Parses and validates a plain (unsigned) policy as the verifier accepts it: every
    /// top-level key present, upstream's schema rules, at most `max_len` bytes.
    pub fn from_json(bytes: &[u8], max_len: usize) -> Result<Self, PolicyError> {
        check_len(bytes, max_len)?;
        let p: RuntimePolicy =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        if !p.meta_has_generator(bytes) {
            return Err(schema("meta.generator", "missing"));
        }
        p.validate()?;
        Ok(p)
    }

    /// Parses a policy without upstream's schema checks and with missing top-level keys
    /// defaulted (older tools and upstream's unit-test fixtures omit `release` or
    /// `meta.generator`, and legacy conversions carry `algo:hex` digests).
    pub fn from_json_lenient(bytes: &[u8], max_len: usize) -> Result<Self, PolicyError> {
        check_len(bytes, max_len)?;
        let p: LenientPolicy =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        Ok(RuntimePolicy {
            meta: p.meta,
            release: p.release,
            digests: p.digests,
            excludes: p.excludes,
            keyrings: p.keyrings,
            ima: p.ima,
            ima_buf: p.ima_buf,
            verification_keys: p.verification_keys,
        })
    }

    // `generator` defaults to 0 for the lenient path; the strict path needs to know whether
    // it was written.
    fn meta_has_generator(&self, bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct MetaOnly {
            meta: serde_json::Map<String, serde_json::Value>,
        }
        serde_json::from_slice::<MetaOnly>(bytes)
            .map(|m| m.meta.contains_key("generator"))
            .unwrap_or(false)
    }

    /// Upstream's schema rules: generator 0–3, digest lists non-empty lowercase hex of 40–128
    /// characters, `log_hash_alg` one of sha1/sha256/sha384/sha512, `dm_policy` null.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if Generator::from_code(self.meta.generator).is_none() {
            return Err(schema(
                "meta.generator",
                format!("{} is not 0 to 3", self.meta.generator),
            ));
        }
        check_digest_map("digests", &self.digests)?;
        check_digest_map("keyrings", &self.keyrings)?;
        check_digest_map("ima-buf", &self.ima_buf)?;
        self.log_hash_alg()?;
        if self.ima.dm_policy.is_some() {
            return Err(schema("ima.dm_policy", "must be null in format v1"));
        }
        Ok(())
    }

    /// H_log from `ima.log_hash_alg`.
    pub fn log_hash_alg(&self) -> Result<HashAlg, PolicyError> {
        match self.ima.log_hash_alg.as_str() {
            "sha1" => Ok(HashAlg::Sha1),
            "sha256" => Ok(HashAlg::Sha256),
            "sha384" => Ok(HashAlg::Sha384),
            "sha512" => Ok(HashAlg::Sha512),
            other => Err(schema(
                "ima.log_hash_alg",
                format!(
                    "{:?} is not sha1, sha256, sha384 or sha512",
                    crate::error::excerpt(other)
                ),
            )),
        }
    }

    /// The generator, `Unknown` for out-of-range codes.
    pub fn generator(&self) -> Generator {
        Generator::from_code(self.meta.generator).unwrap_or(Generator::Unknown)
    }

    /// False for generator ≤ 1: such a policy means "no runtime policy" (no IMA requested).
    pub fn has_runtime_policy(&self) -> bool {
        self.meta.generator > Generator::EmptyAllowList.code()
    }

    /// Serializes as upstream does (compact JSON, upstream key order).
    pub fn to_json(&self) -> String {
        // serializing plain maps, strings and integers cannot fail
        serde_json::to_string(self).unwrap_or_default()
    }
}
