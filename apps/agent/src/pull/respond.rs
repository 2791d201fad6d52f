//! The v2 JSON envelope for every answer of the pull API (PROTOCOL.md §0.2): errors are
//! `{"code","status":<message>,"results":{}}`, body-less successes carry
//! `"results": null` as upstream's Rust agent does (§11 Q5).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keylime_api::Envelope;
use serde::Serialize;

/// `200` with `results`.
pub fn ok<T: Serialize>(results: T) -> Response {
    json(StatusCode::OK, &Envelope::ok(results))
}

/// `200` with `"results": null`.
pub fn ok_null() -> Response {
    json(StatusCode::OK, &Envelope::ok(serde_json::Value::Null))
}

/// An error envelope with `status` = `message`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    json(status, &Envelope::error(status.as_u16(), message))
}

/// 400 with a reason, logged at warn.
pub fn bad_request(message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::warn!(reason = %message, "returning 400");
    error(StatusCode::BAD_REQUEST, message)
}

/// 405 with `Allow`.
pub fn method_not_allowed(message: &str, allow: &'static str) -> Response {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, message);
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
