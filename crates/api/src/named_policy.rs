//! Wire types of the verifier's named-policy routes (PROTOCOL.md §5.8): the bodies of
//! `POST`/`PUT /v2.x/allowlists/{name}` and `/v2.x/mbpolicies/{name}`, the documents `GET`
//! returns (upstream's key order, `tmp_policy` included, §11 Q16) and the name lists.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of `POST`/`PUT /v2.x/allowlists/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimePolicyBody {
    /// b64 of the runtime policy JSON (or of its DSSE envelope).
    #[serde(default)]
    pub runtime_policy: Option<String>,
    /// b64 of the key that signed a DSSE envelope.
    #[serde(default)]
    pub runtime_policy_key: Option<String>,
    /// The PCR policy stored with it, as JSON text or inline.
    #[serde(default)]
    pub tpm_policy: Option<Value>,
}

/// Body of `POST`/`PUT /v2.x/mbpolicies/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MbPolicyBody {
    /// The measured-boot reference state, as JSON text or inline.
    #[serde(default)]
    pub mb_policy: Option<Value>,
}

/// `results` of `GET /v2.x/allowlists/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuntimePolicyDocument {
    /// The policy's name.
    pub name: String,
    /// Upstream's misspelt, always-null field, kept for its clients.
    pub tmp_policy: Option<String>,
    /// The stored policy JSON text.
    pub runtime_policy: Option<String>,
}

/// `results` of `GET /v2.x/mbpolicies/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MbPolicyDocument {
    /// The policy's name.
    pub name: String,
    /// The stored reference state JSON text.
    pub mb_policy: Option<String>,
}

/// `results` of `GET /v2.x/allowlists/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuntimePolicyNames {
    /// Stored runtime-policy names.
    #[serde(rename = "runtimepolicy names")]
    pub names: Vec<String>,
}

/// `results` of `GET /v2.x/mbpolicies/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MbPolicyNames {
    /// Stored measured-boot policy names.
    #[serde(rename = "mbpolicy names")]
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_have_upstream_keys() {
        let doc = RuntimePolicyDocument {
            name: "p".into(),
            tmp_policy: None,
            runtime_policy: Some("{}".into()),
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"name":"p","tmp_policy":null,"runtime_policy":"{}"}"#
        );
        let names = MbPolicyNames {
            names: vec!["a".into()],
        };
        assert_eq!(
            serde_json::to_value(names).unwrap(),
            json!({"mbpolicy names": ["a"]})
        );
    }
}
