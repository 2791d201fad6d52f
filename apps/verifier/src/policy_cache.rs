//! Runtime and measured-boot policies checked on upload and prepared once per version.
//!
//! Upload ([`check_runtime_policy`], [`check_mb_policy`]) proves a policy usable before it
//! is stored: schema, DSSE signature (required with `require_allow_list_signatures`,
//! checked whenever a key is given), excludes compiled, keys parsed. Attestation takes
//! prepared policies from the [`PolicyCache`], keyed by name and the store's generation
//! (which never repeats for a name, even when a policy is deleted and created again, so a
//! re-created policy is never mistaken for the old one): a policy is parsed and indexed once
//! per version and shared (`Arc`) by every agent naming
//! it, and an update reaches agents on their next attestation without touching their IMA
//! progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keylime_eventlog::PreparedMbPolicy;
use keylime_ima::PreparedRuntimePolicy;
use keylime_ima::policy::{DEFAULT_MAX_POLICY_LEN, RuntimePolicy};
use keylime_ima::policy::{DsseKey, PolicyDocument, verify};
use keylime_store::{PolicyKind, Store, StoreError};

use crate::error::ApiError;

/// Verifier options that shape policy handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// `measured_boot_policy_name` (`accept-all`, `reject-all`, `example`).
    pub measured_boot_policy_name: String,
    /// `measured_boot_evaluate = always` (else once per agent).
    pub measured_boot_evaluate_always: bool,
    /// `ignore_tomtou_errors` (upstream semantics, PROTOCOL.md §11 Q3).
    pub ignore_tomtou_errors: bool,
    /// `require_allow_list_signatures`.
    pub require_allow_list_signatures: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            measured_boot_policy_name: "accept-all".into(),
            measured_boot_evaluate_always: false,
            ignore_tomtou_errors: false,
            require_allow_list_signatures: false,
        }
    }
}

/// Why an uploaded runtime policy is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyCheckError {
    /// 400: malformed or unusable.
    #[error("{0}")]
    Invalid(String),
    /// 401: a signature was required and is missing or wrong.
    #[error("{0}")]
    Signature(String),
}

impl PolicyCheckError {
    pub fn into_api_error(self) -> ApiError {
        match self {
            PolicyCheckError::Invalid(m) => ApiError::BadRequest(m),
            PolicyCheckError::Signature(m) => ApiError::Unauthorized(m),
        }
    }
}

/// Check an uploaded runtime policy (plain JSON or DSSE envelope) completely; returns the
/// policy it carries. `key`: the `runtime_policy_key` bytes (a PEM public key or X.509
/// certificate).
pub fn check_runtime_policy(
    text: &[u8],
    key: Option<&[u8]>,
    require_signature: bool,
) -> Result<RuntimePolicy, PolicyCheckError> {
    let doc = PolicyDocument::parse(text, DEFAULT_MAX_POLICY_LEN, true).map_err(|e| {
        PolicyCheckError::Invalid(format!(
            "Runtime policy is malformatted: {}",
            e.upstream_message()
        ))
    })?;
    // As upstream, a key only counts with a signed (DSSE) policy: an unsigned policy sent
    // with a key is "no key was given" (401), not "not signed".
    let key = key.filter(|_| matches!(doc, PolicyDocument::Dsse { .. }));
    if require_signature && key.is_none() {
        return Err(PolicyCheckError::Signature(
            "Runtime policy signature verification required but no key was given!".into(),
        ));
    }
    match (&doc, key) {
        (PolicyDocument::Plain(_), _) if require_signature => {
            return Err(PolicyCheckError::Invalid(
                "Runtime policy is not signed!".into(),
            ));
        }
        (PolicyDocument::Dsse { envelope, .. }, Some(key)) => {
            let pem = std::str::from_utf8(key).map_err(|_| {
                PolicyCheckError::Invalid("runtime_policy_key is not PEM text".into())
            })?;
            let key = DsseKey::from_pem(pem)
                .map_err(|e| PolicyCheckError::Invalid(format!("runtime_policy_key: {e}")))?;
            verify(envelope, std::slice::from_ref(&key)).map_err(|e| {
                PolicyCheckError::Signature(format!(
                    "Runtime policy failed DSSE signature verification! ({e})"
                ))
            })?;
        }
        _ => {}
    }
    let policy = match doc {
        PolicyDocument::Plain(p) | PolicyDocument::Dsse { policy: p, .. } => p,
    };
    PreparedRuntimePolicy::prepare(&policy).map_err(|e| {
        PolicyCheckError::Invalid(format!(
            "Runtime policy is malformatted: {}",
            e.upstream_message()
        ))
    })?;
    Ok(policy)
}

/// Parse stored runtime-policy text (already checked on upload) and prepare it.
pub fn prepare_runtime_policy(text: &str) -> Result<PreparedRuntimePolicy, String> {
    prepare_runtime_policy_within(text, |_| Ok(()))
}

/// [`prepare_runtime_policy`] that first lets `limit` refuse a policy asking for too much
/// work (before its excludes are compiled).
pub fn prepare_runtime_policy_within(
    text: &str,
    limit: impl FnOnce(&keylime_ima::policy::RuntimePolicy) -> Result<(), String>,
) -> Result<PreparedRuntimePolicy, String> {
    let doc = PolicyDocument::parse(text.as_bytes(), DEFAULT_MAX_POLICY_LEN, true)
        .map_err(|e| e.to_string())?;
    limit(doc.policy())?;
    PreparedRuntimePolicy::prepare(doc.policy()).map_err(|e| e.to_string())
}

/// Check a measured-boot reference state against the configured policy.
pub fn check_mb_policy(policy_name: &str, text: &str) -> Result<PreparedMbPolicy, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    PreparedMbPolicy::prepare(policy_name, Some(&value)).map_err(|e| e.to_string())
}

/// Why a policy could not be loaded for an attestation.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("{kind} policy {name:?} does not exist")]
    Missing { kind: &'static str, name: String },
    #[error("{kind} policy {name:?} is unusable: {reason}")]
    Unusable {
        kind: &'static str,
        name: String,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Entry<T> = (i64, Arc<T>);

/// Prepared policies by name and generation, shared by every poll task.
pub struct PolicyCache {
    store: Store,
    settings: PolicySettings,
    runtime: Mutex<HashMap<String, Entry<PreparedRuntimePolicy>>>,
    mb: Mutex<HashMap<String, Entry<PreparedMbPolicy>>>,
}

impl PolicyCache {
    pub fn new(store: Store, settings: PolicySettings) -> Self {
        PolicyCache {
            store,
            settings,
            runtime: Mutex::new(HashMap::new()),
            mb: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// The prepared runtime policy `name` at its current generation.
    pub async fn runtime(&self, name: &str) -> Result<Arc<PreparedRuntimePolicy>, PolicyLoadError> {
        let kind = PolicyKind::Runtime;
        let repo = self.store.verifier();
        let missing = || PolicyLoadError::Missing {
            kind: "runtime",
            name: name.to_owned(),
        };
        let generation = repo
            .policy_generation(kind, name)
            .await?
            .ok_or_else(missing)?;
        if let Some(hit) = cached(&self.runtime, name, generation) {
            return Ok(hit);
        }
        let stored = repo.policy(kind, name).await?.ok_or_else(missing)?;
        let text = stored.body.unwrap_or_default();
        let prepared = tokio::task::spawn_blocking(move || prepare_runtime_policy(&text))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|reason| PolicyLoadError::Unusable {
                kind: "runtime",
                name: name.to_owned(),
                reason,
            })?;
        tracing::info!(
            policy = name,
            generation = stored.generation,
            "runtime policy prepared"
        );
        Ok(insert(&self.runtime, name, stored.generation, prepared))
    }

    /// The prepared measured-boot policy `name` at its current generation.
    pub async fn mb(&self, name: &str) -> Result<Arc<PreparedMbPolicy>, PolicyLoadError> {
        let kind = PolicyKind::MeasuredBoot;
        let repo = self.store.verifier();
        let missing = || PolicyLoadError::Missing {
            kind: "measured-boot",
            name: name.to_owned(),
        };
        let generation = repo
            .policy_generation(kind, name)
            .await?
            .ok_or_else(missing)?;
        if let Some(hit) = cached(&self.mb, name, generation) {
            return Ok(hit);
        }
        let stored = repo.policy(kind, name).await?.ok_or_else(missing)?;
        let unusable = |reason: String| PolicyLoadError::Unusable {
            kind: "measured-boot",
            name: name.to_owned(),
            reason,
        };
        let refstate = match stored.body.as_deref() {
            None => None,
            Some(t) => Some(
                serde_json::from_str::<serde_json::Value>(t)
                    .map_err(|e| unusable(e.to_string()))?,
            ),
        };
        let prepared =
            PreparedMbPolicy::prepare(&self.settings.measured_boot_policy_name, refstate.as_ref())
                .map_err(|e| unusable(e.to_string()))?;
        Ok(insert(&self.mb, name, stored.generation, prepared))
    }
}

fn cached<T>(
    map: &Mutex<HashMap<String, Entry<T>>>,
    name: &str,
    generation: i64,
) -> Option<Arc<T>> {
    let map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.get(name)
        .filter(|(g, _)| *g == generation)
        .map(|(_, p)| Arc::clone(p))
}

fn insert<T>(
    map: &Mutex<HashMap<String, Entry<T>>>,
    name: &str,
    generation: i64,
    value: T,
) -> Arc<T> {
    let value = Arc::new(value);
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.insert(name.to_owned(), (generation, Arc::clone(&value)));
    value
}
