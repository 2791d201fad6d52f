//! Every request the verifier makes (to agents: quotes, `/version`, V, revocation notices;
//! to the revocation webhook): the one HTTPS client builder (the verifier's client identity,
//! `trusted_server_ca` plus the peer's own certificate), the bounded body reader, the one
//! error type ([`OutboundError`]) with upstream's retry classification, and the pause
//! between retries. [`contact`] reads how to reach an agent from its add-agent request.
//!
//! Knows nothing about what is sent: callers build the URLs and bodies.

pub mod contact;

use std::time::Duration;

use keylime_api::Envelope;
use keylime_pki::CertificateDer;

use crate::settings::PollTiming;
use crate::tls::AgentClientTls;

/// Largest error body or small response (`/version`) read.
pub const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;
/// What an agent's 400 `status` says when it does not serve the requested API version.
const VERSION_NOT_SUPPORTED: &str = "API version not supported";
/// Longest pause between retries.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(300);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Connection failure, timeout, or HTTP 408/500/599: retried (GET_QUOTE_RETRY).
    #[error("agent unreachable: {0}")]
    Unreachable(String),
    /// Any other unexpected answer.
    #[error("agent answered HTTP {code}: {status}")]
    Status { code: u16, status: String },
    /// A response whose body is too large or not what was asked for.
    #[error("agent's quote response is malformed: {0}")]
    Malformed(String),
}

impl OutboundError {
    /// An HTTP 400 whose `status` says the requested API version is not served (§1.2).
    pub fn is_version_not_supported(&self) -> bool {
        matches!(self, OutboundError::Status { code: 400, status } if status.contains(VERSION_NOT_SUPPORTED))
    }

    /// A transport failure (connection, TLS, timeout), with its whole source chain.
    fn transport(e: &reqwest::Error) -> Self {
        OutboundError::Unreachable(error_chain(e))
    }
}

/// A keep-alive HTTPS client presenting the verifier's client certificate and trusting
/// `trusted_server_ca` plus `peer_cert` (an agent's `mtls_cert`); plain `http://` URLs work
/// too. Every request gives up after `timeout`.
pub fn https_client(
    tls: &AgentClientTls,
    peer_cert: Option<CertificateDer<'static>>,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    let config = tls.config_for(peer_cert)?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .timeout(timeout)
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(300))
        .build()?)
}

/// Read the whole body of `resp`, refusing more than `limit` bytes (`Malformed`, naming
/// `what`); a transport failure midway is `Unreachable`.
pub async fn read_bounded(
    resp: &mut reqwest::Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, OutboundError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| OutboundError::transport(&e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(OutboundError::Malformed(format!(
                "{what} larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A non-success answer as [`OutboundError::Status`], with the envelope's `status` text
/// (empty when the body is no v2 envelope).
pub fn status_error(code: u16, body: &[u8]) -> OutboundError {
    let status = serde_json::from_slice::<Envelope<serde_json::Value>>(body)
        .map(|e| e.status)
        .unwrap_or_default();
    OutboundError::Status { code, status }
}

/// GET `url`: the status code and the body (at most `limit` bytes, `what` naming it).
pub async fn get_bounded(
    http: &reqwest::Client,
    url: &str,
    limit: usize,
    what: &str,
) -> Result<(u16, Vec<u8>), OutboundError> {
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| OutboundError::transport(&e))?;
    let code = resp.status().as_u16();
    let body = read_bounded(&mut resp, limit, what).await?;
    Ok((code, body))
}

/// Whether upstream retries an answer with this code as it does a connection failure.
pub fn is_retried_status(code: u16) -> bool {
    matches!(code, 408 | 500 | 599)
}

/// POST `body`, written as upstream's `json.dumps` writes it ([`json_body`]); 200 is success,
/// 408/500/599 and connection failures are `Unreachable`.
pub async fn post_json<T: serde::Serialize + ?Sized>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
) -> Result<(), OutboundError> {
    let text = json_body(body)?;
    let mut resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(text)
        .send()
        .await
        .map_err(|e| OutboundError::transport(&e))?;
    let code = resp.status().as_u16();
    if code == 200 {
        return Ok(());
    }
    if is_retried_status(code) {
        return Err(OutboundError::Unreachable(format!("HTTP {code}")));
    }
    let text = read_bounded(&mut resp, MAX_SMALL_BODY_BYTES, "error body")
        .await
        .unwrap_or_default();
    Err(status_error(code, &text))
}

/// A request body as upstream's verifier sends it: Python's `json.dumps` text (`", "` and
/// `": "` separators, non-ASCII escaped), so a peer sees the same bytes from either verifier.
pub fn json_body<T: serde::Serialize + ?Sized>(body: &T) -> Result<String, OutboundError> {
    keylime_api::pyjson::try_dumps(body)
        .map_err(|e| OutboundError::Malformed(format!("request body not serialisable: {e}")))
}

/// `e` and each of its sources, joined by `": "` (reqwest hides the cause in the chain).
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

/// Upstream (`retry_time`): `retry_interval ^ n` with exponential backoff when
/// `retry_interval` is above one second, else `retry_interval` (a base of one second or
/// less would not grow, and below one it would shrink towards a busy loop).
pub fn retry_pause(timing: &PollTiming, attempt: u32) -> Duration {
    let base = timing.retry_interval.as_secs_f64();
    let secs = if timing.exponential_backoff && base > 1.0 {
        base.powi(i32::try_from(attempt).unwrap_or(i32::MAX))
    } else {
        base
    };
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_RETRY_PAUSE)
        .min(MAX_RETRY_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retry_interval: Duration, exponential_backoff: bool) -> PollTiming {
        PollTiming {
            retry_interval,
            exponential_backoff,
            ..PollTiming::default()
        }
    }

    #[test]
    fn pause_grows_only_from_a_base_above_one_second() {
        let t = timing(Duration::from_secs(2), true);
        assert_eq!(retry_pause(&t, 3), Duration::from_secs(8));
        assert_eq!(retry_pause(&t, 40), MAX_RETRY_PAUSE);
        let t = timing(Duration::from_millis(300), true);
        assert_eq!(retry_pause(&t, 5), Duration::from_millis(300));
        let t = timing(Duration::from_secs(2), false);
        assert_eq!(retry_pause(&t, 5), Duration::from_secs(2));
    }
}
