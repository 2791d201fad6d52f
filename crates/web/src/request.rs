//! Per-request plumbing every service shares: the sanitised `X-Request-ID` echo (PROTOCOL.md
//! §0.6), a tracing span per request with its outcome, an optional whole-request deadline,
//! and reading a size-limited body.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError};
use tracing::Instrument as _;

/// Longest request id echoed back (upstream).
const MAX_REQUEST_ID_CHARS: usize = 36;

/// Settings of [`request_context`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLimits {
    /// Whole-request deadline; `None` leaves timing to the handlers.
    pub timeout: Option<Duration>,
}

/// Upstream's sanitising: keep word characters only, at most 36 of them.
pub fn sanitize_request_id(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .take(MAX_REQUEST_ID_CHARS)
        .collect()
}

/// Middleware (`axum::middleware::from_fn_with_state`): a span with method, path and
/// request id (and an empty `agent_id` for handlers to record), the deadline, one
/// "request finished" line, and the `X-Request-ID` echo.
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
    let run = next.run(req).instrument(span.clone());
    let mut response = match limits.timeout {
        None => run.await,
        Some(timeout) => match tokio::time::timeout(timeout, run).await {
            Ok(response) => response,
            Err(_) => {
                span.in_scope(|| {
                    tracing::warn!(timeout_s = timeout.as_secs_f64(), "request timed out")
                });
                // The body may be half read: the connection cannot carry another request.
                (
                    StatusCode::REQUEST_TIMEOUT,
                    [(axum::http::header::CONNECTION, "close")],
                    "request timed out",
                )
                    .into_response()
            }
        },
    };
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

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit was sent (413).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive within the deadline (408; the connection is closed).
    #[error("request body not received within {} s", .timeout.as_secs_f64())]
    TimedOut {
        /// The deadline.
        timeout: Duration,
    },
    /// The connection failed while reading.
    #[error("Could not read request body: {0}")]
    Read(String),
}

/// Reads the whole body, refusing more than `limit` bytes without buffering them.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(err) => Err(BodyError::Read(err.to_string())),
    }
}

/// [`read_limited`] with a deadline for the whole body: a client trickling bytes cannot
/// hold the request (and the memory read so far) longer than `timeout`.
pub async fn read_limited_within(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    tokio::time::timeout(timeout, read_limited(body, limit))
        .await
        .unwrap_or(Err(BodyError::TimedOut { timeout }))
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
            read_limited(big, 1024).await,
            Err(BodyError::TooLarge { limit: 1024 })
        ));
        let small = Body::from(vec![1u8; 10]);
        assert_eq!(read_limited(small, 1024).await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        // one byte arrives, then nothing more, ever
        let deadline = Duration::from_millis(200);
        let read = read_limited_within(Body::new(Trickle(true)), 1024, deadline).await;
        assert!(
            matches!(read, Err(BodyError::TimedOut { timeout }) if timeout == deadline),
            "{read:?}"
        );
    }

    struct Trickle(bool);

    impl axum::body::HttpBody for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if std::mem::take(&mut self.0) {
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"{")))))
            } else {
                std::task::Poll::Pending
            }
        }
    }
}
