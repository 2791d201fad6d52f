//! The registrar's route table (PROTOCOL.md §2.1, §0.4): maps a method and path to one
//! operation. Every 2.x prefix (`/v2`, `/v2.0`…`/v2.6`) is served; a trailing slash is
//! optional; v3 paths and unknown minors answer 404 (no 500s, §11 Q7). Agent ids in the
//! path are percent-decoded (a malformed escape is a 400).

use axum::http::Method;

use crate::error::ApiError;

/// One registrar operation, resolved from the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /version` (and `GET /v2.x/`).
    Version,
    /// `GET /v2.x/agents` (admin).
    ListAgents,
    /// `POST /v2.x/agents[/{id}]`; `None` = id from the body.
    Register(Option<String>),
    /// `PUT /v2.x/agents/{id}`, `PUT|POST /v2.x/agents/{id}/activate`.
    Activate(String),
    /// `GET /v2.x/agents/{id}` (admin).
    ShowAgent(String),
    /// `DELETE /v2.x/agents/{id}` (admin).
    DeleteAgent(String),
}

impl Route {
    /// The upstream action name of an admin route (for the 403 detail), `None` if public.
    pub fn admin_action(&self) -> Option<&'static str> {
        match self {
            Route::ListAgents => Some("list_agents"),
            Route::ShowAgent(_) => Some("show_agent"),
            Route::DeleteAgent(_) => Some("delete_agent"),
            Route::Version | Route::Register(_) | Route::Activate(_) => None,
        }
    }

    /// The agent id the route is about, if any (for logs).
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Route::Register(id) => id.as_deref(),
            Route::Activate(id) | Route::ShowAgent(id) | Route::DeleteAgent(id) => Some(id),
            Route::Version | Route::ListAgents => None,
        }
    }
}

/// Whether `segment` is a routed 2.x prefix: `v2` or `v2.0`…`v2.6` (canonical digits only).
fn is_v2_prefix(segment: &str) -> bool {
    match segment.strip_prefix("v2") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .and_then(|minor| {
                let n = minor.parse::<u8>().ok()?;
                (n.to_string() == minor).then_some(n)
            })
            .is_some_and(keylime_api::version::is_routed_v2_minor),
        None => false,
    }
}

/// An agent id from the path, percent-decoded as upstream's tornado handlers decode theirs.
fn path_id(segment: &str) -> Result<String, ApiError> {
    keylime_api::decode_segment(segment).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Resolve a request line to a [`Route`], or the framework error upstream would give.
pub fn resolve(method: &Method, path: &str) -> Result<Route, ApiError> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ApiError::NoRoute);
    }
    let only = |allowed: &[Method], route: Route| {
        if allowed.contains(method) {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    match segments.as_slice() {
        ["version"] => only(&[Method::GET], Route::Version),
        [prefix] if is_v2_prefix(prefix) => only(&[Method::GET], Route::Version),
        [prefix, "agents"] if is_v2_prefix(prefix) => match *method {
            Method::GET => Ok(Route::ListAgents),
            Method::POST => Ok(Route::Register(None)),
            _ => Err(ApiError::MethodNotAllowed),
        },
        [prefix, "agents", id] if is_v2_prefix(prefix) => {
            let id = path_id(id)?;
            match *method {
                Method::GET => Ok(Route::ShowAgent(id)),
                Method::POST => Ok(Route::Register(Some(id))),
                Method::PUT => Ok(Route::Activate(id)),
                Method::DELETE => Ok(Route::DeleteAgent(id)),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        [prefix, "agents", id, "activate"] if is_v2_prefix(prefix) => {
            only(&[Method::PUT, Method::POST], Route::Activate(path_id(id)?))
        }
        _ => Err(ApiError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str) -> Route {
        resolve(&method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    #[test]
    fn every_v2_prefix_and_trailing_slash() {
        for prefix in ["v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6"] {
            assert_eq!(
                ok(Method::GET, &format!("/{prefix}/agents")),
                Route::ListAgents
            );
            assert_eq!(
                ok(Method::GET, &format!("/{prefix}/agents/")),
                Route::ListAgents
            );
            assert_eq!(
                ok(Method::PUT, &format!("/{prefix}/agents/A/activate/")),
                Route::Activate("A".into())
            );
        }
        for bad in [
            "/v2.7/agents",
            "/v2.06/agents",
            "/v2.+1/agents",
            "/v1.0/agents",
            "/v3/agents",
            "/v3.0/agents/A",
            "/v2.x/agents",
            "/agents",
            "/v2//agents",
            "/v2/agents/A/B",
        ] {
            assert!(
                matches!(resolve(&Method::GET, bad), Err(ApiError::NoRoute)),
                "{bad}"
            );
        }
    }

    #[test]
    fn methods_map_to_actions() {
        assert_eq!(
            ok(Method::POST, "/v2.6/agents/A"),
            Route::Register(Some("A".into()))
        );
        assert_eq!(ok(Method::POST, "/v2.6/agents"), Route::Register(None));
        assert_eq!(
            ok(Method::PUT, "/v2.6/agents/A"),
            Route::Activate("A".into())
        );
        assert_eq!(
            ok(Method::POST, "/v2.6/agents/A/activate"),
            Route::Activate("A".into())
        );
        assert_eq!(
            ok(Method::GET, "/v2.6/agents/A"),
            Route::ShowAgent("A".into())
        );
        assert_eq!(
            ok(Method::DELETE, "/v2/agents/A"),
            Route::DeleteAgent("A".into())
        );
        assert_eq!(ok(Method::GET, "/version"), Route::Version);
        assert_eq!(ok(Method::GET, "/version/"), Route::Version);
        assert!(matches!(
            resolve(&Method::POST, "/version"),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            resolve(&Method::PATCH, "/v2.6/agents/A"),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            resolve(&Method::GET, "/v2.6/agents/A/activate"),
            Err(ApiError::MethodNotAllowed)
        ));
    }

    #[test]
    fn path_ids_are_percent_decoded() {
        assert_eq!(
            ok(Method::GET, "/v2.6/agents/%41BC"),
            Route::ShowAgent("ABC".into())
        );
        assert_eq!(
            ok(Method::PUT, "/v2.6/agents/%C3%A4gent2/activate"),
            Route::Activate("ägent2".into())
        );
        assert!(matches!(
            resolve(&Method::GET, "/v2.6/agents/%zz"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn admin_actions() {
        assert_eq!(Route::ListAgents.admin_action(), Some("list_agents"));
        assert_eq!(Route::Activate("A".into()).admin_action(), None);
    }
}
