//! The static PCR policy `tpm_policy` (PROTOCOL.md §8.3):
//! `{"<pcr>": ["<hex>", …] | "<hex>", …, "mask": "0x…"}`, sent to the verifier as a JSON
//! string.
//!
//! Parsed once into a normalised form: PCR keys 0–23, values lowercase hex without `0x`
//! (so `0xABCD…` and `abcd…` are the same value), a single string treated as a one-element
//! list. Upstream compares the raw strings; normalising only makes equal digests compare
//! equal. A value that is not hex is rejected at parse time (upstream would just never
//! match it), so a bad policy is reported when it is uploaded, not on every quote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Highest PCR index a policy may name.
pub const MAX_POLICY_PCR: u8 = 23;
/// Largest `tpm_policy` text accepted.
pub const MAX_TPM_POLICY_LEN: usize = 256 * 1024;

/// Why a `tpm_policy` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TpmPolicyError {
    #[error("tpm_policy is not valid JSON: {0}")]
    Json(String),
    #[error("tpm_policy of {0} bytes exceeds the limit of {MAX_TPM_POLICY_LEN}")]
    TooLarge(usize),
    #[error("tpm_policy must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("tpm_policy key {0:?} is not a PCR number 0-23 or \"mask\"")]
    BadKey(String),
    #[error("tpm_policy PCR {pcr}: value {value:?} is not a hex digest")]
    BadValue { pcr: u8, value: String },
    #[error("tpm_policy PCR {pcr}: values must be a string or a list of strings")]
    BadValueType { pcr: u8 },
    #[error("tpm_policy mask {0:?} is not a hex bitmap of PCRs 0-23")]
    BadMask(String),
}

/// A parsed `tpm_policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct TpmPolicy {
    pcrs: BTreeMap<u8, Vec<String>>,
    mask: Option<u32>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn normalise_hex(pcr: u8, v: &str) -> Result<String, TpmPolicyError> {
    let t = v.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() || !t.len().is_multiple_of(2) || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TpmPolicyError::BadValue {
            pcr,
            value: v.to_string(),
        });
    }
    Ok(t.to_ascii_lowercase())
}

fn parse_mask(v: &Value) -> Result<u32, TpmPolicyError> {
    let bad = || TpmPolicyError::BadMask(v.to_string());
    let mask = match v {
        Value::String(s) => {
            let t = s.trim();
            let t = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            u32::from_str_radix(t, 16).map_err(|_| bad())?
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if mask >> (u32::from(MAX_POLICY_PCR) + 1) != 0 {
        return Err(bad());
    }
    Ok(mask)
}

impl TpmPolicy {
    /// Parse the JSON text the tenant sends. Empty text means an empty policy.
    pub fn from_json_str(text: &str) -> Result<Self, TpmPolicyError> {
        if text.len() > MAX_TPM_POLICY_LEN {
            return Err(TpmPolicyError::TooLarge(text.len()));
        }
        if text.trim().is_empty() {
            return Ok(TpmPolicy::default());
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| TpmPolicyError::Json(e.to_string()))?;
        TpmPolicy::from_value(&v)
    }

    /// Parse an already-decoded policy object.
    pub fn from_value(v: &Value) -> Result<Self, TpmPolicyError> {
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => return Ok(TpmPolicy::default()),
            other => return Err(TpmPolicyError::NotAnObject(json_kind(other))),
        };
        let mut policy = TpmPolicy::default();
        for (key, val) in obj {
            if key == "mask" {
                policy.mask = Some(parse_mask(val)?);
                continue;
            }
            let pcr = key
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= MAX_POLICY_PCR && !key.starts_with('+'))
                .ok_or_else(|| TpmPolicyError::BadKey(key.clone()))?;
            let values = match val {
                Value::String(s) => vec![normalise_hex(pcr, s)?],
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => normalise_hex(pcr, s),
                        _ => Err(TpmPolicyError::BadValueType { pcr }),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(TpmPolicyError::BadValueType { pcr }),
            };
            policy.pcrs.insert(pcr, values);
        }
        Ok(policy)
    }

    /// A policy from normalised parts (values are normalised again here).
    pub fn new(
        pcrs: impl IntoIterator<Item = (u8, Vec<String>)>,
        mask: Option<u32>,
    ) -> Result<Self, TpmPolicyError> {
        let mut obj = Map::new();
        for (pcr, values) in pcrs {
            obj.insert(pcr.to_string(), Value::from(values));
        }
        if let Some(m) = mask {
            obj.insert("mask".into(), Value::from(format!("{m:#x}")));
        }
        TpmPolicy::from_value(&Value::Object(obj))
    }

    /// The PCRs the policy names, ascending, with their accepted values.
    pub fn pcrs(&self) -> impl Iterator<Item = (u8, &[String])> {
        self.pcrs.iter().map(|(p, v)| (*p, v.as_slice()))
    }

    /// Accepted values of `pcr`, `None` if the policy does not name it.
    pub fn accepted(&self, pcr: u8) -> Option<&[String]> {
        self.pcrs.get(&pcr).map(Vec::as_slice)
    }

    /// The `mask` the verifier sends to the agent (bit n = PCR n), if the policy has one.
    pub fn mask(&self) -> Option<u32> {
        self.mask
    }

    pub fn is_empty(&self) -> bool {
        self.pcrs.is_empty()
    }

    /// Whether `value_hex` (lowercase hex, as in `QuotedPcrs`) is accepted for `pcr`.
    /// `None` when the policy does not name `pcr`.
    pub fn allows(&self, pcr: u8, value_hex: &str) -> Option<bool> {
        self.accepted(pcr)
            .map(|vals| vals.iter().any(|v| v.eq_ignore_ascii_case(value_hex)))
    }

    /// Upstream's JSON form: `{"<pcr>": [...], "mask": "0x…"}`.
    pub fn to_value(&self) -> Value {
        Value::from(self.clone())
    }
}

impl TryFrom<Value> for TpmPolicy {
    type Error = TpmPolicyError;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        TpmPolicy::from_value(&v)
    }
}

impl From<TpmPolicy> for Value {
    fn from(p: TpmPolicy) -> Value {
        let mut obj = Map::new();
        for (pcr, values) in p.pcrs {
            obj.insert(pcr.to_string(), Value::from(values));
        }
        if let Some(m) = p.mask {
            obj.insert("mask".into(), Value::from(format!("{m:#x}")));
        }
        Value::Object(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn parses_upstream_forms() {
        let text = format!(
            r#"{{"15": ["0x{}", "{}"], "7": "{}", "mask": "0x408400"}}"#,
            A.to_uppercase(),
            "00".repeat(32),
            A
        );
        let p = TpmPolicy::from_json_str(&text).unwrap();
        assert_eq!(p.mask(), Some(0x408400));
        assert_eq!(p.accepted(15).unwrap(), &[A.to_string(), "00".repeat(32)]);
        assert_eq!(p.allows(7, A), Some(true));
        assert_eq!(p.allows(7, &"00".repeat(32)), Some(false));
        assert_eq!(p.allows(8, A), None);
        assert_eq!(p.pcrs().map(|(n, _)| n).collect::<Vec<_>>(), vec![7, 15]);
        // Round trip through upstream's JSON shape.
        let back = TpmPolicy::from_value(&p.to_value()).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.to_value()["mask"], "0x408400");
        let via_serde: TpmPolicy =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(via_serde, p);
    }

    #[test]
    fn empty_forms() {
        for t in ["", "  ", "{}", "null"] {
            assert!(TpmPolicy::from_json_str(t).unwrap().is_empty(), "{t:?}");
        }
        let only_mask = TpmPolicy::from_json_str(r#"{"mask": "0x0"}"#).unwrap();
        assert!(only_mask.is_empty());
        assert_eq!(only_mask.mask(), Some(0));
    }

    #[test]
    fn rejects_bad_policies() {
        use TpmPolicyError::*;
        type Check = fn(&TpmPolicyError) -> bool;
        let cases: [(&str, Check); 9] = [
            ("[1]", |e| matches!(e, NotAnObject("an array"))),
            ("{", |e| matches!(e, Json(_))),
            (r#"{"24": "00"}"#, |e| matches!(e, BadKey(k) if k == "24")),
            (r#"{"pcr7": "00"}"#, |e| matches!(e, BadKey(_))),
            (r#"{"7": "xyz"}"#, |e| matches!(e, BadValue { pcr: 7, .. })),
            (r#"{"7": "abc"}"#, |e| matches!(e, BadValue { pcr: 7, .. })),
            (r#"{"7": 5}"#, |e| matches!(e, BadValueType { pcr: 7 })),
            (r#"{"7": [null]}"#, |e| matches!(e, BadValueType { pcr: 7 })),
            (r#"{"mask": "0x1000000"}"#, |e| matches!(e, BadMask(_))),
        ];
        for (text, check) in cases {
            let err = TpmPolicy::from_json_str(text).unwrap_err();
            assert!(check(&err), "{text}: {err:?}");
        }
        let huge = format!("\"{}\"", "a".repeat(MAX_TPM_POLICY_LEN));
        assert!(matches!(
            TpmPolicy::from_json_str(&huge),
            Err(TpmPolicyError::TooLarge(_))
        ));
    }
}
