//! Every way a registrar request can fail, and how each renders on the wire: v2 envelopes
//! for API errors, empty bodies for framework-level errors, and the `{"errors":[…]}`
//! document for authorization denials (PROTOCOL.md §0.2, §2.5).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keylime_api::{Envelope, ErrorDocument};

/// Longest client-supplied value echoed back in an error message.
const MAX_ECHO_CHARS: usize = 128;

/// A request failure with its HTTP rendering.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The registration body failed a check; the reason is returned to the client.
    #[error("Could not register agent with invalid data: {0}")]
    InvalidRegistration(String),
    /// The id is known with a different EK, EK certificate or AK.
    #[error("Agent re-registration with different TPM identity is forbidden for security reasons")]
    IdentityConflict,
    /// No record for this id.
    #[error("Agent with ID '{0}' not found")]
    AgentNotFound(String),
    /// The record exists but never completed activation.
    #[error("Agent with ID '{0}' has not been activated")]
    AgentNotActivated(String),
    /// The activation proof did not match; the record has been deleted.
    #[error(
        "Auth tag '{tag}' for agent '{agent_id}' does not match expected value. The agent has been \
         deleted from the database and will need to be restarted to reattempt registration"
    )]
    AuthTagMismatch {
        /// The tag received (truncated).
        tag: String,
        /// The agent id.
        agent_id: String,
    },
    /// The activation proof for a re-registration of an active agent did not match; the
    /// re-registration has been discarded, the active record kept.
    #[error(
        "Auth tag '{tag}' for agent '{agent_id}' does not match expected value. The \
         re-registration has been discarded; the agent's active registration is unchanged"
    )]
    HeldAuthTagMismatch {
        /// The tag received (truncated).
        tag: String,
        /// The agent id.
        agent_id: String,
    },
    /// Activation for an agent with no outstanding challenge (replay or double activation).
    #[error(
        "Agent '{0}' has no pending activation challenge (already activated or superseded); \
         register again to obtain a new challenge"
    )]
    NoPendingActivation(String),
    /// A malformed request body outside registration (for example activation).
    #[error("{0}")]
    BadRequest(String),
    /// The body exceeded the configured limit.
    #[error("Request body exceeds the {limit}-byte limit")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An admin route reached over plain HTTP (upstream: 400, empty body).
    #[error("route requires HTTPS")]
    TlsRequired,
    /// An admin route reached over HTTPS without a trusted client certificate.
    #[error("Action {action} requires admin authentication (mTLS certificate)")]
    AdminRequired {
        /// The action name, e.g. `list_agents`.
        action: &'static str,
    },
    /// No route matches the path.
    #[error("no route")]
    NoRoute,
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database cannot be reached (down, restarting, no connection free in time):
    /// 503 with `Retry-After`; details are logged, not returned.
    #[error("Service unavailable: the registrar's database cannot be reached; retry later")]
    Unavailable(#[source] keylime_store::StoreError),
    /// A server-side failure (database, randomness); details are logged, not returned.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

/// Seconds a client is asked to wait (`Retry-After`) when the database cannot be reached.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    /// Build an [`ApiError::AuthTagMismatch`], truncating the echoed tag.
    pub fn auth_tag_mismatch(tag: &str, agent_id: &str) -> Self {
        Self::AuthTagMismatch {
            tag: truncate(tag),
            agent_id: truncate(agent_id),
        }
    }

    /// Build an [`ApiError::HeldAuthTagMismatch`], truncating the echoed tag.
    pub fn held_tag_mismatch(tag: &str, agent_id: &str) -> Self {
        Self::HeldAuthTagMismatch {
            tag: truncate(tag),
            agent_id: truncate(agent_id),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRegistration(_)
            | Self::AuthTagMismatch { .. }
            | Self::HeldAuthTagMismatch { .. }
            | Self::BadRequest(_)
            | Self::TlsRequired => StatusCode::BAD_REQUEST,
            Self::IdentityConflict | Self::AdminRequired { .. } => StatusCode::FORBIDDEN,
            Self::AgentNotFound(_) | Self::AgentNotActivated(_) | Self::NoRoute => {
                StatusCode::NOT_FOUND
            }
            Self::NoPendingActivation(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Shorten client-supplied text before echoing it.
pub fn truncate(text: &str) -> String {
    text.chars().take(MAX_ECHO_CHARS).collect()
}

/// A store failure: 503 when the database cannot be reached, else 500.
impl From<keylime_store::StoreError> for ApiError {
    fn from(err: keylime_store::StoreError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable(err)
        } else {
            Self::Internal(err.into())
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::TlsRequired | Self::NoRoute | Self::MethodNotAllowed => {
                let mut resp = status.into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=UTF-8"),
                );
                resp
            }
            Self::AdminRequired { .. } => {
                let body = ErrorDocument::forbidden(self.to_string());
                json_response(status, &body, "application/json; charset=UTF-8")
            }
            Self::Unavailable(err) => {
                tracing::error!(error = %err, "database unavailable; answering 503");
                let mut resp = json_response(
                    status,
                    &Envelope::error(status.as_u16(), self.to_string()),
                    "application/json",
                );
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
                );
                resp
            }
            Self::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "internal error");
                json_response(
                    status,
                    &Envelope::error(status.as_u16(), self.to_string()),
                    "application/json",
                )
            }
            _ => json_response(
                status,
                &Envelope::error(status.as_u16(), self.to_string()),
                "application/json",
            ),
        }
    }
}

/// Serialise `body` as JSON with `status` and `content_type`.
pub fn json_response<T: serde::Serialize>(
    status: StatusCode,
    body: &T,
    content_type: &'static str,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp
        }
        Err(err) => {
            tracing::error!(error = %err, "serialising a response body failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        assert_eq!(
            ApiError::auth_tag_mismatch("ab", "A").to_string(),
            "Auth tag 'ab' for agent 'A' does not match expected value. The agent has been \
             deleted from the database and will need to be restarted to reattempt registration"
        );
        assert_eq!(
            ApiError::AgentNotFound("A".into()).to_string(),
            "Agent with ID 'A' not found"
        );
        assert_eq!(ApiError::IdentityConflict.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn echo_is_truncated() {
        let long = "x".repeat(10_000);
        let msg = ApiError::auth_tag_mismatch(&long, "A").to_string();
        assert!(msg.len() < 400, "{}", msg.len());
    }
}
