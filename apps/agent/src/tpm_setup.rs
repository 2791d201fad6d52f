//! The agent's TPM identity: the EK (created from the default template or read from a
//! persistent handle), its certificate and chain from NV, and the AK — reused from the
//! data file when it still belongs to this EK and these algorithms, created otherwise.
//!
//! Runs on a blocking thread (the TPM client is synchronous). It owns which transient
//! objects the agent loaded, so that [`TpmIdentity::release`] can flush exactly those.

use std::path::PathBuf;

use base64::Engine as _;
use keylime_config::{AgentConfig, EkHandleSetting};
use keylime_tpm::{AkBlob, CredentialBlob, EkAlg, HashAlg, KeyHandle, SignAlg, Tpm, TpmError};
use thiserror::Error;

use crate::agent_id::pem_encode;
use crate::state::{AgentData, FORMAT_VERSION, StateError};

/// Which EK the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkSource {
    /// Create it from the TCG default template (`ek_handle = generate`).
    Create(EkAlg),
    /// Read it from a persistent handle (`ek_handle = 0x81…`).
    Persistent(u32),
}

/// TPM-related options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmSettings {
    pub ek: EkSource,
    pub hash_alg: HashAlg,
    pub sign_alg: SignAlg,
    pub agent_data_path: PathBuf,
}

/// Why the TPM identity could not be set up or used.
#[derive(Debug, Error)]
pub enum TpmSetupError {
    #[error("configuration option {option} = {value:?} is not supported: {source}")]
    Option {
        option: &'static str,
        value: String,
        #[source]
        source: TpmError,
    },
    #[error("TPM operation '{operation}' failed: {source}")]
    Tpm {
        operation: &'static str,
        #[source]
        source: TpmError,
    },
    #[error("cannot persist the new AK: {0}")]
    Persist(#[source] StateError),
    #[error(
        "the TPM's {key} is not the one the agent registered (was the TPM cleared or replaced?); \
         restart the agent to register again"
    )]
    Replaced { key: &'static str },
}

impl TpmSetupError {
    /// Whether the TPM was unreachable or had lost the agent's objects (see
    /// [`TpmError::is_lost_tpm`]).
    pub fn is_lost_tpm(&self) -> bool {
        matches!(self, TpmSetupError::Tpm { source, .. } if source.is_lost_tpm())
    }
}

fn tpm_err(operation: &'static str) -> impl FnOnce(TpmError) -> TpmSetupError {
    move |source| TpmSetupError::Tpm { operation, source }
}

impl TpmSettings {
    /// Reads `tpm_encryption_alg`, `ek_handle`, `tpm_hash_alg`, `tpm_signing_alg` and
    /// `agent_data_path`.
    pub fn from_config(config: &AgentConfig) -> Result<Self, TpmSetupError> {
        let parse_err = |option: &'static str, value: &str| {
            let value = value.to_string();
            move |source| TpmSetupError::Option {
                option,
                value,
                source,
            }
        };
        let ek = match config.ek_handle {
            EkHandleSetting::Persistent(handle) => EkSource::Persistent(handle),
            EkHandleSetting::Generate => EkSource::Create(
                config
                    .tpm_encryption_alg
                    .parse()
                    .map_err(parse_err("tpm_encryption_alg", &config.tpm_encryption_alg))?,
            ),
        };
        Ok(Self {
            ek,
            hash_alg: config
                .tpm_hash_alg
                .parse()
                .map_err(parse_err("tpm_hash_alg", &config.tpm_hash_alg))?,
            sign_alg: config
                .tpm_signing_alg
                .parse()
                .map_err(parse_err("tpm_signing_alg", &config.tpm_signing_alg))?,
            agent_data_path: config.agent_data_path.clone(),
        })
    }
}

/// The EK and AK the agent holds in the TPM, and what it sends about them.
#[derive(Debug, Clone)]
pub struct TpmIdentity {
    pub ek: KeyHandle,
    /// `true` when the agent created the EK (transient, flushed at exit).
    pub ek_is_transient: bool,
    pub ak: KeyHandle,
    /// EK certificate followed by the NV chain certificates, PEM; `None` without an EK cert.
    pub ek_cert_pem: Option<String>,
    /// `true` when the AK came from the data file.
    pub ak_reused: bool,
    /// Where the EK comes from, to load it again after the TPM lost it.
    pub ek_source: EkSource,
    /// The AK's public and wrapped private parts, as persisted in the data file.
    pub ak_blob: AkBlob,
}

impl TpmIdentity {
    /// Creates or loads the EK and AK (see the module docs).
    pub fn prepare(tpm: &mut Tpm, settings: &TpmSettings) -> Result<Self, TpmSetupError> {
        let (ek, ek_is_transient, ek_alg) = load_ek(tpm, settings.ek)?;
        tracing::info!(
            ek = ek_alg.map(EkAlg::name).unwrap_or("unknown"),
            persistent = !ek_is_transient,
            "EK ready"
        );
        match Self::keys_under_ek(tpm, settings, &ek, ek_alg) {
            Ok((ek_cert_pem, ak)) => Ok(Self {
                ek,
                ek_is_transient,
                ak: ak.key,
                ek_cert_pem,
                ak_reused: ak.reused,
                ek_source: settings.ek,
                ak_blob: ak.blob,
            }),
            Err(err) => {
                if ek_is_transient {
                    flush_logged(tpm, &ek, "EK");
                }
                Err(err)
            }
        }
    }

    /// EK certificate chain and AK for an EK already loaded.
    fn keys_under_ek(
        tpm: &mut Tpm,
        settings: &TpmSettings,
        ek: &KeyHandle,
        ek_alg: Option<EkAlg>,
    ) -> Result<(Option<String>, LoadedAk), TpmSetupError> {
        let ek_cert_pem = match ek_alg {
            Some(alg) => read_ek_cert_chain(tpm, alg)?,
            None => {
                tracing::info!("persistent EK is not RSA-2048 or P-256; no EK certificate is read");
                None
            }
        };
        let ak = load_or_create_ak(tpm, settings, ek)?;
        Ok((ek_cert_pem, ak))
    }

    /// Loads this identity's EK and AK again into a TPM that lost them (restarted, or a
    /// new connection through a resource manager), from the EK source and the AK blob
    /// kept since start: the same keys under new handles. Never creates an AK: a TPM
    /// whose EK is not the registered one is refused ([`TpmSetupError::Replaced`]).
    pub fn reload(&self, tpm: &mut Tpm) -> Result<Self, TpmSetupError> {
        let (ek, ek_is_transient, _) = load_ek(tpm, self.ek_source)?;
        let ak = if ek.public != self.ek.public {
            Err(TpmSetupError::Replaced { key: "EK" })
        } else {
            tpm.load_ak(&ek, &self.ak_blob)
                .map_err(tpm_err("load AK"))
                .and_then(|ak| {
                    if ak.public == self.ak.public {
                        Ok(ak)
                    } else {
                        flush_logged(tpm, &ak, "AK");
                        Err(TpmSetupError::Replaced { key: "AK" })
                    }
                })
        };
        match ak {
            Ok(ak) => Ok(Self {
                ek,
                ek_is_transient,
                ak,
                ek_cert_pem: self.ek_cert_pem.clone(),
                ak_reused: self.ak_reused,
                ek_source: self.ek_source,
                ak_blob: self.ak_blob.clone(),
            }),
            Err(e) => {
                if ek_is_transient {
                    flush_logged(tpm, &ek, "EK");
                }
                Err(e)
            }
        }
    }

    /// ActivateCredential on the registrar's tpm2-tools blob; returns the credential.
    pub fn activate_credential(
        &self,
        tpm: &mut Tpm,
        blob: &[u8],
    ) -> Result<Vec<u8>, TpmSetupError> {
        let blob = CredentialBlob::from_tpm2_tools(blob)
            .map_err(tpm_err("decode registrar credential blob"))?;
        tpm.activate_credential(&self.ak, &self.ek, &blob.id_object, &blob.encrypted_secret)
            .map_err(tpm_err("ActivateCredential"))
    }

    /// Flushes the transient objects this identity loaded (the AK, and the EK unless it
    /// is persistent). Failures are logged: there is nothing better to do at exit.
    pub fn release(&self, tpm: &mut Tpm) {
        flush_logged(tpm, &self.ak, "AK");
        if self.ek_is_transient {
            flush_logged(tpm, &self.ek, "EK");
        }
    }
}

/// The EK from `source`: the handle, whether the agent created it (transient), and its
/// algorithm when it is a template kind with a known certificate index.
fn load_ek(
    tpm: &mut Tpm,
    source: EkSource,
) -> Result<(KeyHandle, bool, Option<EkAlg>), TpmSetupError> {
    Ok(match source {
        EkSource::Create(alg) => (
            tpm.create_ek(alg).map_err(tpm_err("create EK"))?,
            true,
            Some(alg),
        ),
        EkSource::Persistent(handle) => {
            let ek = tpm
                .load_persistent_ek(handle)
                .map_err(tpm_err("read persistent EK"))?;
            // Only the low-range template kinds have a known certificate index.
            let alg = match ek.public.key {
                keylime_tpm::PublicKey::Rsa { bits: 2048, .. } => Some(EkAlg::Rsa2048),
                keylime_tpm::PublicKey::Ecc {
                    curve: keylime_tpm::EccCurve::NistP256,
                    ..
                } => Some(EkAlg::EccP256),
                _ => None,
            };
            (ek, false, alg)
        }
    })
}

fn flush_logged(tpm: &mut Tpm, key: &KeyHandle, what: &'static str) {
    let handle = key.handle;
    match tpm.flush(key.clone()) {
        Ok(()) => tracing::debug!(
            object = what,
            handle = format_args!("{handle:#010x}"),
            "flushed TPM object"
        ),
        Err(e) => {
            tracing::warn!(object = what, handle = format_args!("{handle:#010x}"), error = %e, "could not flush TPM object")
        }
    }
}

/// EK certificate then chain certificates from NV, as one PEM bundle (the registrar
/// reads only the first certificate, which must be the EK's — PROTOCOL.md Q6).
fn read_ek_cert_chain(tpm: &mut Tpm, alg: EkAlg) -> Result<Option<String>, TpmSetupError> {
    let Some(ek_cert) = tpm
        .read_ek_certificate(alg)
        .map_err(tpm_err("read EK certificate from NV"))?
    else {
        tracing::info!(ek = alg.name(), "no EK certificate in NV");
        return Ok(None);
    };
    let chain = tpm
        .read_ek_chain_certificates()
        .map_err(tpm_err("read EK chain certificates from NV"))?;
    tracing::info!(
        ek = alg.name(),
        chain_certificates = chain.len(),
        "EK certificate read from NV"
    );
    let mut pem = pem_encode("CERTIFICATE", &ek_cert);
    for cert in &chain {
        pem.push_str(&pem_encode("CERTIFICATE", cert));
    }
    Ok(Some(pem))
}

/// b64 TPM2B_PUBLIC, the form `ek_tpm`/`aik_tpm` travel in and the data file records.
pub fn public_b64(key: &KeyHandle) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.public.to_tpm2b())
}

/// The AK in the TPM, its blob, and whether it came from the data file.
struct LoadedAk {
    key: KeyHandle,
    blob: AkBlob,
    reused: bool,
}

fn load_or_create_ak(
    tpm: &mut Tpm,
    settings: &TpmSettings,
    ek: &KeyHandle,
) -> Result<LoadedAk, TpmSetupError> {
    let path = settings.agent_data_path.as_path();
    let ek_public = public_b64(ek);
    let hash = settings.hash_alg.name();
    let sign = settings.sign_alg.name();
    let stored = match AgentData::<AkBlob>::load(path) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable agent data file; creating a new AK");
            None
        }
    };
    if let Some(data) = stored {
        match data.check(&ek_public, hash, sign) {
            Err(reason) => {
                tracing::info!(path = %path.display(), %reason, "stored AK does not fit; creating a new AK")
            }
            Ok(()) => match tpm.load_ak(ek, &data.ak) {
                Ok(ak) => {
                    tracing::info!(path = %path.display(), "reusing the AK from the agent data file");
                    return Ok(LoadedAk {
                        key: ak,
                        blob: data.ak,
                        reused: true,
                    });
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "the TPM refused the stored AK (was it cleared?); creating a new AK"
                ),
            },
        }
    }
    let blob = tpm
        .create_ak(ek, settings.hash_alg, settings.sign_alg)
        .map_err(tpm_err("create AK"))?;
    let ak = tpm.load_ak(ek, &blob).map_err(tpm_err("load new AK"))?;
    let data = AgentData {
        format_version: FORMAT_VERSION,
        ek_public,
        ak_hash_alg: hash.to_string(),
        ak_sign_alg: sign.to_string(),
        ak: blob,
    };
    if let Err(e) = data.store(path) {
        flush_logged(tpm, &ak, "AK");
        return Err(TpmSetupError::Persist(e));
    }
    tracing::info!(path = %path.display(), hash, sign, "created a new AK and saved it");
    Ok(LoadedAk {
        key: ak,
        blob: data.ak,
        reused: false,
    })
}
