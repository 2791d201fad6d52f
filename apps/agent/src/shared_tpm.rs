//! Async access to the synchronous TPM client: one connection and the agent's identity
//! loaded in it, behind a mutex, every call run on tokio's blocking pool so the runtime
//! keeps serving while the TPM works (an RSA AK creation takes up to half a second on
//! swtpm). The mutex serialises commands, which a TPM requires anyway.
//!
//! Owns recovery from a lost TPM. When the TPM cannot be reached, or no longer holds the
//! agent's objects (swtpm or a resource manager restarted, the TPM was reset), a call made
//! through [`SharedTpm::with_identity`] opens the TPM again and reloads the EK and AK (the
//! same keys, from the EK source and the AK blob kept since start) before trying once
//! more; while that fails the call answers the error, and the next call tries again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use keylime_tpm::{Tcti, Tpm, TpmError};
use thiserror::Error;

use crate::tpm_setup::{TpmIdentity, TpmSettings, TpmSetupError};

/// A TPM call could not run.
#[derive(Debug, Error)]
pub enum SharedTpmError {
    #[error("cannot open the TPM at {tcti}: {source}")]
    Open {
        tcti: String,
        #[source]
        source: TpmError,
    },
    #[error("the TPM at {tcti} was lost and the agent's keys could not be loaded again: {source}")]
    Reload {
        tcti: String,
        #[source]
        source: TpmSetupError,
    },
    #[error("the agent's TPM identity is not prepared")]
    NoIdentity,
    #[error("a previous TPM call panicked; the TPM connection is unusable")]
    Poisoned,
    #[error("the TPM worker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// An error of a TPM operation that can say whether the TPM was lost.
pub trait TpmFailure {
    /// Whether opening the TPM again and reloading the agent's keys may help.
    fn is_lost_tpm(&self) -> bool;
}

impl TpmFailure for TpmError {
    fn is_lost_tpm(&self) -> bool {
        TpmError::is_lost_tpm(self)
    }
}

impl TpmFailure for TpmSetupError {
    fn is_lost_tpm(&self) -> bool {
        TpmSetupError::is_lost_tpm(self)
    }
}

/// What the mutex guards.
struct Link {
    tcti: Tcti,
    tpm: Tpm,
    /// The identity loaded in `tpm`; its handles are stale while `lost`.
    identity: Option<TpmIdentity>,
    /// Set when a call found the TPM gone; the next identity call re-establishes first.
    lost: bool,
}

/// The agent's TPM connection, cheap to clone.
#[derive(Clone)]
pub struct SharedTpm {
    inner: Arc<Mutex<Link>>,
    /// The AK's current handle (upstream's `ak_handle` in `GET /agent/info`).
    ak_handle: Arc<AtomicU32>,
}

impl SharedTpm {
    /// Opens the TPM on a blocking thread. Without a resource manager (swtpm,
    /// `/dev/tpm0`) opening flushes objects a killed previous agent left loaded.
    pub async fn open(tcti: Tcti) -> Result<Self, SharedTpmError> {
        let link = tokio::task::spawn_blocking(move || {
            let tpm = open(&tcti)?;
            Ok::<_, SharedTpmError>(Link {
                tcti,
                tpm,
                identity: None,
                lost: false,
            })
        })
        .await??;
        Ok(Self {
            inner: Arc::new(Mutex::new(link)),
            ak_handle: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Creates or loads the EK and AK ([`TpmIdentity::prepare`]) and keeps them for
    /// [`SharedTpm::with_identity`]; returns a copy (its public parts are what the agent
    /// registers).
    pub async fn prepare_identity(
        &self,
        settings: TpmSettings,
    ) -> Result<Result<TpmIdentity, TpmSetupError>, SharedTpmError> {
        let ak_handle = Arc::clone(&self.ak_handle);
        self.locked(move |link| {
            let identity = TpmIdentity::prepare(&mut link.tpm, &settings)?;
            ak_handle.store(identity.ak.handle, Ordering::Relaxed);
            link.identity = Some(identity.clone());
            Ok(identity)
        })
        .await
    }

    /// Runs `f` with exclusive use of the TPM on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, SharedTpmError>
    where
        F: FnOnce(&mut Tpm) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.locked(move |link| f(&mut link.tpm)).await
    }

    /// Runs `f` with the TPM and the identity loaded in it. When the TPM was found lost,
    /// it is opened again and the identity reloaded first; when `f` fails because the TPM
    /// is lost, the same is done and `f` runs once more. `Err` when the TPM could not be
    /// re-established; `Ok(Err)` is `f`'s own failure.
    pub async fn with_identity<R, E, F>(&self, f: F) -> Result<Result<R, E>, SharedTpmError>
    where
        F: Fn(&mut Tpm, &TpmIdentity) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: TpmFailure + std::fmt::Display + Send + 'static,
    {
        let ak_handle = Arc::clone(&self.ak_handle);
        self.locked(move |link| {
            if link.lost {
                reestablish(link, &ak_handle)?;
            }
            let identity = link.identity.as_ref().ok_or(SharedTpmError::NoIdentity)?;
            match f(&mut link.tpm, identity) {
                Err(e) if e.is_lost_tpm() => {
                    tracing::warn!(tcti = %link.tcti, error = %e, "the TPM was lost; opening it again");
                    link.lost = true;
                    reestablish(link, &ak_handle)?;
                    let identity = link.identity.as_ref().ok_or(SharedTpmError::NoIdentity)?;
                    let second = f(&mut link.tpm, identity);
                    if matches!(&second, Err(e) if e.is_lost_tpm()) {
                        link.lost = true;
                    }
                    Ok(second)
                }
                other => Ok(other),
            }
        })
        .await?
    }

    /// The AK's handle in the TPM as last loaded.
    pub fn ak_handle(&self) -> u32 {
        self.ak_handle.load(Ordering::Relaxed)
    }

    /// Flushes the identity's transient objects (the AK, and the EK unless persistent).
    /// Nothing is flushed while the TPM is lost: its handles may name other objects.
    pub async fn release_identity(&self) -> Result<(), SharedTpmError> {
        self.locked(|link| {
            if let Some(identity) = link.identity.take()
                && !link.lost
            {
                identity.release(&mut link.tpm);
            }
        })
        .await
    }

    async fn locked<R, F>(&self, f: F) -> Result<R, SharedTpmError>
    where
        F: FnOnce(&mut Link) -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut link = inner.lock().map_err(|_| SharedTpmError::Poisoned)?;
            Ok(f(&mut link))
        })
        .await?
    }
}

fn open(tcti: &Tcti) -> Result<Tpm, SharedTpmError> {
    Tpm::open(tcti).map_err(|source| SharedTpmError::Open {
        tcti: tcti.to_string(),
        source,
    })
}

/// Opens the TPM again (starting it if it was reset; without a resource manager, flushing
/// whatever is left loaded) and reloads the identity in it. On failure the link stays
/// lost, so the next call tries again.
fn reestablish(link: &mut Link, ak_handle: &AtomicU32) -> Result<(), SharedTpmError> {
    let Some(identity) = link.identity.as_ref() else {
        return Err(SharedTpmError::NoIdentity);
    };
    let fresh = open(&link.tcti)?;
    // The old connection's objects went with the TPM (or are flushed by opening afresh):
    // its handles must not be flushed, they may name objects loaded since.
    std::mem::replace(&mut link.tpm, fresh).abandon();
    let reloaded = identity
        .reload(&mut link.tpm)
        .map_err(|source| SharedTpmError::Reload {
            tcti: link.tcti.to_string(),
            source,
        })?;
    tracing::info!(
        tcti = %link.tcti,
        ak_handle = format_args!("{:#010x}", reloaded.ak.handle),
        "TPM connection re-established; EK and AK loaded again"
    );
    ak_handle.store(reloaded.ak.handle, Ordering::Relaxed);
    link.identity = Some(reloaded);
    link.lost = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use keylime_testkit::swtpm::Swtpm;
    use keylime_tpm::quote::decode_quote_string;
    use keylime_tpm::{EkAlg, HashAlg, SignAlg, Signature, verify_signature};

    use super::*;
    use crate::quoting::{Quote, QuoteRequest, bind_and_quote};
    use crate::tpm_setup::EkSource;

    fn settings(dir: &std::path::Path) -> TpmSettings {
        TpmSettings {
            ek: EkSource::Create(EkAlg::Rsa2048),
            hash_alg: HashAlg::Sha256,
            sign_alg: SignAlg::RsaSsa,
            agent_data_path: dir.join("agent_data.json"),
        }
    }

    async fn quote(tpm: &SharedTpm) -> Result<Result<Quote, TpmError>, SharedTpmError> {
        tpm.with_identity(|t, identity| {
            bind_and_quote(
                t,
                &QuoteRequest {
                    ak: &identity.ak,
                    hash: HashAlg::Sha256,
                    sign: SignAlg::RsaSsa,
                    nonce: b"n0nce",
                    mask: 1 << 15,
                    pubkey_pem: "payload key",
                },
            )
        })
        .await
    }

    /// The TPM opened and an identity prepared in it, with its data file in `dir`.
    async fn prepared(swtpm: &Swtpm, dir: &std::path::Path) -> (SharedTpm, TpmIdentity) {
        let tcti = Tcti::parse(&swtpm.tcti_string()).unwrap();
        let tpm = SharedTpm::open(tcti).await.unwrap();
        let identity = tpm.prepare_identity(settings(dir)).await.unwrap().unwrap();
        (tpm, identity)
    }

    fn signed_by(quote: &Quote, identity: &TpmIdentity) -> bool {
        let parts = decode_quote_string(&quote.text).unwrap();
        let sig = Signature::parse(&parts.signature).unwrap();
        verify_signature(&identity.ak.public, &parts.attest, &sig).is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_tpm_gets_the_same_keys_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut swtpm = Swtpm::start();
        let (tpm, registered) = prepared(&swtpm, dir.path()).await;
        let first = quote(&tpm).await.unwrap().unwrap();
        assert!(signed_by(&first, &registered));

        swtpm.kill();
        match quote(&tpm).await {
            Err(SharedTpmError::Open { .. }) => {}
            other => panic!("quoted without a TPM: {other:?}"),
        }
        // Still unreachable: the next call tries again and fails the same way.
        assert!(matches!(
            quote(&tpm).await,
            Err(SharedTpmError::Open { .. })
        ));

        swtpm.restart().unwrap();
        let after = quote(&tpm).await.unwrap().unwrap();
        assert!(
            after.clock.reset_count > first.clock.reset_count,
            "{:?} then {:?}",
            first.clock,
            after.clock
        );
        assert!(
            signed_by(&after, &registered),
            "quote not signed by the registered AK"
        );
        assert_eq!(tpm.ak_handle(), {
            let h = tpm.call(|t| t.handles(0x8000_0000)).await.unwrap().unwrap();
            assert_eq!(h.len(), 2, "EK and AK loaded once each: {h:x?}");
            h[1]
        });
        tpm.release_identity().await.unwrap();
        let left = tpm.call(|t| t.handles(0x8000_0000)).await.unwrap().unwrap();
        assert!(left.is_empty(), "objects left loaded: {left:x?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_object_is_loaded_again_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let swtpm = Swtpm::start();
        let (tpm, registered) = prepared(&swtpm, dir.path()).await;
        // What a resource manager's restart does: the agent's objects flushed under it
        // (another client opening a TPM without a resource manager flushes what it finds).
        tpm.call(move |t| {
            let mut other = Tpm::open(t.tcti()).unwrap();
            assert!(other.handles(0x8000_0000).unwrap().is_empty());
        })
        .await
        .unwrap();
        let q = quote(&tpm).await.unwrap().unwrap();
        assert!(signed_by(&q, &registered));
        assert!(q.clock.safe);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_tpm_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Swtpm::start(), Swtpm::start());
        let (_tpm, registered) = prepared(&a, dir.path()).await;
        let mut other = Tpm::open(&Tcti::parse(&b.tcti_string()).unwrap()).unwrap();
        match registered.reload(&mut other) {
            Err(TpmSetupError::Replaced { key: "EK" }) => {}
            other => panic!("reloaded into another TPM: {other:?}"),
        }
        assert!(
            other.handles(0x8000_0000).unwrap().is_empty(),
            "the other TPM's EK was left loaded"
        );
    }
}
