//! Async access to the synchronous TPM client: one `Tpm` behind a mutex, every call run
//! on tokio's blocking pool so the runtime keeps serving while the TPM works (an RSA AK
//! creation takes up to half a second on swtpm).
//!
//! The pull API (quotes) will share the same handle; the mutex serialises commands, which
//! a TPM requires anyway.

use std::sync::{Arc, Mutex};

use keylime_tpm::{Tcti, Tpm};
use thiserror::Error;

/// A TPM call could not run.
#[derive(Debug, Error)]
pub enum SharedTpmError {
    #[error("cannot open the TPM at {tcti}: {source}")]
    Open {
        tcti: String,
        #[source]
        source: keylime_tpm::TpmError,
    },
    #[error("a previous TPM call panicked; the TPM connection is unusable")]
    Poisoned,
    #[error("the TPM worker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The agent's TPM connection, cheap to clone.
#[derive(Clone)]
pub struct SharedTpm {
    inner: Arc<Mutex<Tpm>>,
}

impl SharedTpm {
    /// Opens the TPM on a blocking thread. Without a resource manager (swtpm,
    /// `/dev/tpm0`) opening flushes objects a killed previous agent left loaded.
    pub async fn open(tcti: Tcti) -> Result<Self, SharedTpmError> {
        let tpm = tokio::task::spawn_blocking(move || {
            Tpm::open(&tcti).map_err(|source| SharedTpmError::Open {
                tcti: tcti.to_string(),
                source,
            })
        })
        .await??;
        Ok(Self {
            inner: Arc::new(Mutex::new(tpm)),
        })
    }

    /// Runs `f` with exclusive use of the TPM on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, SharedTpmError>
    where
        F: FnOnce(&mut Tpm) -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut tpm = inner.lock().map_err(|_| SharedTpmError::Poisoned)?;
            Ok(f(&mut tpm))
        })
        .await?
    }
}
