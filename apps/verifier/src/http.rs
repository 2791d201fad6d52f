//! Per-request plumbing from `keylime-web`, with body errors mapped to this service's
//! [`ApiError`].

use axum::body::{Body, Bytes};
use std::time::Duration;

use keylime_web::request::{BodyError, read_limited, read_limited_within};
pub use keylime_web::request::{RequestLimits, request_context};

use crate::error::ApiError;

/// Read the whole body, refusing more than `limit` bytes (413).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    read_limited(body, limit).await.map_err(api_error)
}

/// [`read_body`] that gives up (408) when the whole body has not arrived within `timeout`.
pub async fn read_body_within(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    read_limited_within(body, limit, timeout)
        .await
        .map_err(api_error)
}

fn api_error(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
        BodyError::TimedOut { timeout } => ApiError::TimedOut { timeout },
        BodyError::Read(_) => ApiError::BadRequest(e.to_string()),
    }
}
