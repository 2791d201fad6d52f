//! The registration protocol as the agent runs it (PROTOCOL.md §1.2, §2.1–2.3, §3.6):
//! ask the registrar's version, register with the best common API version, let the TPM
//! decrypt the credential, and activate with the auth tag.
//!
//! Owns ordering and retry decisions (transient failures back off; a 403 on register and
//! a 4xx on activate stop at once). It does not touch the TPM: decrypting the credential
//! is the caller's closure, so this protocol is testable apart from any TPM.

use std::future::Future;

use keylime_api::{ApiVersion, RegisterRequest, activation_auth_tag};
use thiserror::Error;

use crate::backoff::{RetryPolicy, retry};
use crate::registrar_client::{RegistrarClient, RegistrarError};
use crate::version::{VersionError, candidates};

/// What the agent tells the registrar about itself.
#[derive(Debug, Clone)]
pub struct Registration {
    pub agent_id: String,
    pub request: RegisterRequest,
    /// The agent's enabled API versions (`api_versions`).
    pub enabled_versions: Vec<ApiVersion>,
}

/// Why registration did not complete.
#[derive(Debug, Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Registrar(#[from] RegistrarError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("TPM could not decrypt the registrar's credential for agent {agent_id}: {source}")]
    Activation {
        agent_id: String,
        #[source]
        source: anyhow::Error,
    },
}

/// The result of a completed registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub agent_id: String,
    /// The API version the registrar accepted.
    pub api_version: ApiVersion,
}

/// Registers and activates the agent. `decrypt_credential` receives the registrar's
/// tpm2-tools credential blob (§3.5) and returns the decrypted credential bytes.
pub async fn register_and_activate<F, Fut>(
    client: &RegistrarClient,
    registration: &Registration,
    policy: &RetryPolicy,
    mut decrypt_credential: F,
) -> Result<Registered, RegistrationError>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<u8>>>,
{
    let agent_id = registration.agent_id.as_str();
    let registrar = client.base_url();
    tracing::info!(agent_id, registrar, "asking registrar for its API version");
    let info = retry(
        policy,
        "registrar GET /version",
        || client.version(),
        RegistrarError::is_transient,
    )
    .await?;
    match &info {
        Some(v) => {
            tracing::info!(agent_id, registrar, current_version = %v.current_version, "registrar API version")
        }
        None => tracing::info!(
            agent_id,
            registrar,
            "registrar has no /version endpoint; trying enabled versions"
        ),
    }
    let versions = candidates(&registration.enabled_versions, info.as_ref())?;

    let (api_version, blob) =
        register_with_first_accepted(client, registration, policy, &versions).await?;
    tracing::info!(agent_id, registrar, %api_version, blob_bytes = blob.len(), "registered; activating credential with the TPM");

    let credential =
        decrypt_credential(blob)
            .await
            .map_err(|source| RegistrationError::Activation {
                agent_id: agent_id.to_string(),
                source,
            })?;
    let auth_tag = activation_auth_tag(&credential, agent_id);

    retry(
        policy,
        "registrar PUT activate",
        || client.activate(api_version, agent_id, &auth_tag),
        RegistrarError::is_transient,
    )
    .await?;
    tracing::info!(agent_id, registrar, %api_version, "agent activated at the registrar");
    Ok(Registered {
        agent_id: agent_id.to_string(),
        api_version,
    })
}

/// Tries each candidate version (with retries for transient failures) until one is
/// accepted; a 403 stops the search (identity conflict, §1.2).
async fn register_with_first_accepted(
    client: &RegistrarClient,
    registration: &Registration,
    policy: &RetryPolicy,
    versions: &[ApiVersion],
) -> Result<(ApiVersion, Vec<u8>), RegistrationError> {
    let agent_id = registration.agent_id.as_str();
    let mut last_error = None;
    for &version in versions {
        tracing::info!(agent_id, registrar = client.base_url(), api_version = %version, "registering agent");
        let attempt = retry(
            policy,
            "registrar POST register",
            || client.register(version, agent_id, &registration.request),
            RegistrarError::is_transient,
        )
        .await;
        match attempt {
            Ok(blob) => return Ok((version, blob)),
            Err(e @ RegistrarError::IdentityConflict { .. }) => return Err(e.into()),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(agent_id, api_version = %version, error = %e, "registration rejected; trying the next API version");
                last_error = Some(e);
            }
        }
    }
    Err(match last_error {
        Some(e) => e.into(),
        None => VersionError::NoneEnabled.into(),
    })
}
