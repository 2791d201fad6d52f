//! The `example` policy's reference state: validation with upstream's rules and
//! compilation into sets and regular expressions the evaluation reads.
//!
//! Shape (keylime/keylime `keylime/mba/elchecking/example.py`):
//! `has_secureboot` (default true), `scrtm_and_bios: [{scrtm: digest, platform_firmware:
//! [digest]}]`, `pk`, `kek`, `db`, `dbx`, `vendor_db` (optional) as lists of
//! `{SignatureOwner, SignatureData: "0x.."}`, `mokdig`, `mokxdig` as lists of digests, and
//! `kernels: [{shim_authcode_sha256, grub_authcode_sha256, kernel_authcode_sha256 |
//! vmlinuz_plain_sha256, initrd_plain_sha256, kernel_cmdline}]`. A digest is a map from
//! algorithm name to `0x` + lowercase hex. Unknown keys are ignored, as upstream does.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use serde_json::{Map, Value};

use super::error::MbPolicyError;
use super::pattern::compile_fullmatch;
use crate::efi::Guid;

/// Entries any one list of the reference state may hold (dbx lists hold a few hundred).
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// Kernel entries (each compiles a regular expression).
pub(crate) const MAX_KERNELS: usize = 1024;

/// One approved digest: algorithm name → value (hex without `0x`).
pub(crate) type Digest = BTreeMap<String, String>;

/// The signatures of a key list. Upstream compares the owner and data as the strings
/// tpm2-tools prints (canonical lowercase GUID, lowercase hex); entries in that form are
/// kept as bytes for lookups, any other spelling can never match and is kept apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    keys: HashMap<Guid, HashSet<Vec<u8>>>,
    /// Entries no log signature can equal, as `(SignatureOwner, SignatureData)`.
    pub unmatchable: Vec<(String, String)>,
}

impl KeySet {
    pub fn contains(&self, owner: Guid, data: &[u8]) -> bool {
        self.keys.get(&owner).is_some_and(|d| d.contains(data))
    }

    /// The matchable entries.
    pub fn iter(&self) -> impl Iterator<Item = (Guid, &[u8])> {
        self.keys
            .iter()
            .flat_map(|(owner, data)| data.iter().map(move |d| (*owner, d.as_slice())))
    }

    fn insert(&mut self, owner: &str, data: &str) {
        match (Guid::parse_canonical(owner), lowercase_hex(data)) {
            (Some(guid), Some(bytes)) => {
                self.keys.entry(guid).or_default().insert(bytes);
            }
            _ => self.unmatchable.push((owner.to_string(), data.to_string())),
        }
    }
}

/// Bytes of even-length lowercase hex; `None` for anything tpm2-tools would never print.
fn lowercase_hex(s: &str) -> Option<Vec<u8>> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok()
}

/// A key database rule: `None` accepts anything (Secure Boot off and no keys given).
pub(crate) type KeyRule = Option<KeySet>;

#[derive(Debug, Clone)]
pub(crate) struct ScrtmAndBios {
    pub scrtm: Digest,
    pub platform_firmware: Vec<Digest>,
}

#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    pub shim: String,
    pub grub: String,
    /// Secure Boot: the kernel's Authenticode digest.
    pub kernel: Option<String>,
    /// No Secure Boot: the plain digest of vmlinuz grub measured in PCR 9.
    pub vmlinuz: Option<String>,
    pub initrd: String,
    pub cmdline: Regex,
}

#[derive(Debug, Clone)]
pub(crate) struct ExampleRefState {
    pub has_secureboot: bool,
    pub scrtm_and_bios: Vec<ScrtmAndBios>,
    pub pk: KeyRule,
    pub kek: KeyRule,
    pub db: KeyRule,
    pub vendor_db: KeyRule,
    /// dbx must contain at least these (superset), unless `None`.
    pub dbx: KeyRule,
    pub mokdig: Vec<Digest>,
    pub mokxdig: Vec<Digest>,
    pub kernels: Vec<Kernel>,
}

fn invalid(at: impl Into<String>, reason: impl Into<String>) -> MbPolicyError {
    MbPolicyError::InvalidRefState {
        at: at.into(),
        reason: reason.into(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn list<'v>(v: &'v Value, at: &str, max: usize) -> Result<&'v Vec<Value>, MbPolicyError> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid(at, format!("is {} rather than a list", kind(v))))?;
    if items.len() > max {
        return Err(MbPolicyError::TooLarge {
            at: at.into(),
            count: items.len(),
            max,
        });
    }
    Ok(items)
}

fn object<'v>(v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, MbPolicyError> {
    v.as_object()
        .ok_or_else(|| invalid(at, format!("is {} rather than an object", kind(v))))
}

fn field<'v>(m: &'v Map<String, Value>, key: &str, at: &str) -> Result<&'v Value, MbPolicyError> {
    m.get(key)
        .ok_or_else(|| invalid(at, format!("lacks field {key:?}")))
}

/// `0x` followed by lowercase hex digits; the digits are returned.
fn hex_value(v: &Value, at: &str) -> Result<String, MbPolicyError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(at, format!("is {} rather than a 0x-hex string", kind(v))))?;
    match s.strip_prefix("0x") {
        Some(digits)
            if !digits.is_empty()
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(digits.to_string())
        }
        _ => Err(invalid(
            at,
            format!("{s:?} is not 0x followed by some lowercase hex digits"),
        )),
    }
}

fn digest(v: &Value, at: &str) -> Result<Digest, MbPolicyError> {
    object(v, at)?
        .iter()
        .map(|(alg, value)| Ok((alg.clone(), hex_value(value, &format!("{at}[{alg:?}]"))?)))
        .collect()
}

fn digests(v: &Value, at: &str) -> Result<Vec<Digest>, MbPolicyError> {
    list(v, at, MAX_ENTRIES)?
        .iter()
        .enumerate()
        .map(|(i, d)| digest(d, &format!("{at}[{i}]")))
        .collect()
}

/// A key list; with Secure Boot off, an empty (falsy) list accepts any keys.
fn key_rule(v: &Value, at: &str, has_secureboot: bool) -> Result<KeyRule, MbPolicyError> {
    if !has_secureboot && !truthy(v) {
        return Ok(None);
    }
    // Upstream iterates anything iterable: an empty string or object is an empty list.
    if matches!(v, Value::String(s) if s.is_empty())
        || matches!(v, Value::Object(o) if o.is_empty())
    {
        return Ok(Some(KeySet::default()));
    }
    let mut keys = KeySet::default();
    for (i, k) in list(v, at, MAX_ENTRIES)?.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let k = object(k, &at)?;
        let owner = field(k, "SignatureOwner", &at)?;
        let data = field(k, "SignatureData", &at)?;
        let (Some(owner), Some(data)) = (owner.as_str(), data.as_str()) else {
            return Err(invalid(
                at,
                "SignatureOwner and SignatureData must be strings",
            ));
        };
        let Some(data) = data.strip_prefix("0x") else {
            return Err(invalid(
                at,
                format!("SignatureData {data:?} does not start with 0x"),
            ));
        };
        keys.insert(owner, data);
    }
    Ok(Some(keys))
}

fn kernel(v: &Value, at: &str, has_secureboot: bool) -> Result<Kernel, MbPolicyError> {
    let k = object(v, at)?;
    let hex_field = |key: &str| hex_value(field(k, key, at)?, &format!("{at}[{key:?}]"));
    let cmdline = field(k, "kernel_cmdline", at)?;
    let cmdline_at = format!("{at}[\"kernel_cmdline\"]");
    let pattern = cmdline.as_str().ok_or_else(|| {
        invalid(
            &cmdline_at,
            format!("is {} rather than a string", kind(cmdline)),
        )
    })?;
    let cmdline = compile_fullmatch("kernel_cmdline: ", pattern, false).map_err(|reason| {
        MbPolicyError::BadRegex {
            at: cmdline_at,
            pattern: pattern.chars().take(200).collect(),
            reason,
        }
    })?;
    Ok(Kernel {
        shim: hex_field("shim_authcode_sha256")?,
        grub: hex_field("grub_authcode_sha256")?,
        kernel: if has_secureboot {
            Some(hex_field("kernel_authcode_sha256")?)
        } else {
            None
        },
        vmlinuz: if has_secureboot {
            None
        } else {
            Some(hex_field("vmlinuz_plain_sha256")?)
        },
        initrd: hex_field("initrd_plain_sha256")?,
        cmdline,
    })
}

impl ExampleRefState {
    /// Validate `refstate` as upstream's `example` policy does and compile it.
    pub fn compile(refstate: &Value) -> Result<ExampleRefState, MbPolicyError> {
        let root = object(refstate, "refstate")?;
        let has_secureboot = root.get("has_secureboot").is_none_or(truthy);

        let kernels_v = root
            .get("kernels")
            .ok_or_else(|| invalid("refstate['kernels']", "is missing"))?;
        let kernels = list(kernels_v, "refstate['kernels']", MAX_KERNELS)?
            .iter()
            .enumerate()
            .map(|(i, k)| kernel(k, &format!("refstate['kernels'][{i}]"), has_secureboot))
            .collect::<Result<Vec<_>, _>>()?;

        let sab_v = root
            .get("scrtm_and_bios")
            .ok_or_else(|| invalid("refstate['scrtm_and_bios']", "is missing"))?;
        let scrtm_and_bios = list(sab_v, "refstate['scrtm_and_bios']", MAX_ENTRIES)?
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let at = format!("refstate['scrtm_and_bios'][{i}]");
                let m = object(entry, &at)?;
                Ok(ScrtmAndBios {
                    scrtm: digest(field(m, "scrtm", &at)?, &format!("{at}['scrtm']"))?,
                    platform_firmware: digests(
                        field(m, "platform_firmware", &at)?,
                        &format!("{at}['platform_firmware']"),
                    )?,
                })
            })
            .collect::<Result<Vec<_>, MbPolicyError>>()?;

        for required in ["pk", "kek", "db", "dbx", "mokdig", "mokxdig"] {
            if !root.contains_key(required) {
                return Err(invalid("refstate", format!("lacks {required}")));
            }
        }
        let keys = |key: &str| {
            let empty = Value::Array(Vec::new());
            let v = root.get(key).unwrap_or(&empty);
            key_rule(v, &format!("refstate['{key}']"), has_secureboot)
        };
        Ok(ExampleRefState {
            has_secureboot,
            scrtm_and_bios,
            pk: keys("pk")?,
            kek: keys("kek")?,
            db: keys("db")?,
            vendor_db: keys("vendor_db")?,
            dbx: keys("dbx")?,
            mokdig: digests(&root["mokdig"], "refstate['mokdig']")?,
            mokxdig: digests(&root["mokxdig"], "refstate['mokxdig']")?,
            kernels,
        })
    }
}

/// Python truthiness of a JSON value, which is how upstream decides "no reference state".
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
