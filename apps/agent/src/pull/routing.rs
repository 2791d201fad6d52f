//! Routes per served API version and the answers for everything else (PROTOCOL.md §4.1):
//! an unserved `/vM.m/…` → 400 `API version not supported: vM.m`; an unknown path → 400
//! for GET/POST, 405 with `Allow` for other methods (upstream's texts).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use keylime_api::ApiVersion;

use super::api::{MAX_BODY_BYTES, PullApi, RequestVersion};
use super::{info, keys, notifications, quotes, respond};

/// First version with `/agent/info`.
const AGENT_INFO_SINCE: ApiVersion = ApiVersion::new(2, 2);

/// The complete router of the pull API.
pub fn router(api: Arc<PullApi>) -> Router {
    let mut app = Router::new().route("/version", get(info::version));
    for &version in &api.versions {
        let mut scope = Router::new()
            .route("/quotes/identity", get(quotes::identity))
            .route("/quotes/integrity", get(quotes::integrity))
            .route("/keys/pubkey", get(keys::pubkey))
            .route("/keys/ukey", post(keys::ukey))
            .route("/keys/vkey", post(keys::vkey))
            .route("/keys/verify", get(keys::verify))
            .route("/notifications/revocation", post(notifications::revocation));
        if version >= AGENT_INFO_SINCE {
            scope = scope.route("/agent/info", get(info::agent_info));
        }
        let scope = scope.layer(axum::Extension(RequestVersion(version)));
        app = app.nest(&format!("/v{version}"), scope);
    }
    app.fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// `M.m` from a path starting `/vM.m` (and then `/` or the end).
fn path_version(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v")?;
    let segment = rest.split('/').next()?;
    let (major, minor) = segment.split_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then_some(segment)
}

async fn fallback(State(api): State<Arc<PullApi>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if let Some(segment) = path_version(path) {
        let served = segment
            .parse::<ApiVersion>()
            .is_ok_and(|v| api.versions.contains(&v));
        if !served {
            return respond::bad_request(format!("API version not supported: v{segment}"));
        }
        return match method {
            Method::GET => {
                respond::bad_request("Not Implemented: Use /agent, /keys, or /quotes interfaces")
            }
            Method::POST => {
                respond::bad_request("Not Implemented: Use /keys or /notifications interfaces")
            }
            _ => respond::method_not_allowed("Method is not supported", "GET, POST"),
        };
    }
    let versions: Vec<String> = api.versions.iter().map(|v| format!("/v{v}")).collect();
    let message = format!(
        "Not Implemented: Use {} or /version interfaces",
        versions.join(", ")
    );
    match method {
        Method::GET | Method::POST => respond::bad_request(message),
        _ => respond::method_not_allowed("Method is not supported", "GET, POST"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_segment_is_recognised() {
        assert_eq!(path_version("/v2.6/keys/pubkey"), Some("2.6"));
        assert_eq!(path_version("/v500.440/x"), Some("500.440"));
        assert_eq!(path_version("/v2.0"), Some("2.0"));
        assert_eq!(path_version("/v2/keys"), None);
        assert_eq!(path_version("/version"), None);
        assert_eq!(path_version("/vx.1/"), None);
    }
}
