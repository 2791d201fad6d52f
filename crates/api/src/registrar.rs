//! Registrar request and response bodies (PROTOCOL.md §2) and the activation auth tag
//! (§3.6), shared by the registrar (which checks tags) and the agent (which computes them).
//!
//! Field names are upstream's. Unknown request fields are ignored, as upstream does.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha384;
use utoipa::ToSchema;

use crate::encoding::encode_b64;

/// Body of `POST /v2.x/agents[/{id}]` (§2.2). Every field is optional on the wire; the
/// registrar decides which ones are required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// b64 TPM2B_PUBLIC of the attestation key.
    #[serde(default)]
    pub aik_tpm: Option<String>,
    /// b64 TPM2B_PUBLIC of the endorsement key.
    #[serde(default)]
    pub ek_tpm: Option<String>,
    /// EK certificate: PEM (only the first certificate counts), b64 DER, `""` or null.
    #[serde(default)]
    pub ekcert: Option<String>,
    /// The agent's server certificate (PEM), `"disabled"` or null.
    #[serde(default)]
    pub mtls_cert: Option<String>,
    /// Contact address.
    #[serde(default)]
    pub ip: Option<String>,
    /// Contact port; upstream clients send an integer or a numeric string.
    #[serde(default, deserialize_with = "port_int_or_string")]
    pub port: Option<u16>,
    /// b64 TPM2B_PUBLIC of the IAK.
    #[serde(default)]
    pub iak_tpm: Option<String>,
    /// b64 TPM2B_PUBLIC of the IDevID key.
    #[serde(default)]
    pub idevid_tpm: Option<String>,
    /// IAK certificate, PEM or b64 DER.
    #[serde(default)]
    pub iak_cert: Option<String>,
    /// IDevID certificate, PEM or b64 DER.
    #[serde(default)]
    pub idevid_cert: Option<String>,
    /// b64 TPMS_ATTEST of TPM2_Certify(AK by IAK).
    #[serde(default)]
    pub iak_attest: Option<String>,
    /// b64 TPMT_SIGNATURE over `iak_attest`.
    #[serde(default)]
    pub iak_sign: Option<String>,
    /// Agent id (the path id wins when both are present).
    #[serde(default)]
    pub agent_id: Option<String>,
}

fn port_int_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Int(u64),
        Text(String),
    }
    match Option::<Port>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Port::Int(n)) => u16::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("port {n} is out of range 0-65535"))),
        Some(Port::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Port::Text(t)) => t.trim().parse::<u16>().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("port {t:?} is not a number in 0-65535"))
        }),
    }
}

/// `results` of a successful registration: the b64 tpm2-tools credential blob (§3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    /// b64 of the `0xBADCC0DE` makecredential file.
    pub blob: String,
}

/// Body of the activation routes (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivateRequest {
    /// Lowercase hex HMAC-SHA384, see [`activation_auth_tag`].
    pub auth_tag: String,
}

/// `results` of `GET /v2.x/agents/{id}` (§2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegistrarAgentRecord)]
pub struct AgentRecord {
    /// The agent id.
    pub agent_id: String,
    /// b64 TPM2B_PUBLIC of the EK.
    pub ek_tpm: Option<String>,
    /// b64 DER of the EK certificate, or null.
    pub ekcert: Option<String>,
    /// b64 TPM2B_PUBLIC of the AK.
    pub aik_tpm: Option<String>,
    /// Contact address.
    pub ip: Option<String>,
    /// Contact port.
    pub port: Option<u16>,
    /// PEM of the agent's server certificate, `"disabled"` or null.
    pub mtls_cert: Option<String>,
    /// How many times the agent registered an identity.
    pub regcount: u32,
}

/// `results` of `GET /v2.x/agents/` on the registrar: a flat list (§2.4, contrast Q1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegistrarAgentList)]
pub struct AgentList {
    /// Registered agent ids.
    pub uuids: Vec<String>,
}

/// The activation proof (§3.6): lowercase hex of HMAC-SHA384 keyed with the ASCII
/// **base64 text** of the credential, over the UTF-8 agent id.
///
/// ```
/// let tag = keylime_api::activation_auth_tag(b"0123456789abcdefghijABCDEFGHIJkl", "a");
/// assert_eq!(tag.len(), 96);
/// ```
pub fn activation_auth_tag(credential: &[u8], agent_id: &str) -> String {
    activation_auth_tag_with_key(&encode_b64(credential), agent_id)
}

/// Same as [`activation_auth_tag`] when the registrar holds `key = b64(credential)`.
pub fn activation_auth_tag_with_key(b64_credential: &str, agent_id: &str) -> String {
    // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
    let Ok(mut mac) = Hmac::<Sha384>::new_from_slice(b64_credential.as_bytes()) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(agent_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_tag_known_answer() {
        // Computed independently with Python's hmac/hashlib over base64 text as the key.
        let tag = activation_auth_tag(
            b"0123456789abcdefghijABCDEFGHIJkl",
            "d432fbb3-d2f1-4a97-9ef7-75bd81c00000",
        );
        assert_eq!(
            tag,
            "f7030d7cd75b4e93bc77b96916a0a945a93b04bfaa1dbe21f244cd1b5920ad81\
             e6bc465100d8d2a7a31b2a3feca33db0"
        );
        assert_eq!(
            activation_auth_tag_with_key(
                "MDEyMzQ1Njc4OWFiY2RlZmdoaWpBQkNERUZHSElKa2w=",
                "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"
            ),
            tag
        );
    }

    #[test]
    fn register_request_accepts_rust_agent_body() {
        let body = json!({"aik_tpm":"AAE=","ek_tpm":"AAI=","ekcert":"","iak_cert":null,
            "idevid_cert":null,"ip":"10.0.0.5","mtls_cert":"disabled","port":9002,
            "something_new": [1, 2]});
        let req: RegisterRequest = serde_json::from_value(body).unwrap();
        assert_eq!(req.port, Some(9002));
        assert_eq!(req.ekcert.as_deref(), Some(""));
        assert_eq!(req.iak_cert, None);
        assert_eq!(req.agent_id, None);
    }

    #[test]
    fn port_as_string_null_or_invalid() {
        let p = |v| serde_json::from_value::<RegisterRequest>(json!({ "port": v }));
        assert_eq!(p(json!("9002")).unwrap().port, Some(9002));
        assert_eq!(p(json!(null)).unwrap().port, None);
        assert!(p(json!("90x2")).is_err());
        assert!(p(json!(70000)).is_err());
        assert!(p(json!(-1)).is_err());
    }

    #[test]
    fn list_and_record_shapes() {
        let v = serde_json::to_value(AgentList {
            uuids: vec!["a".into()],
        })
        .unwrap();
        assert_eq!(v, json!({"uuids":["a"]}));
        let rec = AgentRecord {
            agent_id: "a".into(),
            ek_tpm: Some("x".into()),
            ekcert: None,
            aik_tpm: Some("y".into()),
            ip: None,
            port: Some(1),
            mtls_cert: None,
            regcount: 1,
        };
        let v = serde_json::to_value(&rec).unwrap();
        for key in [
            "aik_tpm",
            "regcount",
            "ek_tpm",
            "ip",
            "port",
            "ekcert",
            "mtls_cert",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
    }
}
