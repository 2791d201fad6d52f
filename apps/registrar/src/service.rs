//! The axum application: the single dispatcher that resolves a route,
//! enforces the transport/authorization rules of PROTOCOL.md §0.6–§0.7 (admin routes need
//! HTTPS and a trusted client certificate), refuses registration and activation bodies
//! not declared as JSON (as upstream does), and calls one operation in [`crate::agents`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::agents;
use crate::error::ApiError;
use crate::http::{RequestLimits, read_body, request_context};
use crate::listener::ConnectionInfo;
use crate::routes::{Route, resolve};
use crate::state::AppState;

/// Build the router over `state`.
pub fn app(state: Arc<AppState>, limits: RequestLimits) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            limits,
            request_context,
        ))
}

async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match handle(&state, req).await {
        Ok(resp) => resp,
        Err(err) => err.into_response(),
    }
}

/// Why a registration or activation without a JSON body type is refused.
const NOT_JSON: &str = "the request body must be a JSON document with Content-Type 'application/json' (or a '+json' type)";

/// Upstream's test for a JSON body (`application/json`, `application/…+json`): without
/// it upstream ignores the body, so the registration or activation cannot succeed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some("json") => true,
        Some(sub) => sub.strip_suffix("+json").is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || matches!(b, b'-' | b'.'))
        }),
        None => false,
    }
}

async fn handle(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let route = resolve(req.method(), req.uri().path())?;
    if let Some(action) = route.admin_action() {
        let conn = req.extensions().get::<ConnectionInfo>();
        match conn {
            Some(c) if c.tls && c.peer_cert.is_some() => {}
            Some(c) if c.tls => return Err(ApiError::AdminRequired { action }),
            _ => return Err(ApiError::TlsRequired),
        }
    }
    if let Some(agent_id) = route.agent_id() {
        tracing::Span::current().record("agent_id", agent_id);
    }
    match route {
        Route::Version => Ok(agents::version()),
        Route::ListAgents => agents::list(state).await,
        Route::ShowAgent(id) => agents::show(state, &id).await,
        Route::DeleteAgent(id) => agents::delete(state, &id).await,
        Route::Register(id) => {
            if !is_json(req.headers()) {
                return Err(ApiError::InvalidRegistration(NOT_JSON.into()));
            }
            let body = read_body(req.into_body(), state.max_body_bytes).await?;
            agents::register(state, id.as_deref(), &body).await
        }
        Route::Activate(id) => {
            if !is_json(req.headers()) {
                return Err(ApiError::BadRequest(NOT_JSON.into()));
            }
            let body = read_body(req.into_body(), state.max_body_bytes).await?;
            agents::activate(state, &id, &body).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        for good in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(with(good), "{good}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/+json",
            "json",
        ] {
            assert!(!with(bad), "{bad}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
