//! The HTTP side of polling one agent: a keep-alive HTTPS client per agent (mTLS with the
//! verifier's client certificate; the agent's own `mtls_cert` trusted directly) and the
//! `GET /v{ver}/quotes/integrity` request with a size-limited response, the vkey POST and
//! the agent's unversioned `GET /version` used for API version renegotiation (§1.2). The
//! HTTP plumbing is [`crate::outbound`]'s.

use std::time::Duration;

use keylime_api::agent::QuoteResponse;
use keylime_api::version::AgentVersionInfo;
use keylime_api::{ApiVersion, Envelope};

use super::agent::PreparedAgent;
use crate::outbound::{
    MAX_SMALL_BODY_BYTES, OutboundError, get_bounded, https_client, is_retried_status, post_json,
    status_error,
};
use crate::tls::AgentClientTls;

/// Largest quote response read (IMA lists can be large).
pub const MAX_QUOTE_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

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
        let http = https_client(tls, agent.mtls_cert.clone(), timeout)?;
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
    ) -> Result<FetchedQuote, OutboundError> {
        let url = format!(
            "{}/v{}/quotes/integrity?nonce={nonce}&mask={}&partial={}&ima_ml_entry={ima_ml_entry}",
            self.base_url,
            self.api_version,
            self.mask,
            u8::from(partial)
        );
        let (code, body) =
            get_bounded(&self.http, &url, MAX_QUOTE_RESPONSE_BYTES, "response").await?;
        if is_retried_status(code) {
            return Err(OutboundError::Unreachable(format!("HTTP {code}")));
        }
        if code != 200 {
            return Err(status_error(code, &body));
        }
        let env: Envelope<QuoteResponse> =
            serde_json::from_slice(&body).map_err(|e| OutboundError::Malformed(e.to_string()))?;
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
    pub async fn agent_versions(&self) -> Result<AgentVersionInfo, OutboundError> {
        let url = format!("{}/version", self.base_url);
        let (code, body) =
            get_bounded(&self.http, &url, MAX_SMALL_BODY_BYTES, "/version response").await?;
        if code != 200 {
            return Err(status_error(code, &body));
        }
        /// The part of the `/version` envelope used.
        #[derive(serde::Deserialize)]
        struct VersionBody {
            results: AgentVersionInfo,
        }
        let env: VersionBody = serde_json::from_slice(&body)
            .map_err(|e| OutboundError::Malformed(format!("/version response: {e}")))?;
        Ok(env.results)
    }

    /// `POST /v{ver}/keys/vkey` with `{"encrypted_key": …}` (PROVIDE_V, §4.6).
    pub async fn provide_v(&self, encrypted_key_b64: &str) -> Result<(), OutboundError> {
        let url = format!("{}/v{}/keys/vkey", self.base_url, self.api_version);
        let body = serde_json::json!({ "encrypted_key": encrypted_key_b64 });
        post_json(&self.http, &url, &body).await
    }
}
