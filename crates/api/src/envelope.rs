//! The v2 response envelope `{"code", "status", "results"}` (PROTOCOL.md §0.2) and the
//! JSON error document the web framework uses for 401/403 denials.
//!
//! Decoding tolerates `"results": null` and a missing `results` (the Rust agent sends
//! `null` for body-less successes), mapping both to `T::default()`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A v2 response: `code` repeats the HTTP status, `status` is a human string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: DeserializeOwned + Default"
))]
pub struct Envelope<T> {
    /// HTTP status code, repeated.
    pub code: u16,
    /// `"Success"` on success; the error message otherwise.
    pub status: String,
    /// The payload; `{}` on errors.
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: T,
}

/// `results` of errors and of body-less successes: serialises as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmptyResults {}

impl<T> Envelope<T> {
    /// A 200 "Success" envelope carrying `results`.
    pub fn ok(results: T) -> Self {
        Self::success(200, results)
    }

    /// A success envelope with another 2xx code.
    pub fn success(code: u16, results: T) -> Self {
        Self {
            code,
            status: "Success".to_owned(),
            results,
        }
    }

    /// Whether `code` is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl Envelope<EmptyResults> {
    /// An error envelope: `status` is the message, `results` is `{}`.
    pub fn error(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status: message.into(),
            results: EmptyResults {},
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `{"errors":[…]}`: the body of framework authentication/authorization denials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDocument {
    /// The errors; upstream sends exactly one.
    pub errors: Vec<ErrorObject>,
}

/// One error object: status as a string, a title and a detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorObject {
    /// HTTP status as a decimal string, e.g. `"403"`.
    pub status: String,
    /// Reason phrase, e.g. `"Forbidden"`.
    pub title: String,
    /// Human explanation.
    pub detail: String,
}

impl ErrorDocument {
    /// A 403 Forbidden document with `detail`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::single("403", "Forbidden", detail)
    }

    /// A 401 Unauthorized document with `detail`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::single("401", "Unauthorized", detail)
    }

    fn single(status: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            errors: vec![ErrorObject {
                status: status.to_owned(),
                title: title.to_owned(),
                detail: detail.into(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn error_serialises_with_empty_object_results() {
        let v = serde_json::to_value(Envelope::error(404, "nope")).unwrap();
        assert_eq!(v, json!({"code": 404, "status": "nope", "results": {}}));
    }

    #[test]
    fn null_and_missing_results_decode_to_default() {
        let e: Envelope<EmptyResults> =
            serde_json::from_str(r#"{"code":200,"status":"Success","results":null}"#).unwrap();
        assert!(e.is_success());
        let e: Envelope<Vec<String>> =
            serde_json::from_str(r#"{"code":200,"status":"Success"}"#).unwrap();
        assert!(e.results.is_empty());
        let e: Envelope<Value> =
            serde_json::from_str(r#"{"code":500,"status":"x","results":{}}"#).unwrap();
        assert!(!e.is_success());
        assert_eq!(e.results, json!({}));
    }

    #[test]
    fn forbidden_document_shape() {
        let v = serde_json::to_value(ErrorDocument::forbidden("no")).unwrap();
        assert_eq!(
            v,
            json!({"errors":[{"status":"403","title":"Forbidden","detail":"no"}]})
        );
    }
}
