//! The request documents of the session routes (PROTOCOL.md §0.3, §6.1): a JSON:API
//! document whose top level holds only `data`, `errors`, `meta`, `links`, `jsonapi`, and
//! whose resource (`type` `session`) holds only `type`, `id`, `attributes`, `links`,
//! `meta`, with non-empty `attributes`. Everything else is refused with a reason.

use serde_json::{Map, Value};

const DOCUMENT_MEMBERS: &[&str] = &["data", "errors", "meta", "links", "jsonapi"];
const RESOURCE_MEMBERS: &[&str] = &["type", "id", "attributes", "links", "meta"];

/// The session resource's attributes, from a checked document.
#[derive(Debug)]
pub struct SessionAttributes {
    pub agent_id: String,
    attributes: Map<String, Value>,
}

/// One authentication method offered or provided.
#[derive(Debug, PartialEq, Eq)]
pub struct PopProof {
    /// Base64 of TPMS_ATTEST.
    pub message: String,
    /// Base64 of TPMT_SIGNATURE.
    pub signature: String,
}

/// Parse a session request body into its attributes.
pub fn parse(body: &[u8]) -> Result<SessionAttributes, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let Value::Object(doc) = doc else {
        return Err("body must be a JSON object".into());
    };
    if let Some(k) = doc.keys().find(|k| !DOCUMENT_MEMBERS.contains(&k.as_str())) {
        return Err(format!("unexpected member '{k}' in the document"));
    }
    let Some(Value::Object(data)) = doc.get("data") else {
        return Err("data must be an object".into());
    };
    if let Some(k) = data
        .keys()
        .find(|k| !RESOURCE_MEMBERS.contains(&k.as_str()))
    {
        return Err(format!("unexpected member '{k}' in data"));
    }
    match data.get("type") {
        Some(Value::String(t)) if t == "session" => {}
        _ => return Err("data.type must be \"session\"".into()),
    }
    let Some(Value::Object(attributes)) = data.get("attributes") else {
        return Err("data.attributes must be an object".into());
    };
    if attributes.is_empty() {
        return Err("unexpected member 'attributes' (empty)".into());
    }
    let agent_id = match attributes.get("agent_id") {
        None | Some(Value::Null) => return Err("agent_id is required".into()),
        Some(Value::String(id)) if id.is_empty() => return Err("agent_id is required".into()),
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err("agent_id must be a string".into()),
    };
    if !keylime_api::is_valid_agent_id(&agent_id) {
        return Err("agent_id is not valid".into());
    }
    Ok(SessionAttributes {
        agent_id,
        attributes: attributes.clone(),
    })
}

fn is_tpm_pop(method: &Value) -> bool {
    method.get("authentication_class").and_then(Value::as_str) == Some("pop")
        && method.get("authentication_type").and_then(Value::as_str) == Some("tpm_pop")
}

impl SessionAttributes {
    /// Check `authentication_supported` offers `tpm_pop` (create).
    pub fn require_tpm_pop_supported(&self) -> Result<(), String> {
        match self.attributes.get("authentication_supported") {
            Some(Value::Array(methods)) if methods.iter().any(is_tpm_pop) => Ok(()),
            _ => Err("authentication_supported must include tpm_pop authentication type".into()),
        }
    }

    /// The `tpm_pop` proof of `authentication_provided` (prove).
    pub fn tpm_pop_proof(&self) -> Result<PopProof, String> {
        let Some(Value::Array(methods)) = self.attributes.get("authentication_provided") else {
            return Err(
                "authentication_provided must include at least one authentication method".into(),
            );
        };
        let Some(method) = methods.iter().find(|m| is_tpm_pop(m)) else {
            return Err("authentication_provided must include tpm_pop authentication type".into());
        };
        let field = |name: &str| {
            method
                .get("data")
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("authentication_provided data.{name} must be a string"))
        };
        Ok(PopProof {
            message: field("message")?,
            signature: field("signature")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_malformed_documents() {
        for (body, reason) in [
            (&b"[]"[..], "JSON object"),
            (b"not json", "not JSON"),
            (
                br#"{"data":{"type":"session","attributes":{"agent_id":"a"}},"x":1}"#,
                "'x'",
            ),
            (
                br#"{"data":{"type":"session","attributes":{"agent_id":"a"},"y":1}}"#,
                "'y'",
            ),
            (
                br#"{"data":{"type":"agent","attributes":{"agent_id":"a"}}}"#,
                "data.type",
            ),
            (
                br#"{"data":{"type":"session","attributes":{}}}"#,
                "attributes",
            ),
            (
                br#"{"data":{"type":"session","attributes":{"agent_id":7}}}"#,
                "string",
            ),
            (
                br#"{"data":{"type":"session","attributes":{"x":7}}}"#,
                "agent_id is required",
            ),
            (br#"{"data":"s"}"#, "data must be an object"),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(reason), "{err} lacks {reason}");
        }
    }

    #[test]
    fn reads_the_offer_and_the_proof() {
        let body = br#"{"data":{"type":"session","attributes":{"agent_id":"a",
            "authentication_supported":[{"authentication_class":"pop","authentication_type":"tpm_pop"}],
            "authentication_provided":[{"authentication_class":"pop","authentication_type":"tpm_pop",
               "data":{"message":"bQ==","signature":"cw=="}}]}}}"#;
        let attrs = parse(body).unwrap();
        assert_eq!(attrs.agent_id, "a");
        attrs.require_tpm_pop_supported().unwrap();
        assert_eq!(
            attrs.tpm_pop_proof().unwrap(),
            PopProof {
                message: "bQ==".into(),
                signature: "cw==".into()
            }
        );
        let plain = parse(br#"{"data":{"type":"session","attributes":{"agent_id":"a"}}}"#).unwrap();
        assert!(plain.require_tpm_pop_supported().is_err());
        assert!(plain.tpm_pop_proof().is_err());
    }
}
