//! `GET /version` (unversioned, PROTOCOL.md §1.1) and `GET /v2.x/agent/info` (≥ 2.2, §4.7).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use keylime_api::agent::AgentInfo;
use keylime_api::{AgentVersionInfo, ApiVersion};

use super::api::{PullApi, RequestVersion};
use super::respond;
use crate::quoting::enc_alg_name;

/// First version whose `enc_alg` carries the key size (`rsa2048`).
pub(super) const ENC_ALG_BITS_SINCE: ApiVersion = ApiVersion::new(2, 5);

pub(super) async fn version(State(api): State<Arc<PullApi>>) -> Response {
    let all: Vec<String> = api.versions.iter().map(ToString::to_string).collect();
    respond::ok(AgentVersionInfo {
        supported_version: all.last().cloned().unwrap_or_default(),
        supported_versions: Some(all),
    })
}

pub(super) async fn agent_info(
    State(api): State<Arc<PullApi>>,
    Extension(RequestVersion(version)): Extension<RequestVersion>,
) -> Response {
    respond::ok(AgentInfo {
        agent_uuid: api.agent_id.clone(),
        tpm_hash_alg: api.hash_alg.name().to_string(),
        tpm_enc_alg: enc_alg_name(&api.identity.ek, version >= ENC_ALG_BITS_SINCE),
        tpm_sign_alg: api.sign_alg.name().to_string(),
        ak_handle: api.tpm.ak_handle(),
    })
}
