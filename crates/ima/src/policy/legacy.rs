//! Legacy inputs converted to a format-v1 policy (generator 3, `LegacyAllowList`), as
//! upstream's `convert_runtime_policy` / `keylime-policy create runtime -a/-e` do:
//! a flat allowlist (`<hex>  <path>` per line, `%keyring:<name>` paths going to `keyrings`),
//! or a JSON allowlist (`{"hashes": {path: [hex]}, "keyrings": …, "ima": {…}}`), plus an
//! excludelist (one regular expression per line, `#` comments).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DigestMap, Generator, PolicyError, RuntimePolicy, check_len, schema};

const KEYRING_PREFIX: &str = "%keyring:";

fn push_unique(map: &mut DigestMap, name: &str, digest: String) {
    let list = map.entry(name.to_owned()).or_default();
    if !list.contains(&digest) {
        list.push(digest);
    }
}

/// Lowercases a digest and drops an `algo:` prefix (older allowlists write
/// `sha256:<hex>` for boot_aggregate; the v1 schema wants bare hex).
fn normalize_digest(d: &str) -> String {
    let hex = d.rsplit_once(':').map_or(d, |(_, h)| h);
    hex.to_ascii_lowercase()
}

#[derive(Deserialize)]
struct JsonAllowlist {
    #[serde(default)]
    hashes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    keyrings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    ima: Option<JsonIma>,
}

#[derive(Deserialize)]
struct JsonIma {
    #[serde(default)]
    ignored_keyrings: Vec<String>,
}

fn add_flat(policy: &mut RuntimePolicy, text: &str) -> Result<(), PolicyError> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((digest, path)) = line.split_once(char::is_whitespace) else {
            return Err(schema(
                format!("allowlist line {}", i + 1),
                "expected '<digest> <path>'",
            ));
        };
        let path = path.trim_start();
        let digest = normalize_digest(digest);
        match path.strip_prefix(KEYRING_PREFIX) {
            Some(keyring) => push_unique(&mut policy.keyrings, keyring, digest),
            None => push_unique(&mut policy.digests, path, digest),
        }
    }
    Ok(())
}

/// Builds a v1 policy from a legacy allowlist (flat text or JSON) and an optional
/// excludelist, then applies upstream's schema checks. `timestamp` goes to `meta.timestamp`.
pub fn from_legacy(
    allowlist: &str,
    excludelist: Option<&str>,
    timestamp: Option<String>,
    max_len: usize,
) -> Result<RuntimePolicy, PolicyError> {
    check_len(allowlist.as_bytes(), max_len)?;
    let mut policy = RuntimePolicy::empty();
    policy.meta.generator = Generator::LegacyAllowList.code();
    policy.meta.timestamp = timestamp;
    if allowlist.trim_start().starts_with('{') {
        let json: JsonAllowlist =
            serde_json::from_str(allowlist).map_err(|e| PolicyError::Json(e.to_string()))?;
        for (path, list) in json.hashes {
            for d in list {
                push_unique(&mut policy.digests, &path, normalize_digest(&d));
            }
        }
        for (name, list) in json.keyrings {
            for d in list {
                push_unique(&mut policy.keyrings, &name, normalize_digest(&d));
            }
        }
        if let Some(ima) = json.ima {
            policy.ima.ignored_keyrings = ima.ignored_keyrings;
        }
    } else {
        add_flat(&mut policy, allowlist)?;
    }
    if let Some(ex) = excludelist {
        check_len(ex.as_bytes(), max_len)?;
        policy.excludes = ex
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
    }
    policy.validate()?;
    Ok(policy)
}
