//! REST bodies from arbitrary bytes: every wire type the registrar, verifier, agent and
//! tenant deserialize, and what the services parse out of the fields of the bodies they
//! receive from agents and tenants.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keylime_api::agent::{
    AgentInfo, IntegrityQuoteQuery, KeyVerifyResponse, PubkeyResponse, QuoteResponse, UkeyRequest,
    VkeyRequest,
};
use keylime_api::verifier::{AddAgentRequest, AgentStatus, parse_name_list};
use keylime_api::{
    ActivateRequest, AgentList, AgentRecord, AgentVersionInfo, ApiVersion, EmptyResults, Envelope,
    ErrorDocument, RegisterRequest, RegisterResponse, VersionInfo, decode_binary,
};
use keylime_attestation::{PreparedAk, TpmPolicy};
use keylime_eventlog::PreparedMbPolicy;
use keylime_ima::PreparedRuntimePolicy;
use keylime_ima::policy::{DEFAULT_MAX_POLICY_LEN, DsseKey, PolicyDocument};
use keylime_pki::{ek_cert_public_key_spki, pem_or_der_to_der_list};
use keylime_tpm::{Attest, Public, Signature};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deserialize `T`; what deserializes serializes to JSON that deserializes to the same value.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_string(&value).expect("wire types serialize");
    let again: Result<T, _> = serde_json::from_str(&json);
    assert_eq!(
        again.as_ref().ok(),
        Some(&value),
        "{json} re-reads: {again:?}"
    );
    Some(value)
}

/// Every wire type, bare and in the v2 envelope, and the small text parsers of the API.
pub fn bodies(data: &[u8]) {
    round_trip::<RegisterRequest>(data);
    round_trip::<RegisterResponse>(data);
    round_trip::<ActivateRequest>(data);
    round_trip::<AgentRecord>(data);
    round_trip::<AddAgentRequest>(data);
    round_trip::<AgentStatus>(data);
    round_trip::<QuoteResponse>(data);
    round_trip::<IntegrityQuoteQuery>(data);
    round_trip::<PubkeyResponse>(data);
    round_trip::<UkeyRequest>(data);
    round_trip::<VkeyRequest>(data);
    round_trip::<KeyVerifyResponse>(data);
    round_trip::<AgentInfo>(data);
    round_trip::<VersionInfo>(data);
    round_trip::<AgentVersionInfo>(data);
    round_trip::<ErrorDocument>(data);
    round_trip::<Envelope<QuoteResponse>>(data);
    round_trip::<Envelope<AgentList>>(data);
    round_trip::<Envelope<EmptyResults>>(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = text.parse::<ApiVersion>() {
        assert_eq!(v.to_string().parse::<ApiVersion>().ok(), Some(v));
    }
    let _ = parse_name_list(&text);
    let _ = decode_binary(&text);
}

/// A certificate field as the registrar reads it: PEM (first certificate), else b64/hex DER.
fn cert_field(text: &str) -> Option<Vec<u8>> {
    if text.contains("-----BEGIN") {
        pem_or_der_to_der_list(text.as_bytes())
            .ok()?
            .into_iter()
            .next()
    } else {
        decode_binary(text).ok()
    }
}

fn public_field(text: Option<&str>) -> Option<Public> {
    Public::from_tpm2b(&decode_binary(text?).ok()?).ok()
}

/// A registration body (`POST /agents/{id}` at the registrar) and every agent-supplied
/// value in it: the TPM2B_PUBLIC keys, the EK/IAK/IDevID certificates and the EK
/// certificate's key against the EK, the mTLS certificate, the IAK certification.
pub fn registration(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<RegisterRequest>(data) else {
        return;
    };
    let _ = public_field(req.aik_tpm.as_deref()).map(|ak| PreparedAk::from_tpm2b(&ak.to_tpm2b()));
    let ek = public_field(req.ek_tpm.as_deref());
    let _ = public_field(req.iak_tpm.as_deref());
    let _ = public_field(req.idevid_tpm.as_deref());
    for cert in [&req.ekcert, &req.iak_cert, &req.idevid_cert, &req.mtls_cert] {
        if let Some(der) = cert.as_deref().and_then(cert_field) {
            let spki = ek_cert_public_key_spki(&der);
            if let (Ok(spki), Some(ek)) = (spki, &ek) {
                let _ = ek.spki_der().map(|ek_spki| ek_spki == spki);
            }
            crate::pki::ek_cert(&der);
        }
    }
    if let Some(attest) = req
        .iak_attest
        .as_deref()
        .and_then(|t| decode_binary(t).ok())
    {
        let _ = Attest::parse(&attest);
    }
    if let Some(sig) = req.iak_sign.as_deref().and_then(|t| decode_binary(t).ok()) {
        let _ = Signature::parse(&sig);
    }
}

/// An add-agent body (`POST /agents/{id}` at the verifier) and what the verifier parses out
/// of it: `tpm_policy`, the base64 runtime policy (plain or DSSE) and its key, the
/// measured-boot reference state, the AK, the mTLS certificate and the algorithm lists.
pub fn add_agent(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<AddAgentRequest>(data) else {
        return;
    };
    let _ = TpmPolicy::from_json_str(&req.tpm_policy);
    if let Ok(policy) = STANDARD.decode(req.runtime_policy.as_bytes())
        && let Ok(doc) = PolicyDocument::parse(&policy, DEFAULT_MAX_POLICY_LEN, true)
    {
        let _ = PreparedRuntimePolicy::prepare(doc.policy());
    }
    if let Some(key) = req.runtime_policy_key.as_deref()
        && let Ok(key) = STANDARD.decode(key)
        && let Ok(pem) = std::str::from_utf8(&key)
    {
        let _ = DsseKey::from_pem(pem);
    }
    if let Some(refstate) = req.mb_policy.as_deref()
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(refstate)
    {
        let _ = PreparedMbPolicy::prepare("example", Some(&value));
    }
    if let Ok(ak) = decode_binary(&req.ak_tpm) {
        let _ = PreparedAk::from_tpm2b(&ak);
    }
    if let Some(pem) = req.mtls_cert_pem() {
        let _ = pem_or_der_to_der_list(pem.as_bytes());
    }
    let _ = serde_json::from_str::<serde_json::Value>(&req.metadata);
}
