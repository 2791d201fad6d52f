//! What the policy options of `add`, `update` and the policy commands turn into (upstream
//! `process_policy`, PROTOCOL.md §5.2, §8.2, §8.3): the `tpm_policy` with its mask widened
//! for IMA (PCR 10) when a runtime policy or its name is given and for measured boot (PCRs
//! 0–9, 11–15) when a measured-boot policy or its name is given; the runtime policy file
//! checked here before it is sent (JSON, the DSSE signature with `--runtime-policy-sig-key`,
//! upstream's v1 schema, the optional SHA-256 checksum) or a legacy allowlist and
//! excludelist converted to a v1 policy; and the measured-boot policy file as `json.dumps`
//! text. Nothing here talks to a peer.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use keylime_api::encode_b64;
use keylime_ima::policy::{DEFAULT_MAX_POLICY_LEN, DsseKey, PolicyDocument, from_legacy};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::TenantError;
use crate::policy::{self, IMA_PCR, MEASURED_BOOT_PCRS};
use crate::pyjson::{self, PyValue};

/// Largest signature key file read.
const MAX_KEY_LEN: usize = 1 << 20;

/// The policy options of one command (upstream's argparse names in the field docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// `--tpm_policy` JSON text.
    pub tpm_policy: Option<String>,
    /// `--runtime-policy FILE`: a v1 policy or a DSSE envelope holding one.
    pub runtime_policy: Option<PathBuf>,
    /// `--runtime-policy-checksum`: SHA-256 (hex) the file must have.
    pub runtime_policy_checksum: Option<String>,
    /// `--runtime-policy-sig-key FILE`: EC public key (PEM) the DSSE signature must verify
    /// with; sent to the verifier as `runtime_policy_key`.
    pub runtime_policy_sig_key: Option<PathBuf>,
    /// `--runtime-policy-name` (or the deprecated `--allowlist-name`).
    pub runtime_policy_name: Option<String>,
    /// Deprecated `--allowlist FILE`: a legacy allowlist converted to a v1 policy.
    pub allowlist: Option<PathBuf>,
    /// Deprecated `--exclude FILE`: a legacy excludelist for `--allowlist`.
    pub exclude: Option<PathBuf>,
    /// `--mb-policy FILE` (alias `--mb_refstate`): a measured-boot reference state (JSON).
    pub mb_policy: Option<PathBuf>,
    /// `--mb-policy-name`.
    pub mb_policy_name: Option<String>,
}

/// The fields the verifier receives, as upstream's tenant fills them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPolicies {
    /// The PCR policy including `mask`.
    pub tpm_policy: Value,
    /// b64 of the runtime policy file (or of the converted allowlist); `""` for none.
    pub runtime_policy: String,
    /// b64 of the signature key file; `""` for none.
    pub runtime_policy_key: String,
    /// `""` for none.
    pub runtime_policy_name: String,
    /// The measured-boot policy as `json.dumps` text, or none.
    pub mb_policy: Option<String>,
    /// `""` for none.
    pub mb_policy_name: String,
}

impl ResolvedPolicies {
    /// `tpm_policy` as the JSON text upstream sends (`json.dumps`).
    pub fn tpm_policy_text(&self) -> String {
        pyjson::python_dumps(&self.tpm_policy)
    }
}

impl PolicyOptions {
    /// Upstream's option rules that are usage errors (exit status 2).
    pub fn check_combination(&self) -> Result<(), TenantError> {
        if self.exclude.is_some() && self.allowlist.is_none() {
            return Err(TenantError::Argument(
                "--exclude cannot be used without an --allowlist".into(),
            ));
        }
        if self.runtime_policy_checksum.is_some() && self.runtime_policy.is_none() {
            return Err(TenantError::Argument(
                "--runtime-policy-checksum must have --runtime-policy".into(),
            ));
        }
        Ok(())
    }

    /// Reads and checks every file named and builds what the verifier receives.
    pub fn resolve(&self) -> Result<ResolvedPolicies, TenantError> {
        self.check_combination()?;
        let mut tpm_policy = policy::build_tpm_policy(self.tpm_policy.as_deref())?;
        tracing::info!(mask = %tpm_policy["mask"], "TPM PCR mask from the policy");
        let mut runtime_policy = String::new();
        let mut runtime_policy_key = String::new();

        if let Some(allowlist) = &self.allowlist {
            tracing::warn!(
                "--allowlist is deprecated: convert legacy allowlists and excludelists to a runtime policy and use --runtime-policy"
            );
            policy::add_to_mask(&mut tpm_policy, &[IMA_PCR]);
            let converted = convert_legacy(allowlist, self.exclude.as_deref())?;
            runtime_policy = encode_b64(&converted);
        }
        if self.exclude.is_some() {
            tracing::warn!("--exclude is deprecated: put the exclusions into the runtime policy");
        }
        if let Some(path) = &self.runtime_policy {
            if self.allowlist.is_some() {
                tracing::warn!(
                    "both --allowlist and --runtime-policy given: using --runtime-policy"
                );
            }
            policy::add_to_mask(&mut tpm_policy, &[IMA_PCR]);
            let (bytes, key) = load_runtime_policy(
                path,
                self.runtime_policy_checksum.as_deref(),
                self.runtime_policy_sig_key.as_deref(),
            )?;
            runtime_policy = encode_b64(&bytes);
            runtime_policy_key = encode_b64(&key);
        }
        let runtime_policy_name = match &self.runtime_policy_name {
            Some(name) => {
                policy::add_to_mask(&mut tpm_policy, &[IMA_PCR]);
                name.clone()
            }
            None => String::new(),
        };

        let mut mb_policy = None;
        if let Some(path) = &self.mb_policy {
            if let Some(pcr) = policy::listed_pcrs(&tpm_policy)
                .into_iter()
                .find(|p| MEASURED_BOOT_PCRS.contains(p))
            {
                return Err(TenantError::Policy(format!(
                    "PCR {pcr} is specified in \"tpm_policy\", but will in fact be used by measured boot. Please remove it from policy"
                )));
            }
            policy::add_to_mask(&mut tpm_policy, &MEASURED_BOOT_PCRS);
            tracing::info!(mask = %tpm_policy["mask"], "TPM PCR mask widened for measured boot");
            mb_policy = Some(load_mb_policy(path)?);
        }
        let mb_policy_name = match &self.mb_policy_name {
            Some(name) => {
                policy::add_to_mask(&mut tpm_policy, &MEASURED_BOOT_PCRS);
                name.clone()
            }
            None => String::new(),
        };
        Ok(ResolvedPolicies {
            tpm_policy,
            runtime_policy,
            runtime_policy_key,
            runtime_policy_name,
            mb_policy,
            mb_policy_name,
        })
    }
}

/// Reads at most `max` bytes of `path`; a longer file is refused.
fn read_limited(path: &Path, max: usize, what: &str) -> Result<Vec<u8>, TenantError> {
    let file = std::fs::File::open(path).map_err(|e| TenantError::file(path, e))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TenantError::file(path, e))?;
    if bytes.len() > max {
        return Err(TenantError::Policy(format!(
            "{what} {} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Python's truthiness of a JSON member (upstream detects envelopes by a truthy `payload`).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}

/// The runtime policy file and the key file, checked as upstream's tenant does before
/// sending (plus the v1 schema the verifier would apply).
fn load_runtime_policy(
    path: &Path,
    checksum: Option<&str>,
    key_file: Option<&Path>,
) -> Result<(Vec<u8>, Vec<u8>), TenantError> {
    let bytes = read_limited(path, DEFAULT_MAX_POLICY_LEN, "runtime policy")?;
    let fail = |m: String| {
        TenantError::Policy(format!(
            "validation of runtime policy {} failed: {m}",
            path.display()
        ))
    };
    let key = match key_file {
        Some(k) => read_limited(k, MAX_KEY_LEN, "runtime policy signature key")?,
        None => Vec::new(),
    };
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let signed = truthy(json.get("payload"));
    if (signed || key_file.is_some()) && key.is_empty() {
        return Err(fail(
            "signature verification required but no key was given (--runtime-policy-sig-key)"
                .into(),
        ));
    }
    if signed {
        // The signature first, as upstream: a policy with a bad signature is reported as
        // such even when its content is also invalid.
        let Ok(PolicyDocument::Dsse { envelope, .. }) =
            PolicyDocument::parse(&bytes, DEFAULT_MAX_POLICY_LEN, false)
        else {
            return Err(fail("the DSSE envelope is malformed".into()));
        };
        let key_text = std::str::from_utf8(&key)
            .map_err(|_| fail("the signature key is not PEM text".into()))?;
        let key = DsseKey::from_pem(key_text).map_err(|e| fail(e.to_string()))?;
        keylime_ima::policy::verify(&envelope, std::slice::from_ref(&key))
            .map_err(|e| fail(format!("DSSE signature verification failed: {e}")))?;
        tracing::info!(policy = %path.display(), "runtime policy passed DSSE signature verification");
    } else if key_file.is_some() {
        return Err(fail(
            "the policy is not signed (no DSSE envelope) but --runtime-policy-sig-key was given"
                .into(),
        ));
    }
    PolicyDocument::parse(&bytes, DEFAULT_MAX_POLICY_LEN, true).map_err(|e| fail(e.to_string()))?;
    let calculated = hex::encode(Sha256::digest(&bytes));
    tracing::debug!(policy = %path.display(), checksum = %calculated, "runtime policy loaded");
    if let Some(expected) = checksum
        && !expected.trim().eq_ignore_ascii_case(&calculated)
    {
        return Err(TenantError::Policy(format!(
            "checksum of runtime policy {} does not match: expected {expected}, calculated {calculated}",
            path.display()
        )));
    }
    Ok((bytes, key))
}

/// A legacy allowlist (flat `<digest> <path>` lines or JSON `{"hashes": …}`) and optional
/// excludelist as a v1 policy in `json.dumps` form.
fn convert_legacy(allowlist: &Path, exclude: Option<&Path>) -> Result<Vec<u8>, TenantError> {
    let text = read_text(allowlist, "allowlist")?;
    if let Ok(json) = serde_json::from_str::<Value>(&text)
        && !truthy(json.get("hashes"))
    {
        let why = if truthy(json.get("digests")) {
            "is already a runtime policy: pass it with --runtime-policy"
        } else {
            "does not contain a valid digest list (\"hashes\")"
        };
        return Err(TenantError::Policy(format!(
            "allowlist {} {why}",
            allowlist.display()
        )));
    }
    let excludes = match exclude {
        Some(p) => Some(read_text(p, "excludelist")?),
        None => None,
    };
    let policy = from_legacy(
        &text,
        excludes.as_deref(),
        Some(python_now()),
        DEFAULT_MAX_POLICY_LEN,
    )
    .map_err(|e| {
        TenantError::Policy(format!(
            "converting allowlist {} failed: {e}",
            allowlist.display()
        ))
    })?;
    Ok(pyjson::dumps(&policy).into_bytes())
}

fn read_text(path: &Path, what: &str) -> Result<String, TenantError> {
    let bytes = read_limited(path, DEFAULT_MAX_POLICY_LEN, what)?;
    String::from_utf8(bytes)
        .map_err(|e| TenantError::Policy(format!("{what} {} is not UTF-8: {e}", path.display())))
}

/// The measured-boot policy file re-serialised by `json.dumps` (key order kept).
fn load_mb_policy(path: &Path) -> Result<String, TenantError> {
    let bytes = read_limited(path, DEFAULT_MAX_POLICY_LEN, "measured boot policy")?;
    let doc = PyValue::parse(&bytes).map_err(|e| {
        TenantError::Policy(format!(
            "measured boot policy {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    Ok(doc.dumps())
}

/// The current time as Python's `str(datetime.now())` writes it (UTC here):
/// `2024-05-01 12:34:56.123456`.
fn python_now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    python_timestamp(since.as_secs(), since.subsec_micros())
}

fn python_timestamp(secs: u64, micros: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn data(path: &str) -> PathBuf {
        keylime_testkit::testdata(path)
    }

    fn decode(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    #[test]
    fn nothing_given_is_upstreams_empty_request() {
        let r = PolicyOptions::default().resolve().unwrap();
        assert_eq!(r.tpm_policy, serde_json::json!({"mask": "0x0"}));
        assert_eq!(r.tpm_policy_text(), r#"{"mask": "0x0"}"#);
        assert_eq!(
            (
                r.runtime_policy.as_str(),
                r.runtime_policy_key.as_str(),
                r.runtime_policy_name.as_str(),
                r.mb_policy.as_deref(),
                r.mb_policy_name.as_str()
            ),
            ("", "", "", None, "")
        );
    }

    #[test]
    fn runtime_policy_file_is_sent_verbatim_and_enables_ima() {
        let file = data("policy/keylime/sign-runtime-policy/runtime-policy.json");
        let r = PolicyOptions {
            runtime_policy: Some(file.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(decode(&r.runtime_policy), std::fs::read(&file).unwrap());
        assert_eq!(r.runtime_policy_key, "");
        assert_eq!(r.tpm_policy["mask"], "0x400");

        // A name alone also enables IMA.
        let r = PolicyOptions {
            tpm_policy: Some(r#"{"15": "00"}"#.into()),
            runtime_policy_name: Some("p1".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(r.tpm_policy["mask"], "0x8400");
        assert_eq!(r.runtime_policy_name, "p1");
        assert_eq!(r.runtime_policy, "");
    }

    #[test]
    fn checksum_is_checked() {
        let file = data("policy/keylime/sign-runtime-policy/runtime-policy.json");
        let sum = hex::encode(Sha256::digest(std::fs::read(&file).unwrap()));
        let opts = |c: &str| PolicyOptions {
            runtime_policy: Some(file.clone()),
            runtime_policy_checksum: Some(c.into()),
            ..Default::default()
        };
        opts(&sum).resolve().unwrap();
        opts(&sum.to_uppercase()).resolve().unwrap();
        let err = opts(&"0".repeat(64)).resolve().unwrap_err();
        assert!(
            err.to_string().contains("checksum of runtime policy"),
            "{err}"
        );
    }

    #[test]
    fn invalid_policies_are_refused_locally() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let cases = [
            (write("garbage", b"\x00\xffnot json"), "not valid JSON"),
            (write("empty", b""), "not valid JSON"),
            (write("array", b"[1, 2]"), "runtime policy"),
            (
                write(
                    "bad-digest",
                    br#"{"meta": {"version": 1, "generator": 3}, "release": 0, "digests": {"/a": ["XYZ"]}, "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {}, "verification-keys": ""}"#,
                ),
                "digests",
            ),
            (
                data("policy/keylime/sign-runtime-policy/runtime-policy-bogus.json"),
                "not valid JSON",
            ),
            // Upstream's unit-test fixture lacks "release", which the v1 schema requires.
            (
                data("policy/keylime-unit-tests/runtime_policy_test.json"),
                "release",
            ),
        ];
        for (path, want) in cases {
            let err = PolicyOptions {
                runtime_policy: Some(path.clone()),
                ..Default::default()
            }
            .resolve()
            .unwrap_err();
            assert!(matches!(err, TenantError::Policy(_)), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("validation of runtime policy") && text.contains(want),
                "{}: {text}",
                path.display()
            );
        }
        let err = PolicyOptions {
            runtime_policy: Some(dir.path().join("missing")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, TenantError::File { .. }), "{err}");
    }

    #[test]
    fn signatures_follow_upstreams_rules() {
        let signed = data("policy/keylime/runtime-policy-test-signed.json");
        let key = data("policy/keylime/runtime-policy-pubkey.pub");
        let plain = data("policy/keylime/sign-runtime-policy/runtime-policy.json");
        let run = |policy: &PathBuf, key: Option<&PathBuf>| {
            PolicyOptions {
                runtime_policy: Some(policy.clone()),
                runtime_policy_sig_key: key.cloned(),
                ..Default::default()
            }
            .resolve()
        };
        let err = run(&signed, None).unwrap_err().to_string();
        assert!(err.contains("no key was given"), "{err}");
        let err = run(&plain, Some(&key)).unwrap_err().to_string();
        assert!(err.contains("not signed"), "{err}");
        // Upstream's signed sample verifies, but its payload has "sha256:"-prefixed digests,
        // which the v1 schema (and so the verifier) refuses.
        let err = run(&signed, Some(&key)).unwrap_err().to_string();
        assert!(
            !err.contains("DSSE signature") && err.contains("boot_aggregate"),
            "{err}"
        );
        // Its corrupted-signature twin fails on the signature.
        let bad = data("policy/keylime/runtime-policy-test-signed-bad.json");
        let err = run(&bad, Some(&key)).unwrap_err().to_string();
        assert!(err.contains("DSSE signature verification failed"), "{err}");
        // Another key does not verify it; a key that is not PEM is refused.
        let other = data("policy/keylime/sign-runtime-policy/ec-p521-public.pem");
        let err = run(&signed, Some(&other)).unwrap_err().to_string();
        assert!(err.contains("DSSE signature verification failed"), "{err}");
        let err = run(&signed, Some(&plain)).unwrap_err().to_string();
        assert!(err.contains("validation of runtime policy"), "{err}");
    }

    #[test]
    fn signed_policy_is_sent_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let policy = std::fs::read(data(
            "policy/keylime/sign-runtime-policy/runtime-policy.json",
        ))
        .unwrap();
        let private = std::fs::read_to_string(data(
            "policy/keylime/sign-runtime-policy/ec-p521-private.pem",
        ))
        .unwrap();
        let signer = keylime_ima::policy::EcdsaSigningKey::from_pem(&private).unwrap();
        let envelope = keylime_ima::policy::sign_ecdsa(
            &policy,
            keylime_ima::policy::KEYLIME_PAYLOAD_TYPE,
            &signer,
        )
        .unwrap();
        let env_path = dir.path().join("signed.json");
        std::fs::write(&env_path, serde_json::to_vec(&envelope).unwrap()).unwrap();
        let key_path = data("policy/keylime/sign-runtime-policy/ec-p521-public.pem");
        let r = PolicyOptions {
            runtime_policy: Some(env_path.clone()),
            runtime_policy_sig_key: Some(key_path.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(decode(&r.runtime_policy), std::fs::read(&env_path).unwrap());
        assert_eq!(
            decode(&r.runtime_policy_key),
            std::fs::read(&key_path).unwrap()
        );
        assert_eq!(r.tpm_policy["mask"], "0x400");
    }

    #[test]
    fn legacy_allowlist_becomes_a_v1_policy() {
        let r = PolicyOptions {
            allowlist: Some(data("policy/keylime-tests/policy-commands/allowlist.txt")),
            exclude: Some(data("policy/keylime-tests/policy-commands/excludelist.txt")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(r.tpm_policy["mask"], "0x400");
        let text = String::from_utf8(decode(&r.runtime_policy)).unwrap();
        assert!(
            text.starts_with(r#"{"meta": {"version": 1, "generator": 3, "timestamp": ""#),
            "{text}"
        );
        let policy = keylime_ima::policy::RuntimePolicy::from_json(text.as_bytes(), 1 << 20)
            .expect("the conversion is a valid v1 policy");
        assert!(!policy.digests.is_empty());
        let excludes =
            std::fs::read_to_string(data("policy/keylime-tests/policy-commands/excludelist.txt"))
                .unwrap();
        assert_eq!(policy.excludes, [excludes.trim()]);

        // A v1 policy passed as an allowlist is refused with a hint.
        let err = PolicyOptions {
            allowlist: Some(data(
                "policy/keylime/sign-runtime-policy/runtime-policy.json",
            )),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--runtime-policy"), "{err}");
        // --exclude without --allowlist is a usage error.
        let err = PolicyOptions {
            exclude: Some(data("policy/keylime-tests/policy-commands/excludelist.txt")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, TenantError::Argument(_)), "{err}");
    }

    #[test]
    fn measured_boot_policy_keeps_key_order_and_widens_the_mask() {
        let file = data("mbpolicy/keylime/example_reference_state.json");
        let r = PolicyOptions {
            tpm_policy: Some(r#"{"23": "00"}"#.into()),
            mb_policy: Some(file.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(r.tpm_policy["mask"], "0x80fbff");
        let text = r.mb_policy.unwrap();
        let original: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), original);
        let first_key = std::fs::read_to_string(&file)
            .unwrap()
            .split('"')
            .nth(1)
            .unwrap()
            .to_string();
        assert!(text.starts_with(&format!("{{\"{first_key}\": ")), "{text}");

        // A name alone widens the mask too and sends no policy.
        let r = PolicyOptions {
            mb_policy_name: Some("mb1".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (r.tpm_policy["mask"].as_str(), r.mb_policy),
            (Some("0xfbff"), None)
        );

        // A PCR that measured boot will use cannot be in --tpm_policy.
        let err = PolicyOptions {
            tpm_policy: Some(r#"{"7": "00"}"#.into()),
            mb_policy: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PCR 7 is specified in \"tpm_policy\""),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("mb.json");
        std::fs::write(&bad, b"{\"a\": ").unwrap();
        let err = PolicyOptions {
            mb_policy: Some(bad),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
    }

    #[test]
    fn timestamps_look_like_pythons() {
        assert_eq!(python_timestamp(0, 0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            python_timestamp(1_709_251_199, 42),
            "2024-02-29 23:59:59.000042"
        );
        assert_eq!(python_now().len(), 26);
    }
}
