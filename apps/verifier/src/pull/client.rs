//! The HTTP side of polling one agent: a keep-alive HTTPS client per agent (mTLS with the
//! verifier's client certificate; the agent's own `mtls_cert` trusted directly) and the
//! `GET /v{ver}/quotes/integrity` request with a size-limited response, the vkey POST and
//! the agent's unversioned `GET /version` used for API version renegotiation (§1.2).

use std::time::Duration;

use keylime_api::agent::QuoteResponse;
use keylime_api::version::AgentVersionInfo;
use keylime_api::{ApiVersion, Envelope};

use super::agent::PreparedAgent;
use crate::tls::AgentClientTls;

/// Largest quote response read (IMA lists can be large).
pub const MAX_QUOTE_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest `/version` response and error body read.
const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;
/// What an agent's 400 `status` says when it does not serve the requested API version.
const VERSION_NOT_SUPPORTED: &str = "API version not supported";

/// Why a quote could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection failure, timeout, or HTTP 408/500/599: retried (GET_QUOTE_RETRY).
    #[error("agent unreachable: {0}")]
    Unreachable(String),
    /// Any other non-200 answer.
    #[error("agent answered HTTP {code}: {status}")]
    Status { code: u16, status: String },
    /// A 200 whose body is not a quote response.
    #[error("agent's quote response is malformed: {0}")]
    Malformed(String),
}

impl FetchError {
    /// An HTTP 400 whose `status` says the requested API version is not served (§1.2).
    pub fn is_version_not_supported(&self) -> bool {
        matches!(self, FetchError::Status { code: 400, status } if status.contains(VERSION_NOT_SUPPORTED))
    }
}

/// A quote and the size of the body it came in.
pub struct FetchedQuote {
    pub quote: QuoteResponse,
    pub body_len: usize,
}

/// One agent's client.
pub struct AgentClient {
    http: reqwest::Client,
    base_url: String,
    api_version: String,
    mask: String,
}

impl AgentClient {
    pub fn new(
        agent: &PreparedAgent,
        tls: &AgentClientTls,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let config = tls.config_for(agent.mtls_cert.clone())?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*config).clone())
            .timeout(timeout)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(300))
            .build()?;
        Ok(AgentClient {
            http,
            base_url: agent.base_url(),
            api_version: agent.api_version.clone(),
            mask: agent.mask.clone(),
        })
    }

    /// `GET /v{ver}/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=`.
    pub async fn integrity_quote(
        &self,
        nonce: &str,
        partial: bool,
        ima_ml_entry: u64,
    ) -> Result<FetchedQuote, FetchError> {
        let url = format!(
            "{}/v{}/quotes/integrity?nonce={nonce}&mask={}&partial={}&ima_ml_entry={ima_ml_entry}",
            self.base_url,
            self.api_version,
            self.mask,
            u8::from(partial)
        );
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(error_chain(&e)))?;
        let code = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Unreachable(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_QUOTE_RESPONSE_BYTES {
                return Err(FetchError::Malformed(format!(
                    "response larger than {MAX_QUOTE_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if matches!(code, 408 | 500 | 599) {
            return Err(FetchError::Unreachable(format!("HTTP {code}")));
        }
        if code != 200 {
            let status = serde_json::from_slice::<Envelope<serde_json::Value>>(&body)
                .map(|e| e.status)
                .unwrap_or_default();
            return Err(FetchError::Status { code, status });
        }
        let env: Envelope<QuoteResponse> =
            serde_json::from_slice(&body).map_err(|e| FetchError::Malformed(e.to_string()))?;
        Ok(FetchedQuote {
            quote: env.results,
            body_len: body.len(),
        })
    }
}

impl AgentClient {
    /// The API version used in request paths, e.g. `2.6`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Use `version` in request paths from now on (after renegotiation).
    pub fn set_api_version(&mut self, version: ApiVersion) {
        self.api_version = version.to_string();
    }

    /// The agent's unversioned `GET /version` (`results.supported_version[s]`).
    pub async fn agent_versions(&self) -> Result<AgentVersionInfo, FetchError> {
        let url = format!("{}/version", self.base_url);
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(error_chain(&e)))?;
        let code = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Unreachable(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_SMALL_BODY_BYTES {
                return Err(FetchError::Malformed(format!(
                    "/version response larger than {MAX_SMALL_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if code != 200 {
            let status = serde_json::from_slice::<Envelope<serde_json::Value>>(&body)
                .map(|e| e.status)
                .unwrap_or_default();
            return Err(FetchError::Status { code, status });
        }
        /// The part of the `/version` envelope used.
        #[derive(serde::Deserialize)]
        struct VersionBody {
            results: AgentVersionInfo,
        }
        let env: VersionBody = serde_json::from_slice(&body)
            .map_err(|e| FetchError::Malformed(format!("/version response: {e}")))?;
        Ok(env.results)
    }

    /// `POST /v{ver}/keys/vkey` with `{"encrypted_key": …}` (PROVIDE_V, §4.6).
    pub async fn provide_v(&self, encrypted_key_b64: &str) -> Result<(), FetchError> {
        let url = format!("{}/v{}/keys/vkey", self.base_url, self.api_version);
        let body = serde_json::json!({ "encrypted_key": encrypted_key_b64 });
        post_json(&self.http, &url, &body).await
    }
}

/// POST `body`; 200 is success, 408/500/599 and connection failures are `Unreachable`.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), FetchError> {
    let mut resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(error_chain(&e)))?;
    let code = resp.status().as_u16();
    if code == 200 {
        return Ok(());
    }
    if matches!(code, 408 | 500 | 599) {
        return Err(FetchError::Unreachable(format!("HTTP {code}")));
    }
    let mut text = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        if text.len() + chunk.len() > MAX_SMALL_BODY_BYTES {
            break;
        }
        text.extend_from_slice(&chunk);
    }
    let status = serde_json::from_slice::<Envelope<serde_json::Value>>(&text)
        .map(|e| e.status)
        .unwrap_or_default();
    Err(FetchError::Status { code, status })
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
