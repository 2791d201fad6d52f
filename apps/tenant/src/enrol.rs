//! `add` and `update`: enrol an agent at the verifier the way upstream's tenant does —
//! registrar record over mTLS, agent API negotiation, identity quote checked with the
//! registrar's AK (nothing is sent to the verifier if it fails), EK certificate against
//! `tpm_cert_store`, U and the payload to the agent, the add-agent body (§5.2, with the
//! policies of [`PolicyOptions`] checked before anything is contacted) to the verifier, a bounded wait until the verifier shows the agent, and optionally the
//! `/keys/verify` check.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_api::encode_b64;
use keylime_api::verifier::AddAgentRequest;
use keylime_api::version::ApiVersion;
use serde_json::Value;

use crate::Tenant;
use crate::error::TenantError;
use crate::outcome::{AddOutcome, DeleteOutcome};
use crate::payload::{self, PayloadSource};
use crate::policy_options::PolicyOptions;
use crate::settings::Endpoint;

/// What `add` needs beyond the settings (upstream's command-line options).
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    pub agent_id: String,
    /// `-t`: contact address; default: the registrar's `ip`.
    pub agent_ip: Option<String>,
    /// `-tp`: contact port; default: the registrar's `port`.
    pub agent_port: Option<u16>,
    /// `--cv_targethost`: address the verifier uses, if different.
    pub cv_agent_ip: Option<String>,
    /// `--tpm_policy`, the runtime policy and the measured-boot policy options.
    pub policies: PolicyOptions,
    pub payload: PayloadSource,
    /// `--verify`: wait for the agent to prove it derived K.
    pub verify: bool,
    /// `--agent-api-version` / `--supported-version`.
    pub agent_api_version: Option<ApiVersion>,
    /// `--push-model` (not supported yet).
    pub push_model: bool,
}

/// The request checks that need no peer.
fn precheck(req: &AddRequest) -> Result<(), TenantError> {
    if req.push_model {
        return Err(TenantError::Unsupported(
            "--push-model (push attestation)".into(),
        ));
    }
    if req.verify && req.payload == PayloadSource::None {
        return Err(TenantError::Argument(
            "--verify only works when a payload is provided to the agent via -k, -f, or --cert"
                .into(),
        ));
    }
    Ok(())
}

/// What the first half of `add` found and prepared.
struct BegunAdd {
    record: Value,
    link: crate::agent::AgentLink,
    policies: crate::policy_options::ResolvedPolicies,
    prepared: Option<payload::PreparedPayload>,
}

fn string_field<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record.get(key).and_then(Value::as_str)
}

impl Tenant {
    /// `-c add`.
    pub async fn add(&self, req: &AddRequest) -> Result<AddOutcome, TenantError> {
        self.add_named(req, &self.verifier.name).await
    }

    /// [`Tenant::add`], naming the verifier `verifier` in what it prints.
    async fn add_named(&self, req: &AddRequest, verifier: &str) -> Result<AddOutcome, TenantError> {
        let begun = self.begin_add(req).await?;
        self.finish_add(req, begun, verifier).await
    }

    /// The first half of `add`, before anything changes anywhere (upstream's `init_add`):
    /// local checks, the policies and the payload, the registrar's record, the agent's API
    /// version.
    async fn begin_add(&self, req: &AddRequest) -> Result<BegunAdd, TenantError> {
        precheck(req)?;
        let policies = req.policies.resolve()?;
        let prepared = payload::prepare(&req.payload, self.settings.max_payload_size)?;
        let id = req.agent_id.as_str();

        let record = self.registrar_record(id).await?.to_value();
        if string_field(&record, "aik_tpm").is_none() {
            return Err(TenantError::BadRegistrarRecord {
                agent_id: id.into(),
                reason: "aik_tpm is null".into(),
            });
        }
        let host = req
            .agent_ip
            .clone()
            .or_else(|| string_field(&record, "ip").map(str::to_owned))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                TenantError::Argument(format!(
                    "no contact address for agent {id}: the registrar has none, pass -t/--targethost"
                ))
            })?;
        let port = match req.agent_port {
            Some(p) => p,
            None => record_port(&record).ok_or_else(|| {
                TenantError::Argument(format!(
                    "no contact port for agent {id}: the registrar has none, pass -tp/--targetport"
                ))
            })?,
        };
        let mtls_cert = string_field(&record, "mtls_cert");
        let link = self
            .link_agent(
                id,
                Endpoint::new(host, port),
                mtls_cert,
                req.agent_api_version,
            )
            .await?;
        Ok(BegunAdd {
            record,
            link,
            policies,
            prepared,
        })
    }

    /// The rest of `add`: the identity quote, the key to the agent, the verifier.
    async fn finish_add(
        &self,
        req: &AddRequest,
        begun: BegunAdd,
        verifier: &str,
    ) -> Result<AddOutcome, TenantError> {
        let BegunAdd {
            record,
            link,
            policies,
            prepared,
        } = begun;
        let id = req.agent_id.as_str();
        let aik_tpm = string_field(&record, "aik_tpm").unwrap_or_default();
        let mtls_cert = string_field(&record, "mtls_cert");

        let identity = match self.check_identity_quote(&link, aik_tpm).await {
            Ok(i) => i,
            Err(e) => {
                if record.get("regcount").and_then(Value::as_u64).unwrap_or(0) > 1 {
                    tracing::error!(
                        agent_id = id,
                        "the agent had more than one EK-EK cert registered: this may be a misconfiguration or a malicious host; run regdelete and restart the agent"
                    );
                }
                return Err(e);
            }
        };
        self.check_ek(id, &record).await?;

        if let Some(p) = &prepared {
            let tag = keylime_payload::key_auth_tag(&p.k, id);
            self.post_ukey(&link, &identity.pubkey, &p.u, tag, p.payload.clone())
                .await?;
        }

        let body = AddAgentRequest {
            tpm_policy: policies.tpm_policy_text(),
            runtime_policy: policies.runtime_policy,
            runtime_policy_name: Some(policies.runtime_policy_name),
            runtime_policy_key: Some(policies.runtime_policy_key),
            mb_policy: policies.mb_policy,
            mb_policy_name: policies.mb_policy_name,
            ima_sign_verification_keys: String::new(),
            metadata: "{}".into(),
            revocation_key: prepared
                .as_ref()
                .map(|p| p.revocation_key.clone())
                .unwrap_or_default(),
            accept_tpm_hash_algs: self.settings.accepted_algorithms.hash.clone(),
            accept_tpm_encryption_algs: self.settings.accepted_algorithms.encryption.clone(),
            accept_tpm_signing_algs: self.settings.accepted_algorithms.signing.clone(),
            ak_tpm: aik_tpm.to_string(),
            mtls_cert: mtls_cert.map(str::to_owned),
            v: prepared.as_ref().map(|p| encode_b64(&p.v)),
            cloudagent_ip: Some(
                req.cv_agent_ip
                    .clone()
                    .unwrap_or_else(|| link.endpoint.host.clone()),
            ),
            cloudagent_port: Some(link.endpoint.port),
            verifier_ip: Some(self.settings.verifier.host.clone()),
            verifier_port: Some(self.settings.verifier.port),
            supported_version: Some(link.version.to_string()),
        };
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{id}");
        let reply = self.verifier.post_json(&path, &body).await?;
        match reply.code {
            200 => {}
            409 => {
                return Err(TenantError::AlreadyOnVerifier {
                    agent_id: id.into(),
                    verifier: self.verifier.name.clone(),
                });
            }
            _ => return Err(self.verifier.unexpected("POST", &path, &reply)),
        }

        let retry = &self.settings.retry;
        let mut state = None;
        let mut status_tries = 0;
        for n in 1..=retry.max_retries {
            if let Some(s) = self.verifier_status(id, verifier).await? {
                state = s.operational_state;
                break;
            }
            status_tries = n;
            if n == retry.max_retries {
                return Err(TenantError::GaveUp {
                    what: format!("agent {id} still not shown by the {verifier}"),
                    tries: n,
                });
            }
            tokio::time::sleep(retry.delay(n)).await;
        }
        tracing::info!(agent_id = id, verifier = %self.verifier.name, "agent added to the verifier");

        let mut key_verified_after = None;
        if req.verify
            && let Some(p) = &prepared
        {
            match self.verify_key_derivation(&link, &p.k).await {
                Ok(n) => key_verified_after = Some(n),
                Err(e) => {
                    if let Err(stop) = self.stop(id).await {
                        tracing::error!(agent_id = id, error = %stop, "could not stop the agent at the verifier");
                    }
                    return Err(e);
                }
            }
        }
        Ok(AddOutcome {
            agent_id: id.into(),
            agent: link.endpoint.clone(),
            agent_api_version: link.version.to_string(),
            nonce: identity.nonce,
            key_delivered: prepared.is_some(),
            key_verified_after,
            operational_state: state,
            verifier: verifier.into(),
            status_tries,
        })
    }

    /// `-c update`: delete from the verifier, then add again (the delete's outcome printed
    /// to the console in between, as upstream).
    pub async fn update(
        &self,
        req: &AddRequest,
    ) -> Result<(DeleteOutcome, AddOutcome), TenantError> {
        // As upstream: the options, policy files, registrar record and agent are checked
        // before the agent is removed, so a typo does not leave it deleted.
        let begun = self.begin_add(req).await?;
        let (deleted, verifier) = self.delete_named(&req.agent_id).await?;
        let said = crate::report::delete(&req.agent_id, deleted, &self.verifier.name);
        for line in said.lines {
            self.say(&line);
        }
        let added = self.finish_add(req, begun, &verifier).await?;
        Ok((deleted, added))
    }

    /// The EK certificate check (upstream `check_ek`) and `ek_check_script`.
    async fn check_ek(&self, id: &str, record: &Value) -> Result<(), TenantError> {
        let ek_err = |reason: String| TenantError::EkCertificate {
            agent_id: id.into(),
            reason,
        };
        let ekcert = string_field(record, "ekcert").filter(|c| !c.is_empty());
        if self.settings.require_ek_cert {
            let Some(cert) = ekcert else {
                return Err(ek_err(
                    "the registrar has no EK certificate and require_ek_cert is true".into(),
                ));
            };
            let der = keylime_pki::pem_or_der_to_der_list(cert.as_bytes())
                .ok()
                .and_then(|l| l.into_iter().next())
                .or_else(|| STANDARD.decode(cert).ok())
                .ok_or_else(|| ek_err("ekcert is neither PEM nor base64 DER".into()))?;
            let store =
                keylime_pki::EkCertStore::load(&self.settings.tpm_cert_store).map_err(|e| {
                    ek_err(format!(
                        "tpm_cert_store {}: {e}",
                        self.settings.tpm_cert_store.display()
                    ))
                })?;
            let verdict = store.verify(&der).map_err(|e| ek_err(e.to_string()))?;
            tracing::info!(agent_id = id, anchor = %verdict.anchor, "EK certificate trusted");
        } else if self.settings.ek_check_script.is_none() {
            tracing::warn!(
                agent_id = id,
                "DANGER: EK cert checking is disabled and no ek_check_script is set. Keylime is not secure!"
            );
            return Ok(());
        }
        if let Some(script) = &self.settings.ek_check_script {
            run_ek_check_script(script, id, record, &self.settings.tpm_cert_store)
                .await
                .map_err(ek_err)?;
        }
        Ok(())
    }
}

fn record_port(record: &Value) -> Option<u16> {
    match record.get("port")? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Run `ek_check_script` with upstream's environment; exit status 0 accepts.
async fn run_ek_check_script(
    script: &std::path::Path,
    id: &str,
    record: &Value,
    store: &std::path::Path,
) -> Result<(), String> {
    let ek_tpm = string_field(record, "ek_tpm").unwrap_or("");
    let ek_pem = keylime_api::decode_binary(ek_tpm)
        .ok()
        .and_then(|b| keylime_tpm::Public::from_tpm2b(&b).ok())
        .and_then(|p| p.public_key_pem().ok())
        .unwrap_or_default();
    let out = tokio::process::Command::new(script)
        .env("AGENT_UUID", id)
        .env("EK", ek_pem)
        .env("EK_TPM", ek_tpm)
        .env("EK_CERT", string_field(record, "ekcert").unwrap_or(""))
        .env("PROVKEYS", "{}")
        .env("TPM_CERT_STORE", store)
        .output()
        .await
        .map_err(|e| format!("ek_check_script {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ek_check_script {} refused the EK ({})",
            script.display(),
            out.status
        ))
    }
}
