//! The status document of one agent (PROTOCOL.md §5.3), built from its stored record.

use keylime_api::verifier::{AddAgentRequest, AgentStatus, OperationalState};
use keylime_attestation::AgentState;
use keylime_store::VerifierAgent;

use crate::state::AppState;

/// Build `results` of `GET /v2.x/agents/{id}`.
pub fn agent_status(state: &AppState, agent: &VerifierAgent) -> AgentStatus {
    let req: Option<AddAgentRequest> = serde_json::from_str(&agent.add_request).ok();
    let engine: AgentState = serde_json::from_str(&agent.engine_state).unwrap_or_default();
    let op = OperationalState::from_code(i64::from(agent.operational_state))
        .unwrap_or(OperationalState::Failed);
    let interval = state.quote_interval_secs;
    let r = req.as_ref();
    AgentStatus {
        operational_state: op,
        v: r.and_then(|r| r.v.clone()),
        ip: agent.ip.clone(),
        port: agent.port.and_then(|p| u16::try_from(p).ok()),
        tpm_policy: r.map(|r| r.tpm_policy.clone()).unwrap_or_default(),
        meta_data: r.map(|r| r.metadata.clone()).unwrap_or_else(|| "{}".into()),
        has_mb_refstate: u8::from(agent.mb_policy_name.is_some()),
        has_runtime_policy: u8::from(agent.runtime_policy_name.is_some()),
        accept_tpm_hash_algs: r
            .map(|r| r.accept_tpm_hash_algs.clone())
            .unwrap_or_default(),
        accept_tpm_encryption_algs: r
            .map(|r| r.accept_tpm_encryption_algs.clone())
            .unwrap_or_default(),
        accept_tpm_signing_algs: r
            .map(|r| r.accept_tpm_signing_algs.clone())
            .unwrap_or_default(),
        hash_alg: engine.hash_alg.unwrap_or_default(),
        enc_alg: engine.enc_alg.unwrap_or_default(),
        sign_alg: engine.sign_alg.unwrap_or_default(),
        verifier_id: agent.verifier_id.clone(),
        verifier_ip: r
            .and_then(|r| r.verifier_ip.clone())
            .unwrap_or_else(|| state.listen_addr.ip().to_string()),
        verifier_port: r
            .and_then(|r| r.verifier_port)
            .unwrap_or(state.listen_addr.port()),
        severity_level: agent.severity_level.and_then(|l| u32::try_from(l).ok()),
        last_event_id: agent.last_event_id.clone(),
        attestation_count: u64::try_from(agent.attestation_count).unwrap_or(0),
        last_received_quote: agent.last_received_quote,
        last_successful_attestation: agent.last_successful_attestation,
        attestation_status: op.pull_attestation_status(),
        attestation_period: format!("{}s", interval as u64),
        maximum_attestation_interval: format!("{}s", (interval * 5.0) as u64),
    }
}
