//! Wire types of the verifier's v2.x API (PROTOCOL.md §5): the add-agent request as the
//! upstream tenant sends it, the status document, the list shapes, and the operational
//! states with upstream's numbers and names (§5.5).
//!
//! The add-agent body is parsed tolerantly (§5.2, §11 Q14): JSON documents may arrive as
//! JSON strings or as objects (stored as text either way), `accept_tpm_*_algs` as JSON
//! lists or as Python-literal / comma-separated strings, `mb_refstate` as an alias of
//! `mb_policy`, ports as numbers or strings. What the body must carry: `tpm_policy`,
//! `ak_tpm` and the three `accept_tpm_*_algs` lists.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Operational state of an agent at the verifier (§5.5), with upstream's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationalState {
    Registered = 0,
    Start = 1,
    Saved = 2,
    GetQuote = 3,
    GetQuoteRetry = 4,
    ProvideV = 5,
    ProvideVRetry = 6,
    Failed = 7,
    Terminated = 8,
    InvalidQuote = 9,
    TenantFailed = 10,
}

impl OperationalState {
    /// Every state, by number.
    pub const ALL: [OperationalState; 11] = [
        Self::Registered,
        Self::Start,
        Self::Saved,
        Self::GetQuote,
        Self::GetQuoteRetry,
        Self::ProvideV,
        Self::ProvideVRetry,
        Self::Failed,
        Self::Terminated,
        Self::InvalidQuote,
        Self::TenantFailed,
    ];

    /// The state's number on the wire and in the database.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The state with number `code`.
    pub fn from_code(code: i64) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Upstream's constant name, e.g. `GET_QUOTE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Start => "START",
            Self::Saved => "SAVED",
            Self::GetQuote => "GET_QUOTE",
            Self::GetQuoteRetry => "GET_QUOTE_RETRY",
            Self::ProvideV => "PROVIDE_V",
            Self::ProvideVRetry => "PROVIDE_V_RETRY",
            Self::Failed => "FAILED",
            Self::Terminated => "TERMINATED",
            Self::InvalidQuote => "INVALID_QUOTE",
            Self::TenantFailed => "TENANT_FAILED",
        }
    }

    /// What the upstream tenant prints, e.g. `Get Quote`.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Registered => "Registered",
            Self::Start => "Start",
            Self::Saved => "Saved",
            Self::GetQuote => "Get Quote",
            Self::GetQuoteRetry => "Get Quote (retry)",
            Self::ProvideV => "Provide V",
            Self::ProvideVRetry => "Provide V (retry)",
            Self::Failed => "Failed",
            Self::Terminated => "Terminated",
            Self::InvalidQuote => "Invalid Quote",
            Self::TenantFailed => "Tenant Quote Failed",
        }
    }

    /// Pull-mode `attestation_status` (§5.3): PASS in 3–6, FAIL in 7/9/10, else PENDING.
    pub fn pull_attestation_status(self) -> AttestationStatus {
        match self {
            Self::GetQuote | Self::GetQuoteRetry | Self::ProvideV | Self::ProvideVRetry => {
                AttestationStatus::Pass
            }
            Self::Failed | Self::InvalidQuote | Self::TenantFailed => AttestationStatus::Fail,
            _ => AttestationStatus::Pending,
        }
    }

    /// States a restarted verifier resumes (reset to START, §5.5).
    pub fn resumes_on_restart(self) -> bool {
        matches!(
            self,
            Self::Start
                | Self::GetQuote
                | Self::GetQuoteRetry
                | Self::ProvideV
                | Self::ProvideVRetry
        )
    }

    /// States whose agent can be deleted at once (no poll in flight, §5.7).
    pub fn deletable_at_once(self) -> bool {
        matches!(
            self,
            Self::Saved | Self::Failed | Self::InvalidQuote | Self::TenantFailed
        )
    }
}

impl fmt::Display for OperationalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for OperationalState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for OperationalState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Self::from_code(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown operational_state {n}")))
    }
}

/// `attestation_status` of the status document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AttestationStatus {
    Pass,
    Fail,
    Pending,
    Timeout,
}

/// Body of `POST /v2.x/agents/{id}` (§5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddAgentRequest {
    /// The PCR policy as JSON text, including `"mask"` (§8.3).
    #[serde(deserialize_with = "json_text")]
    pub tpm_policy: String,
    /// b64 runtime policy (or DSSE envelope); `""` for none.
    #[serde(default, deserialize_with = "json_text_or_empty")]
    pub runtime_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_policy_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_policy_key: Option<String>,
    /// Measured-boot reference state as JSON text, or none (`mb_refstate` accepted, Q14).
    #[serde(default, alias = "mb_refstate", deserialize_with = "opt_json_text")]
    pub mb_policy: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub mb_policy_name: String,
    /// Deprecated IMA keyring JSON; `""` for none.
    #[serde(default, deserialize_with = "json_text_or_empty")]
    pub ima_sign_verification_keys: String,
    /// Free-form metadata as JSON text (default `"{}"`).
    #[serde(default = "empty_object", deserialize_with = "json_text")]
    pub metadata: String,
    /// PEM RSA private key that signs revocation messages; `""` for none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub revocation_key: String,
    #[serde(deserialize_with = "alg_list")]
    pub accept_tpm_hash_algs: Vec<String>,
    #[serde(deserialize_with = "alg_list")]
    pub accept_tpm_encryption_algs: Vec<String>,
    #[serde(deserialize_with = "alg_list")]
    pub accept_tpm_signing_algs: Vec<String>,
    /// b64 TPM2B_PUBLIC of the AK.
    pub ak_tpm: String,
    /// The agent's server certificate (PEM), `"disabled"`, or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_cert: Option<String>,
    /// b64 of the 32-byte V half of the bootstrap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudagent_ip: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloudagent_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_ip: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub verifier_port: Option<u16>,
    /// Agent API version the tenant negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_version: Option<String>,
}

impl AddAgentRequest {
    /// The agent's mTLS certificate when it is a certificate (not absent, empty or
    /// `"disabled"`).
    pub fn mtls_cert_pem(&self) -> Option<&str> {
        self.mtls_cert
            .as_deref()
            .filter(|c| !c.trim().is_empty() && *c != "disabled")
    }
}

fn empty_object() -> String {
    "{}".to_owned()
}

/// A JSON document carried as a string, or given inline (then re-serialised).
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(serde::de::Error::custom("must not be null")),
        other => Ok(other.to_string()),
    }
}

fn json_text_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => Ok(other.to_string()),
    }
}

fn opt_json_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Ok(Some(other.to_string())),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("port {n} is not 0-65535"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("port {s:?} is not 0-65535"))),
        other => Err(serde::de::Error::custom(format!(
            "port must be a number, got {other}"
        ))),
    }
}

/// A list of algorithm names: a JSON list, or a string holding a Python/JSON list literal
/// (`"['sha256', 'sha1']"`) or comma-separated names.
fn alg_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!(
                    "algorithm names must be strings, got {other}"
                ))),
            })
            .collect(),
        Value::String(s) => parse_name_list(&s).map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!(
            "expected a list of algorithm names, got {other}"
        ))),
    }
}

/// Parse `['a', "b"]`, `[a, b]` or `a, b` into names. Names are word characters only.
pub fn parse_name_list(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    let inner = match (t.strip_prefix('['), t.strip_suffix(']')) {
        (Some(_), Some(_)) if t.len() >= 2 => &t[1..t.len() - 1],
        (None, None) => t,
        _ => return Err(format!("unbalanced list literal {text:?}")),
    };
    let mut names = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let name = item
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .or_else(|| item.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            .unwrap_or(item);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{item:?} in {text:?} is not an algorithm name"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// `results` of `GET /v2.x/agents/{id}` (§5.3), field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentStatus {
    /// The state's number (§5.5).
    #[schema(value_type = u8, minimum = 0, maximum = 10)]
    pub operational_state: OperationalState,
    pub v: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub tpm_policy: String,
    pub meta_data: String,
    pub has_mb_refstate: u8,
    pub has_runtime_policy: u8,
    pub accept_tpm_hash_algs: Vec<String>,
    pub accept_tpm_encryption_algs: Vec<String>,
    pub accept_tpm_signing_algs: Vec<String>,
    pub hash_alg: String,
    pub enc_alg: String,
    pub sign_alg: String,
    pub verifier_id: String,
    pub verifier_ip: String,
    pub verifier_port: u16,
    pub severity_level: Option<u32>,
    pub last_event_id: Option<String>,
    pub attestation_count: u64,
    pub last_received_quote: i64,
    pub last_successful_attestation: i64,
    pub attestation_status: AttestationStatus,
    /// `"{int(quote_interval)}s"`.
    pub attestation_period: String,
    /// `"{int(quote_interval * 5)}s"`.
    pub maximum_attestation_interval: String,
}

/// `results` of `GET /v2.x/agents/` (§5.4, §11 Q1): a list of one-element lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = VerifierAgentList)]
pub struct AgentList {
    pub uuids: Vec<Vec<String>>,
}

impl AgentList {
    /// The upstream shape for `ids`.
    pub fn from_ids(ids: impl IntoIterator<Item = String>) -> Self {
        AgentList {
            uuids: ids.into_iter().map(|id| vec![id]).collect(),
        }
    }

    /// The ids, flattening rows (and tolerating a flat registrar-style list of rows).
    pub fn ids(&self) -> Vec<&str> {
        self.uuids.iter().flatten().map(String::as_str).collect()
    }
}

/// `results` of `GET /v2.x/agents/?bulk=True`: status by agent id.
pub type BulkStatus = BTreeMap<String, AgentStatus>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "tpm_policy": "{\"mask\": \"0x400\"}",
            "ak_tpm": "AAE=",
            "accept_tpm_hash_algs": ["sha256"],
            "accept_tpm_encryption_algs": ["rsa"],
            "accept_tpm_signing_algs": ["rsassa"],
        })
    }

    #[test]
    fn states_have_upstream_numbers_and_names() {
        for (i, s) in OperationalState::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.code()), i);
            assert_eq!(OperationalState::from_code(i as i64), Some(*s));
        }
        assert_eq!(OperationalState::from_code(11), None);
        assert_eq!(OperationalState::InvalidQuote.code(), 9);
        assert_eq!(OperationalState::GetQuote.display_name(), "Get Quote");
        assert_eq!(
            OperationalState::TenantFailed.display_name(),
            "Tenant Quote Failed"
        );
        assert_eq!(
            serde_json::to_value(OperationalState::Failed).unwrap(),
            json!(7)
        );
        assert_eq!(
            OperationalState::ProvideV.pull_attestation_status(),
            AttestationStatus::Pass
        );
        assert_eq!(
            OperationalState::TenantFailed.pull_attestation_status(),
            AttestationStatus::Fail
        );
        assert_eq!(
            OperationalState::Start.pull_attestation_status(),
            AttestationStatus::Pending
        );
        assert_eq!(
            serde_json::to_value(AttestationStatus::Pass).unwrap(),
            json!("PASS")
        );
    }

    #[test]
    fn upstream_tenant_body_parses() {
        let body = json!({
            "v": "AAAA", "cloudagent_ip": "127.0.0.1", "cloudagent_port": "9002",
            "verifier_ip": "127.0.0.1", "verifier_port": 8881,
            "tpm_policy": "{\"mask\": \"0x408000\"}",
            "runtime_policy": "", "runtime_policy_name": "", "runtime_policy_key": "",
            "mb_policy": null, "mb_policy_name": "",
            "ima_sign_verification_keys": "", "metadata": "{}", "revocation_key": "",
            "accept_tpm_hash_algs": ["sha512", "sha384", "sha256"],
            "accept_tpm_encryption_algs": "['ecc', 'rsa']",
            "accept_tpm_signing_algs": "ecschnorr, rsassa",
            "ak_tpm": "AAE=", "mtls_cert": "disabled", "supported_version": "2.6",
        });
        let r: AddAgentRequest = serde_json::from_value(body).unwrap();
        assert_eq!(r.cloudagent_port, Some(9002));
        assert_eq!(r.accept_tpm_encryption_algs, ["ecc", "rsa"]);
        assert_eq!(r.accept_tpm_signing_algs, ["ecschnorr", "rsassa"]);
        assert_eq!(r.mb_policy, None);
        assert_eq!(r.mtls_cert_pem(), None);
    }

    #[test]
    fn tolerant_shapes_and_defaults() {
        let mut body = minimal();
        body["tpm_policy"] = json!({"mask": "0x1", "0": ["00"]});
        body["mb_refstate"] = json!({"scrtm_and_bios": []});
        body["metadata"] = json!({"k": 1});
        let r: AddAgentRequest = serde_json::from_value(body).unwrap();
        let policy: Value = serde_json::from_str(&r.tpm_policy).unwrap();
        assert_eq!(policy["mask"], "0x1");
        assert!(r.mb_policy.unwrap().contains("scrtm_and_bios"));
        assert_eq!(r.metadata, "{\"k\":1}");
        let r: AddAgentRequest = serde_json::from_value(minimal()).unwrap();
        assert_eq!(r.metadata, "{}");
        assert_eq!(r.runtime_policy, "");
    }

    #[test]
    fn missing_or_malformed_required_fields_are_errors() {
        for field in [
            "tpm_policy",
            "ak_tpm",
            "accept_tpm_hash_algs",
            "accept_tpm_signing_algs",
        ] {
            let mut body = minimal();
            body.as_object_mut().unwrap().remove(field);
            let err = serde_json::from_value::<AddAgentRequest>(body).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let mut body = minimal();
        body["accept_tpm_hash_algs"] = json!("['sha256'");
        assert!(serde_json::from_value::<AddAgentRequest>(body).is_err());
        let mut body = minimal();
        body["cloudagent_port"] = json!(70000);
        assert!(serde_json::from_value::<AddAgentRequest>(body).is_err());
        let mut body = minimal();
        body["accept_tpm_hash_algs"] = json!([1]);
        assert!(serde_json::from_value::<AddAgentRequest>(body).is_err());
    }

    #[test]
    fn name_lists() {
        assert_eq!(parse_name_list("[\"a\", 'b',c]").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse_name_list("[]").unwrap(), Vec::<String>::new());
        assert!(parse_name_list("['a b']").is_err());
    }

    #[test]
    fn list_shape_is_list_of_lists() {
        let l = AgentList::from_ids(["a".to_string(), "b".to_string()]);
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"uuids": [["a"], ["b"]]})
        );
        assert_eq!(l.ids(), ["a", "b"]);
    }
}
