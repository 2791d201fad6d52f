//! HTTP(S) calls to the verifier, the registrar and agents: one [`Peer`] per remote, which
//! knows its base URL, its TLS client and a display name used in every error message.
//! Responses are read as the v2 envelope, tolerating the empty bodies upstream's web
//! framework sends on routing and authorization errors (PROTOCOL.md §0.2).

use std::sync::Arc;
use std::time::Duration;

use keylime_api::Envelope;
use keylime_api::version::{
    ApiVersion, CURRENT_VERSION, SERVICE_SUPPORTED_VERSIONS, VersionInfo, highest_common,
};
use serde_json::Value;

use crate::error::TenantError;
use crate::pyjson::PyValue;

/// Largest response body read from a peer.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest body of a stored-policy answer: a runtime policy may be up to
/// `DEFAULT_MAX_POLICY_LEN` and is carried as an escaped JSON string.
const MAX_POLICY_BODY: usize = 2 * keylime_ima::policy::DEFAULT_MAX_POLICY_LEN + (1 << 20);

/// A response: HTTP status, the envelope (or a synthetic one for non-JSON bodies) and the
/// body as received (for commands that print the verifier's answer verbatim).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub envelope: Envelope<Value>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The envelope's `results` with object members in the order the peer sent them (the
    /// tenant re-prints documents as received); from the parsed envelope when the body is
    /// not a v2 envelope.
    pub fn results_in_order(&self) -> PyValue {
        serde_json::from_slice::<Envelope<PyValue>>(&self.body)
            .map(|e| e.results)
            .unwrap_or_else(|_| PyValue::from_value(&self.envelope.results))
    }

    /// The error text to show: the envelope's `status`, or a framework error's `detail`.
    pub fn message(&self) -> String {
        if !self.envelope.status.is_empty() {
            return self.envelope.status.clone();
        }
        String::from("(no message)")
    }
}

/// One remote service or agent.
#[derive(Debug, Clone)]
pub struct Peer {
    /// e.g. `Verifier (127.0.0.1:8881)`.
    pub name: String,
    base: String,
    client: reqwest::Client,
}

impl Peer {
    /// A peer reached at `base` (`https://host:port`) with `tls` (None = plain HTTP).
    pub fn new(
        name: impl Into<String>,
        base: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, TenantError> {
        let name = name.into();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let client = builder.build().map_err(|e| TenantError::Tls {
            what: format!("HTTP client for {name}"),
            reason: e.to_string(),
        })?;
        Ok(Peer { name, base, client })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Result<Reply, TenantError> {
        self.send("GET", path, self.client.get(self.url(path)), MAX_BODY)
            .await
    }

    /// GET of a stored policy, whose answer may be larger than other answers.
    pub async fn get_policy(&self, path: &str) -> Result<Reply, TenantError> {
        self.send(
            "GET",
            path,
            self.client.get(self.url(path)),
            MAX_POLICY_BODY,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply, TenantError> {
        self.send("DELETE", path, self.client.delete(self.url(path)), MAX_BODY)
            .await
    }

    pub async fn put_empty(&self, path: &str) -> Result<Reply, TenantError> {
        self.send(
            "PUT",
            path,
            self.client.put(self.url(path)).body(""),
            MAX_BODY,
        )
        .await
    }

    pub async fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Reply, TenantError> {
        self.send(
            "POST",
            path,
            self.client.post(self.url(path)).json(body),
            MAX_BODY,
        )
        .await
    }

    pub async fn put_json<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Reply, TenantError> {
        self.send(
            "PUT",
            path,
            self.client.put(self.url(path)).json(body),
            MAX_BODY,
        )
        .await
    }

    async fn send(
        &self,
        method: &'static str,
        path: &str,
        req: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<Reply, TenantError> {
        tracing::debug!(peer = %self.name, method, path, "request");
        let unreachable = |e: reqwest::Error| TenantError::Unreachable {
            peer: self.name.clone(),
            url: self.url(path),
            reason: error_chain(&e),
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let code = resp.status().as_u16();
        let too_large = || self.malformed(path, format!("response body larger than {max} bytes"));
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        // Read chunk by chunk so a body without a length cannot exhaust memory.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let envelope = parse_envelope(code, &body);
        tracing::debug!(peer = %self.name, method, path, code, "response");
        Ok(Reply {
            code,
            envelope,
            body,
        })
    }

    pub fn malformed(&self, path: &str, reason: impl Into<String>) -> TenantError {
        TenantError::MalformedResponse {
            peer: self.name.clone(),
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub fn unexpected(&self, method: &'static str, path: &str, reply: &Reply) -> TenantError {
        TenantError::UnexpectedStatus {
            peer: self.name.clone(),
            method,
            path: path.to_string(),
            code: reply.code,
            message: reply.message(),
        }
    }

    /// §1.2 tenant → service: the highest 2.x (or 1.0) version both sides speak; the
    /// current version when `/version` fails, answers 410 or lists nothing in common.
    pub async fn negotiate_service_version(&self) -> ApiVersion {
        let reply = match self.get("/version").await {
            Ok(r) if r.code == 200 => r,
            Ok(r) => {
                tracing::debug!(peer = %self.name, code = r.code, "no usable /version; using the current API version");
                return CURRENT_VERSION;
            }
            Err(e) => {
                tracing::debug!(peer = %self.name, error = %e, "/version failed; using the current API version");
                return CURRENT_VERSION;
            }
        };
        let Ok(info) = serde_json::from_value::<VersionInfo>(reply.envelope.results) else {
            return CURRENT_VERSION;
        };
        let mut theirs = info.supported();
        if let Ok(current) = info.current_version.parse::<ApiVersion>() {
            theirs.push(current);
        }
        let ours: Vec<ApiVersion> = SERVICE_SUPPORTED_VERSIONS
            .iter()
            .copied()
            .filter(|v| v.major < 3)
            .collect();
        highest_common(&ours, &theirs, 2).unwrap_or(CURRENT_VERSION)
    }
}

/// Parse a body as the v2 envelope; other bodies become `{code, status: <text>, results: {}}`.
fn parse_envelope(code: u16, bytes: &[u8]) -> Envelope<Value> {
    if let Ok(env) = serde_json::from_slice::<Envelope<Value>>(bytes) {
        return env;
    }
    // Framework denials: {"errors":[{"detail": …}]}.
    let status = serde_json::from_slice::<keylime_api::ErrorDocument>(bytes)
        .ok()
        .and_then(|d| d.errors.into_iter().next())
        .map(|e| e.detail)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            if text.is_empty() {
                "(empty body)".to_string()
            } else {
                text.chars().take(200).collect()
            }
        });
    Envelope {
        code,
        status,
        results: Value::Object(Default::default()),
    }
}

/// The error and its sources on one line (reqwest hides the TLS reason in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fallbacks() {
        let e = parse_envelope(200, br#"{"code":200,"status":"Success","results":null}"#);
        assert_eq!(e.results, Value::Null);
        let e = parse_envelope(
            403,
            br#"{"errors":[{"status":"403","title":"Forbidden","detail":"needs admin"}]}"#,
        );
        assert_eq!((e.code, e.status.as_str()), (403, "needs admin"));
        let e = parse_envelope(404, b"");
        assert_eq!(e.status, "(empty body)");
    }
}
