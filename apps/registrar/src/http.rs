//! Per-request plumbing from `keylime-web`, with body errors mapped to this service's
//! [`ApiError`].

use axum::body::{Body, Bytes};
use keylime_web::request::{BodyError, read_limited};
pub use keylime_web::request::{RequestLimits, request_context};

use crate::error::ApiError;

/// Read the whole body, refusing more than `limit` bytes (413).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    read_limited(body, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
        BodyError::Read(_) | BodyError::TimedOut { .. } => ApiError::BadRequest(e.to_string()),
    })
}
