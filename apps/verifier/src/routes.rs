//! The verifier's route table (PROTOCOL.md §5.1, §0.4): every 2.x prefix (`/v2`,
//! `/v2.0`…`/v2.6`), the push sessions under `/v3` and `/v3.0` (§6.1), optional trailing slash, query parameters of the list route. Agent
//! ids and policy names in the path are percent-decoded (a malformed escape is a 400).

use axum::http::Method;

use keylime_store::PolicyKind;

use crate::error::ApiError;

/// One verifier operation, resolved from the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /version`, `/versions`, `/v2.x/` (§11 Q17: 200 instead of 500).
    Version,
    /// `GET /` → 307 `/v3.0/`.
    Root,
    /// `GET /v2.x/agents/[?verifier=&bulk=True]`.
    List {
        verifier: Option<String>,
        bulk: bool,
    },
    /// `POST /v2.x/agents/{id}`.
    Add(String),
    /// `GET /v2.x/agents/{id}`.
    Status(String),
    /// `DELETE /v2.x/agents/{id}`.
    Delete(String),
    /// `PUT /v2.x/agents/{id}/reactivate`.
    Reactivate(String),
    /// `PUT /v2.x/agents/{id}/stop`.
    Stop(String),
    /// `GET /v2.x/verify/identity` (public).
    VerifyIdentity,
    /// `POST /v2.x/verify/evidence` (public).
    VerifyEvidence,
    /// `POST /v3[.0]/sessions` (public): a proof-of-possession challenge.
    CreateSession,
    /// `PATCH /v3[.0]/sessions/{id}` (public): the proof.
    ProveSession(String),
    /// `GET /v2.x/allowlists/` or `/v2.x/mbpolicies/`.
    ListPolicies(PolicyKind),
    /// `GET|POST|PUT|DELETE /v2.x/allowlists/{name}` or `/v2.x/mbpolicies/{name}`.
    Policy {
        kind: PolicyKind,
        name: String,
        op: PolicyOp,
    },
}

/// What a request does to a named policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOp {
    Show,
    Create,
    Update,
    Delete,
}

impl Route {
    /// The upstream action name of an admin route; `None` if public.
    pub fn admin_action(&self) -> Option<&'static str> {
        match self {
            Route::Version
            | Route::Root
            | Route::VerifyIdentity
            | Route::VerifyEvidence
            | Route::CreateSession
            | Route::ProveSession(_) => None,
            Route::List { .. } => Some("list_agents"),
            Route::Add(_) => Some("create_agent"),
            Route::Status(_) => Some("show_agent"),
            Route::Delete(_) => Some("delete_agent"),
            Route::Reactivate(_) => Some("reactivate_agent"),
            Route::Stop(_) => Some("stop_agent"),
            Route::ListPolicies(PolicyKind::Runtime) => Some("list_runtime_policies"),
            Route::ListPolicies(PolicyKind::MeasuredBoot) => Some("list_mb_policies"),
            Route::Policy { kind, op, .. } => Some(match (kind, op) {
                (PolicyKind::Runtime, PolicyOp::Show) => "show_runtime_policy",
                (PolicyKind::Runtime, PolicyOp::Create) => "create_runtime_policy",
                (PolicyKind::Runtime, PolicyOp::Update) => "update_runtime_policy",
                (PolicyKind::Runtime, PolicyOp::Delete) => "delete_runtime_policy",
                (PolicyKind::MeasuredBoot, PolicyOp::Show) => "show_mb_policy",
                (PolicyKind::MeasuredBoot, PolicyOp::Create) => "create_mb_policy",
                (PolicyKind::MeasuredBoot, PolicyOp::Update) => "update_mb_policy",
                (PolicyKind::MeasuredBoot, PolicyOp::Delete) => "delete_mb_policy",
            }),
        }
    }

    /// The agent id the route is about, if any.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Route::Add(id)
            | Route::Status(id)
            | Route::Delete(id)
            | Route::Reactivate(id)
            | Route::Stop(id) => Some(id),
            _ => None,
        }
    }
}

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

/// `v3` or `v3.0` (PROTOCOL.md §0.4).
fn is_v3_prefix(segment: &str) -> bool {
    matches!(segment, "v3" | "v3.0")
}

/// The value of `key` in a query string (no percent-decoding needed for our keys' values).
fn query_param<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// An agent id or policy name from the path, percent-decoded as upstream's tornado
/// handlers decode theirs.
fn decoded(segment: &str) -> Result<String, ApiError> {
    keylime_api::decode_segment(segment).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Resolve a request line to a [`Route`].
pub fn resolve(method: &Method, path: &str, query: Option<&str>) -> Result<Route, ApiError> {
    if path == "/" {
        return only(method, &[Method::GET], Route::Root);
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ApiError::NoRoute);
    }
    match segments.as_slice() {
        ["version" | "versions"] => only(method, &[Method::GET], Route::Version),
        [p] if is_v2_prefix(p) => only(method, &[Method::GET], Route::Version),
        [p, "agents"] if is_v2_prefix(p) => {
            let verifier = query_param(query, "verifier")
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            let bulk = query_param(query, "bulk").is_some_and(|b| b.eq_ignore_ascii_case("true"));
            only(method, &[Method::GET], Route::List { verifier, bulk })
        }
        [p, "agents", id] if is_v2_prefix(p) => {
            let id = decoded(id)?;
            match *method {
                Method::GET => Ok(Route::Status(id)),
                Method::POST => Ok(Route::Add(id)),
                Method::DELETE => Ok(Route::Delete(id)),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        [p, "verify", "identity"] if is_v2_prefix(p) => {
            only(method, &[Method::GET], Route::VerifyIdentity)
        }
        [p, "verify", "evidence"] if is_v2_prefix(p) => {
            only(method, &[Method::POST], Route::VerifyEvidence)
        }
        [p, kind] if is_v2_prefix(p) && policy_kind(kind).is_some() => only(
            method,
            &[Method::GET],
            Route::ListPolicies(policy_kind(kind).unwrap_or(PolicyKind::Runtime)),
        ),
        [p, kind, name] if is_v2_prefix(p) => {
            let Some(kind) = policy_kind(kind) else {
                return Err(ApiError::NoRoute);
            };
            let op = match *method {
                Method::GET => PolicyOp::Show,
                Method::POST => PolicyOp::Create,
                Method::PUT => PolicyOp::Update,
                Method::DELETE => PolicyOp::Delete,
                _ => return Err(ApiError::MethodNotAllowed),
            };
            Ok(Route::Policy {
                kind,
                name: decoded(name)?,
                op,
            })
        }
        [p, "agents", id, "reactivate"] if is_v2_prefix(p) => {
            only(method, &[Method::PUT], Route::Reactivate(decoded(id)?))
        }
        [p, "agents", id, "stop"] if is_v2_prefix(p) => {
            only(method, &[Method::PUT], Route::Stop(decoded(id)?))
        }
        [p, "sessions"] if is_v3_prefix(p) => only(method, &[Method::POST], Route::CreateSession),
        [p, "sessions", id] if is_v3_prefix(p) => {
            only(method, &[Method::PATCH], Route::ProveSession(decoded(id)?))
        }
        _ => Err(ApiError::NoRoute),
    }
}

fn policy_kind(segment: &str) -> Option<PolicyKind> {
    match segment {
        "allowlists" => Some(PolicyKind::Runtime),
        "mbpolicies" => Some(PolicyKind::MeasuredBoot),
        _ => None,
    }
}

fn only(method: &Method, allowed: &[Method], route: Route) -> Result<Route, ApiError> {
    if allowed.contains(method) {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_for_every_prefix() {
        for p in ["v2", "v2.0", "v2.1", "v2.5", "v2.6"] {
            assert_eq!(
                resolve(
                    &Method::GET,
                    &format!("/{p}/agents/"),
                    Some("bulk=True&verifier=default")
                )
                .unwrap(),
                Route::List {
                    verifier: Some("default".into()),
                    bulk: true
                }
            );
            assert_eq!(
                resolve(&Method::PUT, &format!("/{p}/agents/A/stop"), None).unwrap(),
                Route::Stop("A".into())
            );
        }
        assert_eq!(
            resolve(&Method::GET, "/v2.6/agents", None).unwrap(),
            Route::List {
                verifier: None,
                bulk: false
            }
        );
        for bad in [
            "/v2.7/agents",
            "/v1.0/agents",
            "/v3.0/agents/A",
            "/v2//agents",
            "/agents",
        ] {
            assert!(
                matches!(resolve(&Method::GET, bad, None), Err(ApiError::NoRoute)),
                "{bad}"
            );
        }
        assert!(matches!(
            resolve(&Method::GET, "/v2.6/agents/A/stop", None),
            Err(ApiError::MethodNotAllowed)
        ));
        for p in ["v3", "v3.0"] {
            assert_eq!(
                resolve(&Method::POST, &format!("/{p}/sessions"), None).unwrap(),
                Route::CreateSession
            );
            assert_eq!(
                resolve(&Method::PATCH, &format!("/{p}/sessions/s1/"), None).unwrap(),
                Route::ProveSession("s1".into())
            );
        }
        assert!(matches!(
            resolve(&Method::POST, "/v3.1/sessions", None),
            Err(ApiError::NoRoute)
        ));
        assert!(matches!(
            resolve(&Method::GET, "/v3/sessions/s1", None),
            Err(ApiError::MethodNotAllowed)
        ));
        assert_eq!(
            resolve(&Method::GET, "/versions", None).unwrap(),
            Route::Version
        );
        assert_eq!(
            resolve(&Method::GET, "/v2.6/allowlists/", None).unwrap(),
            Route::ListPolicies(PolicyKind::Runtime)
        );
        assert_eq!(
            resolve(&Method::PUT, "/v2.1/mbpolicies/p1", None).unwrap(),
            Route::Policy {
                kind: PolicyKind::MeasuredBoot,
                name: "p1".into(),
                op: PolicyOp::Update
            }
        );
        assert!(matches!(
            resolve(&Method::PATCH, "/v2.6/allowlists/p1", None),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            resolve(&Method::GET, "/v2.6/other/p1", None),
            Err(ApiError::NoRoute)
        ));
    }
}
