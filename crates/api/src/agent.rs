//! Wire types of the pull agent's API (PROTOCOL.md §4): the `/quotes/*` response, `/keys/*`
//! bodies and `/agent/info`. The agent's `/version` body is [`crate::AgentVersionInfo`].
//!
//! Decoding is tolerant where agents differ (absent optional fields, `ak_handle` as a number
//! or a string, §11 Q29); encoding omits absent optional fields, as the Rust agent does.

use serde::{Deserialize, Deserializer, Serialize};

/// `results` of `GET /v2.x/quotes/identity` and `/quotes/integrity` (§4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteResponse {
    /// `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>`.
    pub quote: String,
    /// `sha1`/`sha256`/….
    pub hash_alg: String,
    /// `rsa2048`… (API ≥ 2.5), `rsa`/`ecc` before.
    pub enc_alg: String,
    /// `rsassa`/`rsapss`/`ecdsa`/….
    pub sign_alg: String,
    /// The payload public key (PEM SPKI); identity quotes and `partial=0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubkey: Option<String>,
    /// The IMA ASCII measurement list from the requested offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_measurement_list: Option<String>,
    /// Index of the first IMA entry actually returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_measurement_list_entry: Option<u64>,
    /// b64 of the raw UEFI event log, when PCR 0 is in the mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_measurement_list: Option<String>,
    /// Boot time (seconds since the epoch); not sent by the Rust agent (§11 Q28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boottime: Option<u64>,
}

impl QuoteResponse {
    /// `boottime`, defaulting to 0 as upstream's verifier does (§11 Q28).
    pub fn boottime_or_zero(&self) -> u64 {
        self.boottime.unwrap_or(0)
    }
}

/// Query of `GET /v2.x/quotes/integrity` (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityQuoteQuery {
    /// 20 alphanumeric characters from the verifier.
    pub nonce: String,
    /// `tpm_policy["mask"]`, verbatim (e.g. `0x408400`).
    pub mask: String,
    /// `"0"` to include `pubkey`, `"1"` to omit it.
    pub partial: String,
    /// Next IMA entry wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_ml_entry: Option<u64>,
}

/// `results` of `GET /v2.x/keys/pubkey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubkeyResponse {
    /// PEM SPKI of the payload key.
    pub pubkey: String,
}

/// Body of `POST /v2.x/keys/ukey` (tenant → agent, §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UkeyRequest {
    /// hex HMAC-SHA384(K, agent_id).
    pub auth_tag: String,
    /// b64 RSA-OAEP-SHA1(pubkey, U).
    pub encrypted_key: String,
    /// b64 of the encrypted payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// Body of `POST /v2.x/keys/vkey` (verifier → agent, §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VkeyRequest {
    /// b64 RSA-OAEP-SHA1(pubkey, V).
    pub encrypted_key: String,
}

/// `results` of `GET /v2.x/keys/verify?challenge=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVerifyResponse {
    /// hex HMAC-SHA384(K, challenge).
    pub hmac: String,
}

/// `results` of `GET /v2.x/agent/info` (≥ 2.2, §4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub agent_uuid: String,
    pub tpm_hash_alg: String,
    pub tpm_enc_alg: String,
    pub tpm_sign_alg: String,
    /// A number in the Rust agent; the docs show a string (§11 Q29): both are read.
    #[serde(deserialize_with = "number_or_string")]
    pub ak_handle: u32,
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u32),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Text(t) => {
            let t = t.trim();
            let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => t.parse(),
            };
            parsed.map_err(|_| serde::de::Error::custom(format!("ak_handle {t:?} is not a u32")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_response_omits_absent_fields_and_reads_minimal_bodies() {
        let q = QuoteResponse {
            quote: "rAA:BB:CC".into(),
            hash_alg: "sha256".into(),
            enc_alg: "rsa2048".into(),
            sign_alg: "rsassa".into(),
            ..QuoteResponse::default()
        };
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(
            v,
            json!({"quote":"rAA:BB:CC","hash_alg":"sha256","enc_alg":"rsa2048","sign_alg":"rsassa"})
        );
        let back: QuoteResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back.boottime_or_zero(), 0);
        assert!(serde_json::from_value::<QuoteResponse>(json!({"quote": "r"})).is_err());
    }

    #[test]
    fn agent_info_accepts_number_or_string_handle() {
        let base = json!({"agent_uuid":"a","tpm_hash_alg":"sha256","tpm_enc_alg":"rsa2048",
            "tpm_sign_alg":"rsassa","ak_handle":2164260864u32});
        let info: AgentInfo = serde_json::from_value(base.clone()).unwrap();
        assert_eq!(info.ak_handle, 0x8100_0000);
        let mut s = base.clone();
        s["ak_handle"] = json!("2164260864");
        assert_eq!(
            serde_json::from_value::<AgentInfo>(s).unwrap().ak_handle,
            0x8100_0000
        );
        let mut bad = base;
        bad["ak_handle"] = json!("handle");
        assert!(serde_json::from_value::<AgentInfo>(bad).is_err());
    }
}
