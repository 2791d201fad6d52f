//! Building the `tpm_policy` sent to the verifier from `--tpm_policy` (PROTOCOL.md §8.3,
//! upstream `readPolicy`): PCR keys 0–23, a single value wrapped in a list, values
//! lowercased, PCR 10 (IMA) and 16 (data binding) refused, and `mask` = the OR of the
//! listed PCRs as a Python `hex()` string. Values are checked to be hex digests here so a
//! typo is reported by the tenant instead of failing every quote at the verifier.
//! [`add_to_mask`] widens the mask for a runtime policy (PCR 10) or a measured-boot policy
//! ([`MEASURED_BOOT_PCRS`]).

use serde_json::{Map, Value};

use crate::error::TenantError;

/// PCR used for the payload-key binding.
pub const DATA_PCR: u8 = 16;
/// PCR extended by IMA.
pub const IMA_PCR: u8 = 10;
/// PCRs the measured-boot policy covers (upstream `MEASUREDBOOT_PCRS`).
pub const MEASURED_BOOT_PCRS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];

/// The policy's `mask` as a number (0 when absent or unreadable).
pub fn mask(policy: &Value) -> u32 {
    policy
        .get("mask")
        .and_then(Value::as_str)
        .and_then(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

/// OR `pcrs` into the policy's `mask` (kept as a Python `hex()` string).
pub fn add_to_mask(policy: &mut Value, pcrs: &[u8]) {
    let mut m = mask(policy);
    for pcr in pcrs {
        m |= 1 << pcr;
    }
    if let Some(obj) = policy.as_object_mut() {
        obj.insert("mask".into(), Value::String(format!("{m:#x}")));
    }
}

/// The PCRs the policy lists values for.
pub fn listed_pcrs(policy: &Value) -> Vec<u8> {
    policy
        .as_object()
        .map(|o| o.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

/// The `tpm_policy` object for `--tpm_policy` text (`None` = `{}`).
pub fn build_tpm_policy(text: Option<&str>) -> Result<Value, TenantError> {
    let bad = |m: String| TenantError::Argument(format!("--tpm_policy: {m}"));
    let parsed: Value = match text.map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(t) => serde_json::from_str(t).map_err(|e| bad(format!("not valid JSON: {e}")))?,
    };
    let Value::Object(input) = parsed else {
        return Err(bad("must be a JSON object such as {\"15\": \"00…\"}".into()));
    };
    let mut mask = 0u32;
    let mut policy = Map::new();
    for (key, value) in input {
        let pcr = key
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 23 && key.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad(format!("invalid PCR number {key:?} (0-23)")))?;
        if pcr == DATA_PCR {
            return Err(bad(format!(
                "PCR {pcr} cannot be in a policy: keylime uses it to bind data"
            )));
        }
        if pcr == IMA_PCR {
            return Err(bad(format!(
                "PCR {pcr} cannot be in a policy: it is used for IMA"
            )));
        }
        mask |= 1 << pcr;
        let values = match value {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    other => Err(bad(format!("PCR {pcr}: value {other} is not a string"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(bad(format!(
                    "PCR {pcr}: {other} is neither a digest string nor a list of them"
                )));
            }
        };
        let mut lowered = Vec::with_capacity(values.len());
        for v in values {
            let digits = v.strip_prefix("0x").unwrap_or(&v);
            if digits.is_empty()
                || !digits.len().is_multiple_of(2)
                || !digits.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(bad(format!("PCR {pcr}: {v:?} is not a hex digest")));
            }
            lowered.push(Value::String(v.to_ascii_lowercase()));
        }
        policy.insert(pcr.to_string(), Value::Array(lowered));
    }
    policy.insert("mask".into(), Value::String(format!("{mask:#x}")));
    Ok(Value::Object(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upstream_rules() {
        assert_eq!(build_tpm_policy(None).unwrap(), json!({"mask": "0x0"}));
        let p = build_tpm_policy(Some(r#"{"15": "ABCD", "0": ["00", "0xFF"]}"#)).unwrap();
        assert_eq!(
            p,
            json!({"15": ["abcd"], "0": ["00", "0xff"], "mask": "0x8001"})
        );
        // The verifier's parser accepts what we build.
        let parsed = keylime_attestation::TpmPolicy::from_value(&p).unwrap();
        assert_eq!(parsed.mask(), Some(0x8001));
    }

    #[test]
    fn mask_widening() {
        let mut p = build_tpm_policy(Some(r#"{"23": "00"}"#)).unwrap();
        add_to_mask(&mut p, &[IMA_PCR]);
        assert_eq!(p["mask"], "0x800400");
        add_to_mask(&mut p, &MEASURED_BOOT_PCRS);
        assert_eq!(p["mask"], "0x80ffff");
        assert_eq!(mask(&p), 0x80ffff);
        assert_eq!(listed_pcrs(&p), [23]);
        let mut empty = build_tpm_policy(None).unwrap();
        add_to_mask(&mut empty, &MEASURED_BOOT_PCRS);
        assert_eq!(empty["mask"], "0xfbff");
    }

    #[test]
    fn refusals() {
        for bad in [
            r#"{"16": "00"}"#,
            r#"{"10": "00"}"#,
            r#"{"24": "00"}"#,
            r#"{"mask": "0x1"}"#,
            r#"{"1": 5}"#,
            r#"{"1": "xyz"}"#,
            r#"[1]"#,
            "{",
        ] {
            let err = build_tpm_policy(Some(bad)).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid argument: --tpm_policy"),
                "{bad}: {err}"
            );
        }
    }
}
