//! Talking to a pull agent during `add` (PROTOCOL.md §1.2, §4): the mTLS client that trusts
//! the agent's registrar-recorded `mtls_cert`, API version negotiation, the identity quote
//! and its check (AK signature, nonce, PCR digest, accepted algorithms, PCR 16 bound to the
//! reported payload key), `POST /keys/ukey` and the `/keys/verify` key-derivation check.
//! What upstream's tenant logs along the way (the negotiated version, the agent's quote
//! answer, its checks of the quote) goes to the console in upstream's words.

use std::sync::Arc;

use keylime_api::agent::{KeyVerifyResponse, QuoteResponse, UkeyRequest};
use keylime_api::version::{ApiVersion, CURRENT_VERSION, SERVICE_SUPPORTED_VERSIONS};
use keylime_api::{AgentVersionInfo, decode_binary, encode_b64};
use keylime_attestation::pcr_checks::data_pcr_value;
use keylime_attestation::{Nonce, PreparedAk, QuotedPcrs, verify_quote};
use keylime_payload::BootstrapKey;
use rand::Rng as _;
use rand::distributions::Alphanumeric;

use crate::Tenant;
use crate::error::TenantError;
use crate::http::Peer;
use crate::settings::Endpoint;

/// How the tenant reaches one agent.
pub(crate) struct AgentLink {
    pub agent_id: String,
    pub endpoint: Endpoint,
    pub peer: Peer,
    pub version: ApiVersion,
}

/// A quote that passed every identity check.
pub(crate) struct ValidatedIdentity {
    /// The agent's payload key (PEM), bound into PCR 16.
    pub pubkey: String,
    pub nonce: String,
}

/// 20 characters from `[A-Za-z0-9]` (upstream `random_password(20)`).
pub(crate) fn random_nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

impl Tenant {
    /// Connect to the agent: mTLS trusting `mtls_cert` (plain HTTP when the registrar
    /// says `"disabled"`), then negotiate its API version unless `forced`.
    pub(crate) async fn link_agent(
        &self,
        agent_id: &str,
        endpoint: Endpoint,
        mtls_cert: Option<&str>,
        forced: Option<ApiVersion>,
    ) -> Result<AgentLink, TenantError> {
        let name = format!("Agent {agent_id} ({endpoint})");
        let (peer, known_version) = match mtls_cert.map(str::trim) {
            None | Some("") => {
                // Q19: upstream assumes API 1.0 when the agent sent no certificate.
                let v = forced.unwrap_or(ApiVersion::new(1, 0));
                if v.major < 2 {
                    return Err(TenantError::Version {
                        agent_id: agent_id.into(),
                        reason: "the registrar has no mtls_cert for it, so upstream rules assume API 1.0, which this tenant does not speak (pass --agent-api-version to override)".into(),
                    });
                }
                let peer = self.agent_tls_peer(&name, &endpoint, None)?;
                (peer, Some(v))
            }
            Some("disabled") => {
                tracing::warn!(
                    agent_id,
                    "agent mTLS is disabled: connecting over plain HTTP; the agent's identity rests on its TPM only"
                );
                let peer = Peer::new(
                    name,
                    endpoint.base_url("http"),
                    None,
                    self.settings.request_timeout,
                )?;
                (peer, forced)
            }
            Some(pem) => (self.agent_tls_peer(&name, &endpoint, Some(pem))?, forced),
        };
        let version = match known_version {
            Some(v) => v,
            None => {
                let (v, said) = negotiate_agent_version(agent_id, &peer).await?;
                if let Some(line) = said {
                    self.say(&line);
                }
                v
            }
        };
        tracing::info!(agent_id, %version, "using agent API version");
        Ok(AgentLink {
            agent_id: agent_id.into(),
            endpoint,
            peer,
            version,
        })
    }

    fn agent_tls_peer(
        &self,
        name: &str,
        endpoint: &Endpoint,
        mtls_cert: Option<&str>,
    ) -> Result<Peer, TenantError> {
        let mut pinned = Vec::new();
        if let Some(pem) = mtls_cert {
            let ders = keylime_pki::pem_or_der_to_der_list(pem.as_bytes()).map_err(|e| {
                TenantError::BadRegistrarRecord {
                    agent_id: name.into(),
                    reason: format!("mtls_cert is not a certificate: {e}"),
                }
            })?;
            pinned.extend(ders.into_iter().map(keylime_pki::CertificateDer::from));
        }
        let config = keylime_pki::client_config_with_extra_roots(
            self.trusted.clone(),
            pinned,
            Some((self.identity.0.clone(), self.identity.1.clone_key())),
        )
        .map_err(|e| TenantError::Tls {
            what: format!("client configuration for {name}"),
            reason: e.to_string(),
        })?;
        Peer::new(
            name,
            endpoint.base_url("https"),
            Some(Arc::clone(&config)),
            self.settings.request_timeout,
        )
    }

    /// `GET /quotes/identity` and every check upstream's tenant makes on it.
    pub(crate) async fn check_identity_quote(
        &self,
        link: &AgentLink,
        ak_tpm_b64: &str,
    ) -> Result<ValidatedIdentity, TenantError> {
        let nonce = random_nonce();
        let path = format!("/v{}/quotes/identity?nonce={nonce}", link.version);
        let reply = self.get_with_retries(&link.peer, &path).await?;
        if let Ok(answer) = crate::pyjson::PyValue::parse(&reply.body) {
            self.say(&answer.repr());
        }
        if reply.code != 200 {
            return Err(link.peer.unexpected("GET", &path, &reply));
        }
        let quote: QuoteResponse = serde_json::from_value(reply.envelope.results).map_err(|e| {
            link.peer
                .malformed(&path, format!("not a quote response: {e}"))
        })?;
        let invalid = |reason: String| TenantError::InvalidQuote {
            agent_id: link.agent_id.clone(),
            nonce: nonce.clone(),
            reason,
        };
        let hash = self
            .settings
            .accepted_algorithms
            .check(&quote.hash_alg, &quote.enc_alg, &quote.sign_alg)
            .map_err(|rej| {
                invalid(
                    rej.context()["message"]
                        .as_str()
                        .unwrap_or("unaccepted algorithm")
                        .to_string(),
                )
            })?;
        let Some(pubkey) = quote.pubkey.clone() else {
            return Err(invalid("the identity quote carries no pubkey".into()));
        };
        let ak_bytes = decode_binary(ak_tpm_b64).map_err(|e| TenantError::BadRegistrarRecord {
            agent_id: link.agent_id.clone(),
            reason: format!("aik_tpm: {e}"),
        })?;
        let ak =
            PreparedAk::from_tpm2b(&ak_bytes).map_err(|e| TenantError::BadRegistrarRecord {
                agent_id: link.agent_id.clone(),
                reason: format!("aik_tpm: {e}"),
            })?;
        let verified = verify_quote(
            &quote.quote,
            &ak,
            &Nonce::Text(nonce.clone()),
            hash,
            Some(&quote.sign_alg),
        )
        .map_err(|e| invalid(e.to_string()))?;
        let expected = hex::encode(data_pcr_value(hash, pubkey.as_bytes()));
        match verified.pcrs.hex(16) {
            None => {
                return Err(invalid(
                    "PCR 16 (payload key binding) is not in the quote".into(),
                ));
            }
            Some(v) if !v.eq_ignore_ascii_case(&expected) => {
                return Err(invalid(
                    "PCR 16 does not bind the reported payload key (pubkey)".into(),
                ));
            }
            Some(_) => {}
        }
        for line in quote_check_lines(&link.agent_id, &verified.pcrs) {
            self.say(&line);
        }
        self.say(&format!("Quote from {} validated", link.peer.name));
        Ok(ValidatedIdentity { pubkey, nonce })
    }

    /// GET with upstream's retry on connection failures (503/504 or unreachable).
    async fn get_with_retries(
        &self,
        peer: &Peer,
        path: &str,
    ) -> Result<crate::http::Reply, TenantError> {
        let retry = &self.settings.retry;
        let mut n = 0;
        loop {
            match peer.get(path).await {
                Ok(r) if r.code != 503 && r.code != 504 => return Ok(r),
                Ok(r) if n + 1 >= retry.max_retries => {
                    return Err(peer.unexpected("GET", path, &r));
                }
                Err(e @ TenantError::Unreachable { .. }) if n + 1 >= retry.max_retries => {
                    return Err(e);
                }
                Err(e @ TenantError::Unreachable { .. }) => {
                    tracing::info!(peer = %peer.name, error = %e, "agent unreachable; retrying");
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            n += 1;
            tokio::time::sleep(retry.delay(n)).await;
        }
    }

    /// `POST /keys/ukey` with U encrypted to the agent's payload key.
    pub(crate) async fn post_ukey(
        &self,
        link: &AgentLink,
        pubkey: &str,
        u: &[u8],
        auth_tag: String,
        payload: Option<String>,
    ) -> Result<(), TenantError> {
        let encrypted = keylime_payload::rsa_oaep_sha1_encrypt(pubkey, u)
            .map_err(|e| TenantError::Payload(format!("encrypting U to the agent's key: {e}")))?;
        let body = UkeyRequest {
            auth_tag,
            encrypted_key: encode_b64(&encrypted),
            payload,
        };
        let path = format!("/v{}/keys/ukey", link.version);
        let reply = link.peer.post_json(&path, &body).await?;
        if reply.code != 200 {
            return Err(link.peer.unexpected("POST", &path, &reply));
        }
        Ok(())
    }

    /// Poll `/keys/verify` until the agent proves it derived K (bounded by `max_retries`).
    /// Returns the number of tries.
    pub(crate) async fn verify_key_derivation(
        &self,
        link: &AgentLink,
        k: &BootstrapKey,
    ) -> Result<u32, TenantError> {
        let challenge = random_nonce();
        let expected = keylime_payload::key_auth_tag(k, &challenge);
        let path = format!("/v{}/keys/verify?challenge={challenge}", link.version);
        let retry = &self.settings.retry;
        let mut last = String::new();
        for n in 1..=retry.max_retries {
            match link.peer.get(&path).await {
                Ok(r) if r.code == 200 => {
                    let mac = serde_json::from_value::<KeyVerifyResponse>(r.envelope.results)
                        .map_err(|e| link.peer.malformed(&path, format!("no hmac: {e}")))?
                        .hmac;
                    if mac.eq_ignore_ascii_case(&expected) {
                        tracing::info!(agent_id = %link.agent_id, tries = n, "successful key derivation");
                        return Ok(n);
                    }
                    last = "the agent's HMAC does not match K".into();
                }
                Ok(r) => last = format!("{} {}", r.code, r.message()),
                Err(e) => last = e.to_string(),
            }
            tracing::info!(agent_id = %link.agent_id, try_ = n, reason = %last, "key derivation not yet complete");
            if n < retry.max_retries {
                tokio::time::sleep(retry.delay(n)).await;
            }
        }
        Err(TenantError::GaveUp {
            what: format!(
                "key derivation of agent {} was not confirmed ({last})",
                link.agent_id
            ),
            tries: retry.max_retries,
        })
    }
}

/// Upstream's `keylime_logging.list_items`: `16`, `1 and 2`, `1, 2 and 3`.
fn list_items(items: &[u8]) -> String {
    let joined = items
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match joined.rsplit_once(',') {
        Some((head, last)) => format!("{head} and{last}"),
        None => joined,
    }
}

/// What upstream's tenant logs while it checks an identity quote (its `check_quote` with
/// no policies: PCR 16 is the data PCR, every other PCR would be checked against an empty
/// TPM policy).
fn quote_check_lines(agent_id: &str, pcrs: &QuotedPcrs) -> Vec<String> {
    const IMA_PCR: u8 = 10;
    const DATA_PCR: u8 = 16;
    let nums: Vec<u8> = pcrs.values.keys().copied().collect();
    let bank = &pcrs.bank;
    let mut lines = vec![if nums.is_empty() {
        format!("No PCRs from bank '{bank}' found in TPM quote for agent '{agent_id}'")
    } else {
        format!(
            "PCR(s) {} from bank '{bank}' found in TPM quote for agent '{agent_id}'",
            list_items(&nums)
        )
    }];
    lines.push(if nums.contains(&IMA_PCR) {
        format!("IMA PCR in policy, but no measurement list provided by agent {agent_id}")
    } else {
        format!(
            "No IMA verification policy configured for agent '{agent_id}'; skipping IMA verification"
        )
    });
    lines.push(format!(
        "No measured boot policy configured for agent '{agent_id}'; skipping measured boot verification"
    ));
    let remaining: Vec<u8> = nums
        .into_iter()
        .filter(|n| *n != IMA_PCR && *n != DATA_PCR)
        .collect();
    lines.push(if remaining.is_empty() {
        format!("No remaining PCRs in quote to check against TPM policy for agent '{agent_id}'")
    } else {
        format!(
            "Checking remaining PCR(s) {} in quote against TPM policy for agent '{agent_id}'",
            list_items(&remaining)
        )
    });
    lines
}

/// `['2.1', '2.2']`: a list of versions as Python prints it.
fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|v| format!("'{v}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// §1.2 tenant → agent: `/version`'s `supported_versions` (or `supported_version`),
/// 2.x only; non-200 or no version → current. Connection errors abort. Also the line
/// upstream's tenant logs when it negotiated a version.
async fn negotiate_agent_version(
    agent_id: &str,
    peer: &Peer,
) -> Result<(ApiVersion, Option<String>), TenantError> {
    let reply = peer.get("/version").await?;
    if reply.code != 200 {
        tracing::warn!(
            agent_id,
            code = reply.code,
            "agent /version failed; assuming the current API version"
        );
        return Ok((CURRENT_VERSION, None));
    }
    let Ok(info) = serde_json::from_value::<AgentVersionInfo>(reply.envelope.results) else {
        tracing::warn!(
            agent_id,
            "agent sent no version information; assuming the current API version"
        );
        return Ok((CURRENT_VERSION, None));
    };
    let listed = info
        .supported_versions
        .clone()
        .unwrap_or_else(|| vec![info.supported_version.clone()]);
    let theirs: Vec<ApiVersion> = listed.iter().filter_map(|v| v.parse().ok()).collect();
    let ours: Vec<ApiVersion> = SERVICE_SUPPORTED_VERSIONS
        .iter()
        .copied()
        .filter(|v| v.major == 2)
        .collect();
    let version = keylime_api::version::highest_common(&ours, &theirs, 2).ok_or_else(|| {
        TenantError::Version {
            agent_id: agent_id.into(),
            reason: format!("agent supports {listed:?}, tenant supports 2.0-2.6"),
        }
    })?;
    // The versions upstream's tenant lists as its own (below 3.0).
    let tenant: Vec<String> = SERVICE_SUPPORTED_VERSIONS
        .iter()
        .filter(|v| v.major < 3)
        .map(ApiVersion::to_string)
        .collect();
    let said = format!(
        "Negotiated API version {version} with agent {agent_id} (agent: {}, tenant: {})",
        python_list(&listed),
        python_list(&tenant)
    );
    Ok((version, Some(said)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn items_listed_as_upstream() {
        assert_eq!(list_items(&[16]), "16");
        assert_eq!(list_items(&[1, 2]), "1 and 2");
        assert_eq!(list_items(&[1, 2, 3]), "1, 2 and 3");
    }

    #[test]
    fn identity_quote_checks_as_upstream_logs_them() {
        let pcrs = |n: &[u8]| QuotedPcrs {
            bank: keylime_tpm::HashAlg::Sha256,
            values: n
                .iter()
                .map(|n| (*n, "00".to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        assert_eq!(
            quote_check_lines("a", &pcrs(&[16])),
            [
                "PCR(s) 16 from bank 'sha256' found in TPM quote for agent 'a'",
                "No IMA verification policy configured for agent 'a'; skipping IMA verification",
                "No measured boot policy configured for agent 'a'; skipping measured boot verification",
                "No remaining PCRs in quote to check against TPM policy for agent 'a'",
            ]
        );
        let lines = quote_check_lines("a", &pcrs(&[0, 7, 16]));
        assert_eq!(
            lines[3],
            "Checking remaining PCR(s) 0 and 7 in quote against TPM policy for agent 'a'"
        );
    }
}
