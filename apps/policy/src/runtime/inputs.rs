//! The plain-text inputs of `create runtime`: a flat allowlist (`<digest> <path>` per line,
//! as `sha256sum` prints), an exclude list (one regular expression per line) and a base
//! policy whose digests, excludes, keyrings, ima-buf entries, IMA settings and verification
//! keys are carried over (meta and release are not).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use keylime_ima::policy::{DigestMap, ImaSection, RuntimePolicy};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::digest_alg::Guess;
use super::verification_keys::ImaKeyring;

/// Digests of a flat allowlist, and the algorithm of its first digest. Lines that are not
/// `<digest> <path>` are skipped, as upstream does; spaces in paths become `_` as in IMA logs.
pub fn flat_allowlist(text: &str) -> (DigestMap, Option<Guess>) {
    let mut map = DigestMap::new();
    let mut first = None;
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
        first.get_or_insert_with(|| Guess::from_hex(digest));
        map.entry(path).or_default().push(digest.to_owned());
    }
    (map, first)
}

/// The regular expressions of an exclude list; a rule that does not compile is an error
/// naming its line.
pub fn exclude_list(path: &Path, text: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Err(e) = regex::Regex::new(line) {
            anyhow::bail!(
                "{} line {}: bad IMA exclude list rule '{line}': {e}",
                path.display(),
                i + 1
            );
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

/// A base policy imported into the current format, and the algorithm of its first digest.
pub fn base_policy(path: &Path, bytes: &[u8]) -> anyhow::Result<(RuntimePolicy, Option<Guess>)> {
    let file: BasePolicyFile = serde_json::from_slice(bytes).with_context(|| {
        format!(
            "the base policy {} is not a JSON runtime policy",
            path.display()
        )
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
        ImaKeyring::parse(&file.verification_keys).with_context(|| {
            format!(
                "the base policy {} has invalid verification-keys",
                path.display()
            )
        })?;
    }
    policy.verification_keys = file.verification_keys;
    policy.validate().with_context(|| {
        format!(
            "the base policy {} cannot be converted to a valid runtime policy",
            path.display()
        )
    })?;
    Ok((policy, guess))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::digest_alg::DigestAlg;

    #[test]
    fn allowlist_lines() {
        let (map, first) =
            flat_allowlist("checksum file oops\n#\nchecksum-2\nchecksum-3 foo bar file 01\n\n  \n");
        assert_eq!(map.len(), 2);
        assert_eq!(map["foo_bar_file_01"], vec!["checksum-3"]);
        assert_eq!(first, Some(Guess::Invalid));
        let (map, first) = flat_allowlist(&format!("{}  /bin/sh\n", "a".repeat(40)));
        assert_eq!(map["/bin/sh"].len(), 1);
        assert_eq!(first, Some(Guess::Known(DigestAlg::Sha1)));
    }

    #[test]
    fn exclude_rules_must_compile() {
        let p = Path::new("ex");
        assert_eq!(
            exclude_list(p, "boot_aggregate\nboot.aggreg*$\n\nfoobar.so(.*)?\n").unwrap(),
            vec!["boot_aggregate", "boot.aggreg*$", "foobar.so(.*)?"]
        );
        let err = exclude_list(p, "ok\n*\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("'*'"), "{err}");
    }

    #[test]
    fn base_policy_import() {
        let p = Path::new("base");
        let (pol, guess) = base_policy(p, br#"{"valid": "json", "invalid": "policy"}"#).unwrap();
        assert_eq!(pol, RuntimePolicy::empty());
        assert_eq!(guess, None);
        assert!(base_policy(p, b"not-valid-json").is_err());
        assert!(base_policy(p, br#"{"verification-keys": "invalid"}"#).is_err());
        assert!(base_policy(p, br#"{"digests": {"/a": ["XYZ"]}}"#).is_err());
        let (pol, guess) = base_policy(
            p,
            format!(
                r#"{{"digests": {{"/z": ["{}"], "/a": ["{}"]}}}}"#,
                "1".repeat(40),
                "2".repeat(96)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(guess, Some(Guess::Known(DigestAlg::Sha1)));
        assert_eq!(pol.digests.len(), 2);
    }
}
