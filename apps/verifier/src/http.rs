//! Per-request plumbing: the sanitised `X-Request-ID` echo (PROTOCOL.md §0.6), a tracing
//! span with the outcome, and reading a size-limited body.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt as _, LengthLimitError};
use tracing::Instrument as _;

use crate::error::ApiError;

/// Keep word characters only, at most 36 (upstream).
pub fn sanitize_request_id(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .take(36)
        .collect()
}

/// Middleware: span + outcome log, `X-Request-ID` echo.
pub async fn request_context(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .map(|v| sanitize_request_id(v.as_bytes()))
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        agent_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Read the whole body, refusing more than `limit` bytes (413).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge { limit }),
        Err(err) => Err(ApiError::BadRequest(format!(
            "Could not read request body: {err}"
        ))),
    }
}
