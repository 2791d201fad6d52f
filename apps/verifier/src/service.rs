//! The axum application: the single dispatcher that resolves a route,
//! enforces PROTOCOL.md §0.7 (every agent route needs a trusted client certificate) and
//! calls one operation in [`crate::agents`], [`crate::policies`], [`crate::verify`] or
//! [`crate::push`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::{RequestLimits, read_body, read_body_within, request_context};
use crate::listener::ConnectionInfo;
use crate::push::MAX_SESSION_BODY_BYTES;
use crate::routes::{PolicyOp, Route, resolve};
use crate::state::AppState;
use crate::{agents, policies, push, verify};
use keylime_store::PolicyKind;

/// Build the router over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            RequestLimits::default(),
            request_context,
        ))
}

async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match handle(&state, req).await {
        Ok(resp) => resp,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let route = resolve(req.method(), req.uri().path(), req.uri().query())?;
    if let Some(action) = route.admin_action() {
        let admin = req
            .extensions()
            .get::<ConnectionInfo>()
            .is_some_and(|c| c.tls && c.peer_cert.is_some());
        if !admin {
            return Err(ApiError::AdminRequired { action });
        }
    }
    if let Some(agent_id) = route.agent_id() {
        tracing::Span::current().record("agent_id", agent_id);
    }
    match route {
        Route::Version => Ok(agents::version()),
        Route::Root => Ok(agents::root()),
        Route::List { verifier, bulk } => agents::list(state, verifier.as_deref(), bulk).await,
        Route::Add(id) => {
            let body = read_body(req.into_body(), state.max_body_bytes).await?;
            agents::add(state, &id, &body).await
        }
        Route::Status(id) => agents::status(state, &id).await,
        Route::Delete(id) => agents::delete(state, &id).await,
        Route::Reactivate(id) => agents::reactivate(state, &id).await,
        Route::Stop(id) => agents::stop(state, &id).await,
        Route::VerifyIdentity => verify::identity(state, req.uri()).await,
        Route::VerifyEvidence => {
            // A slot is taken before the body is read, so slots bound memory as well as CPU.
            let slot = state
                .evidence
                .admit(req.extensions().get::<ConnectionInfo>())?;
            let limits = &state.evidence.settings;
            let body =
                read_body_within(req.into_body(), limits.max_body_bytes, limits.body_timeout)
                    .await?;
            // Policy preparation and the IMA/boot-log checks are CPU work: off the async
            // workers.
            let state = Arc::clone(state);
            tokio::task::spawn_blocking(move || {
                let response = verify::evidence(&state, &body);
                drop(slot);
                response
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
        }
        Route::CreateSession => {
            let ip = req
                .extensions()
                .get::<ConnectionInfo>()
                .map(|c| c.remote.ip());
            let body = read_body(req.into_body(), MAX_SESSION_BODY_BYTES).await?;
            Ok(push::sessions::create(state, ip, &body))
        }
        Route::ProveSession(id) => {
            let body = read_body(req.into_body(), MAX_SESSION_BODY_BYTES).await?;
            push::sessions::prove(state, &id, &body).await
        }
        Route::ListPolicies(kind) => policies::list(state, kind).await,
        Route::Policy { kind, name, op } => match op {
            PolicyOp::Show => policies::show(state, kind, &name).await,
            PolicyOp::Delete => policies::delete(state, kind, &name).await,
            PolicyOp::Create | PolicyOp::Update => {
                let body = read_body(req.into_body(), state.max_body_bytes).await?;
                let create = op == PolicyOp::Create;
                match kind {
                    PolicyKind::Runtime => policies::put_runtime(state, &name, &body, create).await,
                    PolicyKind::MeasuredBoot => policies::put_mb(state, &name, &body, create).await,
                }
            }
        },
    }
}
