//! One function per verifier operation (PROTOCOL.md §5.2–§5.7): add, status, list, delete,
//! reactivate, stop, version. Handlers validate, touch the store, and tell the pull
//! supervisor; they never poll agents themselves.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keylime_api::verifier::{AddAgentRequest, AgentList, BulkStatus, OperationalState};
use keylime_api::{EmptyResults, Envelope, VersionInfo};
use keylime_attestation::AgentState;
use keylime_store::{NewPolicies, PolicyKind, VerifierAgent};

use crate::error::{ApiError, envelope};
use crate::policies;
use crate::pull::Command;
use crate::pull::agent::PreparedAgent;
use crate::state::AppState;
use crate::status::agent_status;

const NOT_FOUND: &str = "agent id not found";
const NO_ROW: &str = "Exception error: No row was found when one was required";

fn ok<T: serde::Serialize>(results: T) -> Response {
    envelope(StatusCode::OK, &Envelope::ok(results))
}

/// Upstream's id rule: `[\w.-]+` (fullmatch).
fn check_agent_id(id: &str) -> Result<(), ApiError> {
    if keylime_api::is_valid_agent_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest("agent_id not not valid".into()))
    }
}

/// The add-agent fields upstream stores unchecked, checked here so that what is stored can
/// be used: the contact address fits its column, `revocation_key` (when given) is the RSA
/// private key notices are signed with, `metadata` is a JSON object. Checked on add only:
/// records stored before these checks still load.
fn check_free_form_fields(request: &AddAgentRequest) -> Result<(), ApiError> {
    use keylime_store::verifier::MAX_SHORT_TEXT_CHARS;
    if let Some(ip) = request.cloudagent_ip.as_deref()
        && (ip.chars().count() > MAX_SHORT_TEXT_CHARS
            || ip.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(ApiError::BadRequest(format!(
            "cloudagent_ip must be at most {MAX_SHORT_TEXT_CHARS} characters without whitespace"
        )));
    }
    if !request.revocation_key.trim().is_empty()
        && let Err(e) = keylime_payload::parse_rsa_private_key_pem(&request.revocation_key)
    {
        return Err(ApiError::BadRequest(format!(
            "revocation_key must be a PEM RSA private key or empty: {e}"
        )));
    }
    let metadata: Result<serde_json::Map<String, serde_json::Value>, _> =
        serde_json::from_str(&request.metadata);
    if let Err(e) = metadata {
        return Err(ApiError::BadRequest(format!(
            "metadata must be a JSON object: {e}"
        )));
    }
    Ok(())
}

/// `GET /version`.
pub fn version() -> Response {
    ok(VersionInfo::registrar())
}

/// `GET /` → 307 to `/v3.0/`.
pub fn root() -> Response {
    (StatusCode::TEMPORARY_REDIRECT, [("location", "/v3.0/")]).into_response()
}

/// `POST /v2.x/agents/{id}`.
pub async fn add(state: &AppState, id: &str, body: &[u8]) -> Result<Response, ApiError> {
    check_agent_id(id)?;
    let mut request: AddAgentRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Exception error: {e}")))?;
    check_free_form_fields(&request)?;
    let mut new = NewPolicies::default();
    let runtime_policy_name = runtime_policy_for(state, id, &request, &mut new).await?;
    let mb_policy_name = mb_policy_for(state, id, &request, &mut new).await?;
    // The stored request names its policies; their texts live in the policy tables.
    request.runtime_policy = String::new();
    request.runtime_policy_name = runtime_policy_name.clone();
    request.mb_policy = None;
    request.mb_policy_name = mb_policy_name.clone().unwrap_or_default();
    let prepared = PreparedAgent::new(
        request,
        state.supervisor.ctx.severity.clone(),
        state.supervisor.ctx.require_mtls,
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let record = VerifierAgent {
        agent_id: id.to_owned(),
        verifier_id: state.verifier_id.clone(),
        operational_state: OperationalState::GetQuote as i32,
        ip: Some(prepared.ip.clone()),
        port: Some(i32::from(prepared.port)),
        add_request: serde_json::to_string(&prepared.request)
            .map_err(|e| ApiError::Internal(e.into()))?,
        engine_state: serde_json::to_string(&AgentState::default())
            .map_err(|e| ApiError::Internal(e.into()))?,
        attestation_count: 0,
        last_received_quote: 0,
        last_successful_attestation: 0,
        severity_level: None,
        last_event_id: None,
        runtime_policy_name,
        mb_policy_name,
    };
    if !state
        .store
        .verifier()
        .add_with_policies(&record, &new)
        .await?
    {
        if state.store.verifier().get(id).await?.is_some() {
            return Err(ApiError::Conflict(format!(
                "Agent of uuid {id} already exists. Please use delete or update."
            )));
        }
        return Err(ApiError::Conflict(format!(
            "A policy named for agent {id} was created concurrently; retry"
        )));
    }
    tracing::info!(agent_id = id, "agent added; polling starts");
    state.supervisor.spawn(record);
    Ok(ok(EmptyResults {}))
}

/// Upstream's four cases for a new agent's runtime or measured-boot policy: name and policy
/// → store under the name (409 if taken); name only → it must exist (404); policy only →
/// store under the agent id (409 if taken); neither → no policy. Returns the name the agent
/// uses and, when a policy must be created with the agent, its text.
async fn resolve_policy(
    state: &AppState,
    kind: PolicyKind,
    id: &str,
    name: Option<String>,
    text: Option<String>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let repo = state.store.verifier();
    let taken = |n: &str| {
        ApiError::Conflict(match kind {
            PolicyKind::Runtime => format!(
                "IMA policy with name {n} already exists. Please use a different name or delete the allowlist from the verifier."
            ),
            PolicyKind::MeasuredBoot if n == id => format!(
                "mb_policy with name {n} already exists. You can delete the mb_policy from the verifier."
            ),
            PolicyKind::MeasuredBoot => format!(
                "mb_policy with name {n} already exists. Please use a different name or delete the mb_policy from the verifier."
            ),
        })
    };
    let (name, text) = match (name, text) {
        (None, None) => return Ok((None, None)),
        (Some(n), None) => {
            if repo.policy_generation(kind, &n).await?.is_none() {
                return Err(ApiError::NotFound(match kind {
                    PolicyKind::Runtime => format!("Could not find IMA policy with name {n}!"),
                    PolicyKind::MeasuredBoot => {
                        format!("Could not find mb_policy with name {n}!")
                    }
                }));
            }
            return Ok((Some(n), None));
        }
        (n, Some(t)) => (n.unwrap_or_else(|| id.to_owned()), t),
    };
    if repo.policy_generation(kind, &name).await?.is_some() {
        return Err(taken(&name));
    }
    Ok((Some(name), Some(text)))
}

/// The runtime policy of a new agent (see [`resolve_policy`]).
async fn runtime_policy_for(
    state: &AppState,
    id: &str,
    request: &AddAgentRequest,
    new: &mut NewPolicies,
) -> Result<Option<String>, ApiError> {
    let name = request
        .runtime_policy_name
        .clone()
        .filter(|n| !n.is_empty());
    let text = if request.runtime_policy.trim().is_empty() {
        None
    } else {
        Some(
            policies::decode_runtime_policy(
                state,
                &request.runtime_policy,
                request.runtime_policy_key.as_deref(),
            )
            .await?,
        )
    };
    let (name, create) = resolve_policy(state, PolicyKind::Runtime, id, name, text).await?;
    new.runtime = name.clone().zip(create);
    Ok(name)
}

/// The measured-boot policy of a new agent (see [`resolve_policy`]).
async fn mb_policy_for(
    state: &AppState,
    id: &str,
    request: &AddAgentRequest,
    new: &mut NewPolicies,
) -> Result<Option<String>, ApiError> {
    let name = Some(request.mb_policy_name.clone()).filter(|n| !n.is_empty());
    let value = request.mb_policy.clone().map(serde_json::Value::String);
    let text = policies::mb_policy_text(state, value.as_ref())?;
    let (name, create) = resolve_policy(state, PolicyKind::MeasuredBoot, id, name, text).await?;
    new.mb = name.clone().zip(create.map(Some));
    Ok(name)
}

async fn owned(state: &AppState, id: &str) -> Result<VerifierAgent, ApiError> {
    match state.store.verifier().get(id).await? {
        None => Err(ApiError::NotFound(NOT_FOUND.into())),
        Some(a) if a.verifier_id != state.verifier_id => Err(ApiError::NotFound(
            "agent id associated to this verifier".into(),
        )),
        Some(a) => Ok(a),
    }
}

/// `GET /v2.x/agents/{id}`.
pub async fn status(state: &AppState, id: &str) -> Result<Response, ApiError> {
    check_agent_id(id)?;
    let agent = owned(state, id).await?;
    Ok(ok(agent_status(state, &agent)))
}

/// `GET /v2.x/agents/[?verifier=&bulk=True]`.
pub async fn list(
    state: &AppState,
    verifier: Option<&str>,
    bulk: bool,
) -> Result<Response, ApiError> {
    let agents = state.store.verifier().list(verifier).await?;
    if bulk {
        let map: BulkStatus = agents
            .iter()
            .map(|a| (a.agent_id.clone(), agent_status(state, a)))
            .collect();
        return Ok(ok(map));
    }
    Ok(ok(AgentList::from_ids(
        agents.into_iter().map(|a| a.agent_id),
    )))
}

/// `DELETE /v2.x/agents/{id}`: 200 when nothing polls it, else TERMINATED and 202.
pub async fn delete(state: &AppState, id: &str) -> Result<Response, ApiError> {
    check_agent_id(id)?;
    let repo = state.store.verifier();
    for _ in 0..8 {
        let agent = owned(state, id).await?;
        let current = agent.operational_state;
        let op = OperationalState::from_code(i64::from(current));
        if op == Some(OperationalState::Terminated) && state.supervisor.is_running(id) {
            return Ok(accepted());
        }
        if op.is_none_or(|s| s.deletable_at_once()) || !state.supervisor.is_running(id) {
            state.supervisor.command(id, Command::Stop);
            repo.delete(id).await?;
            return Ok(ok(EmptyResults {}));
        }
        if repo
            .compare_and_set_state(id, current, OperationalState::Terminated as i32)
            .await?
        {
            state.supervisor.command(id, Command::Terminate);
            return Ok(accepted());
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "agent {id} kept changing state during delete"
    )))
}

fn accepted() -> Response {
    envelope(
        StatusCode::ACCEPTED,
        &Envelope {
            code: 202,
            status: "Accepted".into(),
            results: EmptyResults {},
        },
    )
}

/// `PUT /v2.x/agents/{id}/stop`: TENANT_FAILED, polling cancelled.
pub async fn stop(state: &AppState, id: &str) -> Result<Response, ApiError> {
    check_agent_id(id)?;
    let repo = state.store.verifier();
    if !repo
        .set_state(id, OperationalState::TenantFailed as i32)
        .await?
    {
        return Err(ApiError::BadRequest(NO_ROW.into()));
    }
    state.supervisor.command(id, Command::Stop);
    Ok(ok(EmptyResults {}))
}

/// `PUT /v2.x/agents/{id}/reactivate`: START, polling restarts.
pub async fn reactivate(state: &AppState, id: &str) -> Result<Response, ApiError> {
    check_agent_id(id)?;
    let repo = state.store.verifier();
    if !repo.set_state(id, OperationalState::Start as i32).await? {
        return Err(ApiError::BadRequest(NO_ROW.into()));
    }
    let Some(agent) = repo.get(id).await? else {
        return Err(ApiError::BadRequest(NO_ROW.into()));
    };
    state.supervisor.spawn(agent);
    Ok(ok(EmptyResults {}))
}
