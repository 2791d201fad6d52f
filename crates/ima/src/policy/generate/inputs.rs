//! The plain-text inputs of a new runtime policy: a flat allowlist (`<digest> <path>` per
//! line, as `sha256sum` prints), an exclude list (one regular expression per line) and a base
//! policy whose digests, excludes, keyrings, ima-buf entries, IMA settings and verification
//! keys are carried over (meta and release are not).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::digest_alg::Guess;
use super::error::GenerateError;
use super::keyring::ImaKeyring;
use crate::policy::{DigestMap, ImaSection, RuntimePolicy};

/// The digests of a flat allowlist.
#[derive(Debug, Default)]
pub struct FlatAllowlist {
    pub digests: DigestMap,
    /// The algorithm its first digest's length implies.
    pub guess: Option<Guess>,
}

/// Reads a flat allowlist. Lines that are not `<digest> <path>` are skipped, as upstream
/// does; spaces in paths become `_` as in IMA logs.
pub fn flat_allowlist(text: &str) -> FlatAllowlist {
    let mut out = FlatAllowlist::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((digest, path)) = line.split_once(char::is_whitespace) else {
            tracing::debug!(line = i + 1, "allowlist line without a path skipped");
            continue;
        };
        let path = path.trim_start().replace(' ', "_");
        out.guess.get_or_insert_with(|| Guess::from_hex(digest));
        out.digests.entry(path).or_default().push(digest.to_owned());
    }
    out
}

/// The regular expressions of the exclude list `text` (named `source` in errors); a rule
/// that does not compile is an error naming its line.
pub fn exclude_list(source: &str, text: &str) -> Result<Vec<String>, GenerateError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Err(e) = regex::Regex::new(line) {
            return Err(GenerateError::ExcludeRule {
                source_name: source.to_owned(),
                line: i + 1,
                rule: line.to_owned(),
                problem: e.to_string(),
            });
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

/// `digests` in document order, so the first digest (which decides the algorithm upstream)
/// is the first one written.
#[derive(Default)]
struct OrderedDigests(Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for OrderedDigests {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedDigests;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of digest lists")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Vec<String>>()? {
                    out.push(entry);
                }
                Ok(OrderedDigests(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize, Default)]
struct BaseIma {
    #[serde(default)]
    ignored_keyrings: Vec<String>,
    #[serde(default)]
    log_hash_alg: Option<String>,
}

#[derive(Deserialize)]
struct BasePolicyFile {
    #[serde(default)]
    digests: OrderedDigests,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    keyrings: DigestMap,
    #[serde(default, rename = "ima-buf")]
    ima_buf: DigestMap,
    #[serde(default)]
    ima: BaseIma,
    #[serde(default, rename = "verification-keys")]
    verification_keys: String,
}

/// A base policy imported into the current format.
#[derive(Debug)]
pub struct BasePolicy {
    pub policy: RuntimePolicy,
    /// The algorithm its first digest's length implies.
    pub guess: Option<Guess>,
}

/// Reads the base policy `bytes` (named `source` in errors).
pub fn base_policy(source: &str, bytes: &[u8]) -> Result<BasePolicy, GenerateError> {
    let file: BasePolicyFile =
        serde_json::from_slice(bytes).map_err(|error| GenerateError::BaseNotJson {
            source_name: source.to_owned(),
            error,
        })?;
    let guess = file
        .digests
        .0
        .first()
        .and_then(|(_, list)| list.first())
        .map(|d| Guess::from_hex(d));
    let mut policy = RuntimePolicy::empty();
    let mut digests: DigestMap = BTreeMap::new();
    for (name, list) in file.digests.0 {
        digests.entry(name).or_default().extend(list);
    }
    policy.digests = digests;
    policy.excludes = file.excludes;
    policy.keyrings = file.keyrings;
    policy.ima_buf = file.ima_buf;
    policy.ima = ImaSection {
        ignored_keyrings: file.ima.ignored_keyrings,
        log_hash_alg: file.ima.log_hash_alg.unwrap_or_else(|| "sha1".into()),
        dm_policy: None,
    };
    if !file.verification_keys.is_empty() {
        ImaKeyring::parse(&file.verification_keys).map_err(|e| GenerateError::BaseKeys {
            source_name: source.to_owned(),
            problem: e.to_string(),
        })?;
    }
    policy.verification_keys = file.verification_keys;
    policy
        .validate()
        .map_err(|error| GenerateError::BaseInvalid {
            source_name: source.to_owned(),
            error,
        })?;
    Ok(BasePolicy { policy, guess })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::generate::DigestAlg;

    #[test]
    fn allowlist_lines() {
        let list =
            flat_allowlist("checksum file oops\n#\nchecksum-2\nchecksum-3 foo bar file 01\n\n  \n");
        assert_eq!(list.digests.len(), 2);
        assert_eq!(list.digests["foo_bar_file_01"], vec!["checksum-3"]);
        assert_eq!(list.guess, Some(Guess::Invalid));
        let list = flat_allowlist(&format!("{}  /bin/sh\n", "a".repeat(40)));
        assert_eq!(list.digests["/bin/sh"].len(), 1);
        assert_eq!(list.guess, Some(Guess::Known(DigestAlg::Sha1)));
    }

    #[test]
    fn exclude_rules_must_compile() {
        assert_eq!(
            exclude_list("ex", "boot_aggregate\nboot.aggreg*$\n\nfoobar.so(.*)?\n").unwrap(),
            vec!["boot_aggregate", "boot.aggreg*$", "foobar.so(.*)?"]
        );
        let err = exclude_list("ex", "ok\n*\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("'*'"), "{err}");
    }

    #[test]
    fn base_policy_import() {
        let base = base_policy("base", br#"{"valid": "json", "invalid": "policy"}"#).unwrap();
        assert_eq!(base.policy, RuntimePolicy::empty());
        assert_eq!(base.guess, None);
        assert!(base_policy("base", b"not-valid-json").is_err());
        assert!(base_policy("base", br#"{"verification-keys": "invalid"}"#).is_err());
        assert!(base_policy("base", br#"{"digests": {"/a": ["XYZ"]}}"#).is_err());
        let base = base_policy(
            "base",
            format!(
                r#"{{"digests": {{"/z": ["{}"], "/a": ["{}"]}}}}"#,
                "1".repeat(40),
                "2".repeat(96)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(base.guess, Some(Guess::Known(DigestAlg::Sha1)));
        assert_eq!(base.policy.digests.len(), 2);
    }
}
