//! Per-request plumbing shared by every route: the sanitised `X-Request-ID` echo
//! (PROTOCOL.md §0.6), a tracing span with the outcome, the request timeout, and reading
//! a size-limited body.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use http_body_util::LengthLimitError;
use tracing::Instrument as _;

use crate::error::ApiError;

/// Longest request id echoed back.
const MAX_REQUEST_ID_CHARS: usize = 36;

/// Settings the per-request middleware needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Whole-request deadline.
    pub timeout: Duration,
}

/// Upstream's sanitising: keep word characters only, at most 36 of them.
pub fn sanitize_request_id(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .take(MAX_REQUEST_ID_CHARS)
        .collect()
}

/// Middleware: span + outcome log, request timeout, `X-Request-ID` echo.
pub async fn request_context(
    State(limits): State<RequestLimits>,
    req: Request,
    next: Next,
) -> Response {
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
    let outcome =
        tokio::time::timeout(limits.timeout, next.run(req).instrument(span.clone())).await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!(
                    timeout_s = limits.timeout.as_secs_f64(),
                    "request timed out"
                )
            });
            (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response()
        }
    };
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_is_sanitised_and_bounded() {
        assert_eq!(sanitize_request_id(b"ab-c_d!9"), "abc_d9");
        assert_eq!(sanitize_request_id(&[b'x'; 100]).len(), 36);
        assert_eq!(sanitize_request_id(b"\r\nX: y"), "Xy");
    }

    #[tokio::test]
    async fn body_limit_is_enforced() {
        let big = Body::from(vec![0u8; 2048]);
        assert!(matches!(
            read_body(big, 1024).await,
            Err(ApiError::PayloadTooLarge { limit: 1024 })
        ));
        let small = Body::from(vec![1u8; 10]);
        assert_eq!(read_body(small, 1024).await.unwrap().len(), 10);
    }
}
