//! API errors and how each is rendered (PROTOCOL.md §0.2, §0.7): v2 envelopes for
//! operation errors, the `{"errors":[…]}` document for 403, empty `text/html` bodies for
//! framework-level 404/405.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use keylime_api::{Envelope, ErrorDocument};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: 400 with the reason.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown agent (or one owned by another verifier): 404 with the reason.
    #[error("{0}")]
    NotFound(String),
    /// A required signature is missing or wrong: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Already exists: 409.
    #[error("{0}")]
    Conflict(String),
    /// Body larger than allowed: 413.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive in time: 408, and the connection is closed.
    #[error("request body not received within {} s", .timeout.as_secs_f64())]
    TimedOut { timeout: std::time::Duration },
    /// Too many such requests in progress: 429 with `Retry-After`.
    #[error("{reason}; retry later")]
    TooManyRequests {
        reason: String,
        retry_after_secs: u64,
    },
    /// Admin route without a trusted client certificate: 403.
    #[error("Action {action} requires admin authentication (mTLS certificate)")]
    AdminRequired { action: &'static str },
    /// No route matches the path.
    #[error("no route")]
    NoRoute,
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database cannot be reached (down, restarting, no connection free in time): 503
    /// with `Retry-After`; details are logged, not returned.
    #[error("Service unavailable: the verifier's database cannot be reached; retry later")]
    Unavailable(#[source] keylime_store::StoreError),
    /// Server-side failure; details are logged, not returned.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

/// Seconds a client is asked to wait (`Retry-After`) when the database cannot be reached.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl From<keylime_store::StoreError> for ApiError {
    fn from(e: keylime_store::StoreError) -> Self {
        match e {
            // The store checks every field before it writes: a value it refuses is the
            // client's input (a name or address longer than its column), never a 500.
            keylime_store::StoreError::InvalidField { .. } => ApiError::BadRequest(e.to_string()),
            // A database that cannot be reached is a passing condition: retry later.
            unreachable if unreachable.is_unavailable() => ApiError::Unavailable(unreachable),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// A JSON v2 envelope response.
pub fn envelope<T: serde::Serialize>(status: StatusCode, env: &Envelope<T>) -> Response {
    let body = serde_json::to_vec(env).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let simple = |code: StatusCode| envelope(code, &Envelope::error(code.as_u16(), &message));
        match self {
            ApiError::BadRequest(_) => simple(StatusCode::BAD_REQUEST),
            ApiError::NotFound(_) => simple(StatusCode::NOT_FOUND),
            ApiError::Conflict(_) => simple(StatusCode::CONFLICT),
            ApiError::Unauthorized(_) => simple(StatusCode::UNAUTHORIZED),
            ApiError::PayloadTooLarge { .. } => simple(StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::TimedOut { .. } => {
                let mut response = simple(StatusCode::REQUEST_TIMEOUT);
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                response
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => retry_after(simple(StatusCode::TOO_MANY_REQUESTS), retry_after_secs),
            ApiError::Unavailable(err) => {
                tracing::error!(error = %err, "database unavailable; answering 503");
                retry_after(
                    simple(StatusCode::SERVICE_UNAVAILABLE),
                    UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
            ApiError::AdminRequired { .. } => {
                let body =
                    serde_json::to_vec(&ErrorDocument::forbidden(message)).unwrap_or_default();
                (
                    StatusCode::FORBIDDEN,
                    [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                    body,
                )
                    .into_response()
            }
            ApiError::NoRoute | ApiError::MethodNotAllowed => {
                let code = if matches!(self, ApiError::NoRoute) {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::METHOD_NOT_ALLOWED
                };
                (
                    code,
                    [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
                    "",
                )
                    .into_response()
            }
            ApiError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                simple(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// `response` with a `Retry-After` of `secs`.
fn retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    response
}
