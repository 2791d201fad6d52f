//! `POST /v2.x/notifications/revocation` (PROTOCOL.md §7): the signature is checked
//! before answering; a valid notice answers 200 (`results: null`) and its actions run in
//! the background. A malformed body or an invalid/uncheckable signature answers 400 with
//! the reason and runs nothing (upstream's agent answers 200 and drops it in a worker;
//! no verifier acts on the difference).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keylime_payload::revocation::RevocationEnvelope;

use super::api::PullApi;
use super::respond;
use crate::revocation;

pub(super) async fn revocation(State(api): State<Arc<PullApi>>, body: Bytes) -> Response {
    tracing::info!(agent_id = api.agent_id, "received revocation");
    let envelope: RevocationEnvelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return respond::bad_request(format!("Invalid revocation body: {e}")),
    };
    let settings = api.revocation.clone();
    let verified = tokio::task::spawn_blocking(move || settings.verify(&envelope)).await;
    let msg = match verified {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => {
            tracing::error!(agent_id = api.agent_id, error = %e, "revocation rejected; no action taken");
            return respond::bad_request(e.to_string());
        }
        Err(e) => {
            tracing::error!(error = %e, "revocation check task failed");
            return respond::bad_request("revocation could not be checked");
        }
    };
    tracing::info!(
        agent_id = api.agent_id,
        "revocation signature valid; running actions"
    );
    let api2 = Arc::clone(&api);
    tokio::spawn(async move {
        let _one_at_a_time = api2.delivery.lock().await;
        let outcomes = revocation::run_actions(&api2.revocation, &msg).await;
        tracing::info!(
            agent_id = api2.agent_id,
            actions = outcomes.len(),
            "revocation actions done"
        );
    });
    respond::ok_null()
}
