//! HTTP(S) client for the three registrar calls the agent makes (PROTOCOL.md §2.1):
//! `GET /version`, `POST /v{ver}/agents/{id}` and `PUT /v{ver}/agents/{id}`.
//!
//! Owns URLs, status-code interpretation and response size limits. It does one request
//! per call: retries and the order of calls belong to `registration`.

use std::time::Duration;

use keylime_api::{
    ActivateRequest, ApiVersion, EmptyResults, Envelope, RegisterRequest, RegisterResponse,
    VersionInfo,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Largest registrar response body read (a blob is well under 4 KiB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Where the registrar is and how to reach it.
#[derive(Debug, Clone)]
pub struct RegistrarEndpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// `Some` → HTTPS verifying the server with this rustls config; `None` → plain HTTP.
    pub tls: Option<rustls::ClientConfig>,
}

impl RegistrarEndpoint {
    /// `scheme://host:port` with IPv6 literals bracketed.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

/// Why a registrar call failed.
#[derive(Debug, Error)]
pub enum RegistrarError {
    #[error("cannot build the HTTP client for the registrar: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot set up TLS for the registrar client: {0}")]
    Tls(#[source] rustls::Error),
    #[error("registrar at {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registrar at {url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "registrar at {url} refused to register agent {agent_id} (HTTP 403: {message}); \
         the id is already registered with a different TPM identity (EK, EK certificate or AK); \
         delete the registrar record or configure another uuid"
    )]
    IdentityConflict {
        url: String,
        agent_id: String,
        message: String,
    },
    #[error(
        "registrar at {url} rejected the activation of agent {agent_id} (HTTP {status}: {message}); \
         the registrar deleted the agent record, restart the agent to register again"
    )]
    ActivationRejected {
        url: String,
        agent_id: String,
        status: u16,
        message: String,
    },
    #[error("registrar at {url} sent an invalid response: {reason}")]
    BadResponse { url: String, reason: String },
}

impl RegistrarError {
    /// Whether waiting and retrying may help: network errors and 5xx answers.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// One registrar, one connection pool.
#[derive(Debug, Clone)]
pub struct RegistrarClient {
    http: reqwest::Client,
    base_url: String,
}

impl RegistrarClient {
    /// Builds the client; `timeout` bounds each request.
    pub fn new(endpoint: RegistrarEndpoint, timeout: Duration) -> Result<Self, RegistrarError> {
        let base_url = endpoint.base_url();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none());
        // reqwest is built without a default crypto provider: always hand it a rustls
        // config on the ring provider, an empty trust store when the registrar is plain HTTP.
        let tls = match endpoint.tls {
            Some(tls) => tls,
            None => plain_http_tls_config()?,
        };
        builder = builder.use_preconfigured_tls(tls);
        let http = builder.build().map_err(RegistrarError::Client)?;
        Ok(Self { http, base_url })
    }

    /// `scheme://host:port` of the registrar, for logs.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /version`. `Ok(None)` when the registrar does not serve it (non-2xx other
    /// than 5xx, or a body without `current_version`: pre-2.3 registrars).
    pub async fn version(&self) -> Result<Option<VersionInfo>, RegistrarError> {
        let url = format!("{}/version", self.base_url);
        let response = self.send(self.http.get(&url), &url).await?;
        let status = response.status();
        let body = read_limited(response, &url).await?;
        if status.is_server_error() {
            return Err(status_error(&url, status, &body));
        }
        if !status.is_success() {
            return Ok(None);
        }
        match serde_json::from_slice::<Envelope<Option<VersionInfo>>>(&body) {
            Ok(envelope) => Ok(envelope.results),
            Err(_) => Ok(None),
        }
    }

    /// `POST /v{version}/agents/{agent_id}`; returns the decoded credential blob.
    pub async fn register(
        &self,
        version: ApiVersion,
        agent_id: &str,
        request: &RegisterRequest,
    ) -> Result<Vec<u8>, RegistrarError> {
        let url = self.agent_url(version, agent_id);
        let response = self
            .send(self.http.post(&url).json(&wire_body(request)), &url)
            .await?;
        let status = response.status();
        let body = read_limited(response, &url).await?;
        if status == StatusCode::FORBIDDEN {
            return Err(RegistrarError::IdentityConflict {
                url,
                agent_id: agent_id.to_string(),
                message: status_message(&body),
            });
        }
        if !status.is_success() {
            return Err(status_error(&url, status, &body));
        }
        let Some(results) = decode_results::<Option<RegisterResponse>>(&url, &body)? else {
            return Err(RegistrarError::BadResponse {
                url,
                reason: "results carry no blob".into(),
            });
        };
        keylime_api::decode_binary(&results.blob).map_err(|e| RegistrarError::BadResponse {
            url,
            reason: format!("results.blob is not base64: {e}"),
        })
    }

    /// `PUT /v{version}/agents/{agent_id}` with the auth tag.
    pub async fn activate(
        &self,
        version: ApiVersion,
        agent_id: &str,
        auth_tag: &str,
    ) -> Result<(), RegistrarError> {
        let url = self.agent_url(version, agent_id);
        let body = ActivateRequest {
            auth_tag: auth_tag.to_string(),
        };
        let response = self.send(self.http.put(&url).json(&body), &url).await?;
        let status = response.status();
        let body = read_limited(response, &url).await?;
        if status.is_success() {
            return Ok(());
        }
        if status.is_client_error() {
            return Err(RegistrarError::ActivationRejected {
                url,
                agent_id: agent_id.to_string(),
                status: status.as_u16(),
                message: status_message(&body),
            });
        }
        Err(status_error(&url, status, &body))
    }

    fn agent_url(&self, version: ApiVersion, agent_id: &str) -> String {
        format!("{}/v{version}/agents/{agent_id}", self.base_url)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, RegistrarError> {
        request
            .send()
            .await
            .map_err(|source| RegistrarError::Unreachable {
                url: url.to_string(),
                source,
            })
    }
}

fn plain_http_tls_config() -> Result<rustls::ClientConfig, RegistrarError> {
    let config = rustls::ClientConfig::builder_with_provider(keylime_pki::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(RegistrarError::Tls)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(config)
}

/// The register body as upstream's Rust agent shapes it (PROTOCOL.md §2.2): absent
/// optional fields are left out, except `iak_cert`/`idevid_cert`, always present (null
/// when unused).
pub fn wire_body(request: &RegisterRequest) -> serde_json::Value {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.retain(|key, v| !v.is_null() || key == "iak_cert" || key == "idevid_cert");
    }
    value
}

async fn read_limited(
    mut response: reqwest::Response,
    url: &str,
) -> Result<Vec<u8>, RegistrarError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(RegistrarError::BadResponse {
            url: url.to_string(),
            reason: format!("body larger than {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response
            .chunk()
            .await
            .map_err(|source| RegistrarError::Unreachable {
                url: url.to_string(),
                source,
            })?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(RegistrarError::BadResponse {
                url: url.to_string(),
                reason: format!("body larger than {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn decode_results<T: DeserializeOwned + Default>(
    url: &str,
    body: &[u8],
) -> Result<T, RegistrarError> {
    serde_json::from_slice::<Envelope<T>>(body)
        .map(|e| e.results)
        .map_err(|e| RegistrarError::BadResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// The envelope's `status` text, or a note that the body had none (framework errors
/// have empty bodies, §0.2).
fn status_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Envelope<EmptyResults>>(body) {
        Ok(envelope) if !envelope.status.is_empty() => truncate(&envelope.status),
        _ if body.is_empty() => "empty body".to_string(),
        _ => truncate(&String::from_utf8_lossy(body)),
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn status_error(url: &str, status: StatusCode, body: &[u8]) -> RegistrarError {
    RegistrarError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        message: status_message(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let ep = |host: &str| RegistrarEndpoint {
            host: host.into(),
            port: 8890,
            tls: None,
        };
        assert_eq!(ep("127.0.0.1").base_url(), "http://127.0.0.1:8890");
        assert_eq!(ep("::1").base_url(), "http://[::1]:8890");
        assert_eq!(
            ep("registrar.example").base_url(),
            "http://registrar.example:8890"
        );
    }

    #[test]
    fn status_messages_are_bounded_and_tolerant() {
        assert_eq!(status_message(b""), "empty body");
        assert_eq!(
            status_message(br#"{"code":400,"status":"bad tag","results":{}}"#),
            "bad tag"
        );
        assert_eq!(status_message(&[b'x'; 1000]).chars().count(), 301);
        assert_eq!(status_message(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn wire_body_matches_upstream_shape() {
        let request = RegisterRequest {
            aik_tpm: Some("AAE=".into()),
            ek_tpm: Some("AAI=".into()),
            ekcert: Some(String::new()),
            mtls_cert: Some("disabled".into()),
            ip: Some("127.0.0.1".into()),
            port: Some(9002),
            ..RegisterRequest::default()
        };
        assert_eq!(
            wire_body(&request),
            serde_json::json!({"aik_tpm":"AAE=","ek_tpm":"AAI=","ekcert":"","iak_cert":null,
                "idevid_cert":null,"ip":"127.0.0.1","mtls_cert":"disabled","port":9002})
        );
    }

    #[test]
    fn transient_classification() {
        let status = |s| RegistrarError::Status {
            url: String::new(),
            status: s,
            message: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        let conflict = RegistrarError::IdentityConflict {
            url: String::new(),
            agent_id: "a".into(),
            message: String::new(),
        };
        assert!(!conflict.is_transient());
    }
}
