//! The blocking TPM client: one connection, one command at a time.
//!
//! Owns the transport, retries commands the TPM asks to have resent (RETRY, YIELDED,
//! TESTING), and tracks the transient objects it loaded so they can be flushed. Without a
//! resource manager (swtpm, `/dev/tpm0`) objects outlive the connection, so [`Tpm::open`]
//! flushes whatever a previous (possibly killed) client left loaded. Callers on an async
//! runtime wrap calls in `spawn_blocking`.

mod keys;
mod nv;
mod pcrs;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::alg::{HashAlg, SignAlg};
use crate::command::{Auth, Command, Response, cc, handle, response_code, split_response};
use crate::error::{Result, TpmError};
use crate::marshal::Reader;
use crate::public::Public;
use crate::rc::RC_INITIALIZE;
use crate::transport::{Tcti, Transport};

/// An AK as created under an EK, to be stored and loaded again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AkBlob {
    /// `TPM2B_PUBLIC` (with size prefix), as `tpm2_createak -u` writes it.
    pub public: Vec<u8>,
    /// `TPM2B_PRIVATE` (with size prefix), as `tpm2_createak -r` writes it.
    pub private: Vec<u8>,
    pub hash: HashAlg,
    pub sign: SignAlg,
}

/// What TPM2_Quote returns, as wire bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteOutput {
    /// The exact `TPMS_ATTEST` bytes the TPM signed (content of the `TPM2B_ATTEST`).
    pub attest: Vec<u8>,
    /// The `TPMT_SIGNATURE` bytes.
    pub signature: Vec<u8>,
}

/// What TPM2_Certify returns, as wire bytes (same shape as a quote).
pub type CertifyOutput = QuoteOutput;

/// How many times a command is resent on RETRY/YIELDED/TESTING before giving up.
const MAX_RETRIES: u32 = 50;

const CAP_ALGS: u32 = 0;
const CAP_HANDLES: u32 = 1;
const CAP_PCRS: u32 = 5;
const CAP_TPM_PROPERTIES: u32 = 6;

/// A key loaded in the TPM and its public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHandle {
    pub handle: u32,
    pub public: Public,
}

/// A connection to a TPM.
#[derive(Debug)]
pub struct Tpm {
    transport: Transport,
    tcti: Tcti,
    /// Transient objects this client loaded and has not flushed.
    loaded: Vec<u32>,
}

impl Tpm {
    /// Connect to the TPM. Runs `TPM2_Startup(CLEAR)` if the TPM was not started, and when
    /// there is no resource manager flushes transient objects and sessions left behind.
    pub fn open(tcti: &Tcti) -> Result<Tpm> {
        let transport = Transport::open(tcti)?;
        let mut tpm = Tpm {
            transport,
            tcti: tcti.clone(),
            loaded: Vec::new(),
        };
        match tpm.get_capability(CAP_TPM_PROPERTIES, 0x100, 1) {
            Err(TpmError::Tpm { rc, .. }) if rc.0 == RC_INITIALIZE => {
                debug!(tcti = %tcti, "TPM not started; sending TPM2_Startup(CLEAR)");
                let mut c = Command::new("Startup", cc::STARTUP);
                c.params.u16(0x0000);
                tpm.execute(c, 0)?;
            }
            other => {
                other?;
            }
        }
        if !tcti.has_resource_manager() {
            tpm.flush_stale()?;
        }
        Ok(tpm)
    }

    /// The TCTI this client is connected to.
    pub fn tcti(&self) -> &Tcti {
        &self.tcti
    }

    fn flush_stale(&mut self) -> Result<()> {
        let mut stale = self.handles(handle::TRANSIENT_FIRST)?;
        stale.extend(self.handles(handle::LOADED_SESSION_FIRST)?);
        stale.extend(self.handles(handle::SAVED_SESSION_FIRST)?);
        stale.dedup();
        for h in stale {
            warn!(
                handle = format_args!("0x{h:08x}"),
                "flushing object left loaded by a previous client"
            );
            self.flush_handle(h)?;
        }
        Ok(())
    }

    /// Send a command, resending it while the TPM answers RETRY/YIELDED/TESTING, and split a
    /// successful response. `n_handles` is the number of handles the response carries.
    pub(crate) fn execute(&mut self, command: Command, n_handles: usize) -> Result<Response> {
        let bytes = command.to_bytes();
        let mut attempt = 0;
        loop {
            let resp = self.transport.transact(&bytes)?;
            let rc = response_code(command.name, &resp)?;
            if rc.0 == 0 {
                return split_response(command.name, &resp, n_handles);
            }
            if rc.is_retryable() && attempt < MAX_RETRIES {
                attempt += 1;
                debug!(command = command.name, %rc, attempt, "TPM asked to resend");
                std::thread::sleep(Duration::from_millis(10 * u64::from(attempt.min(20))));
                continue;
            }
            // A failed command leaves its policy sessions loaded; do not leak them.
            for s in command.policy_sessions() {
                let _ = self.flush_handle(s);
            }
            return Err(TpmError::Tpm {
                command: command.name,
                rc,
            });
        }
    }

    /// `TPM2_GetCapability`, one page; returns (moreData, capability data after the
    /// capability selector).
    fn get_capability(
        &mut self,
        capability: u32,
        property: u32,
        count: u32,
    ) -> Result<(bool, Vec<u8>)> {
        let mut c = Command::new("GetCapability", cc::GET_CAPABILITY);
        c.params.u32(capability).u32(property).u32(count);
        let resp = self.execute(c, 0)?;
        let mut r = Reader::new(&resp.params, "TPMS_CAPABILITY_DATA");
        let more = r.u8().map_err(|e| bad_response("GetCapability", e))? != 0;
        let got = r.u32().map_err(|e| bad_response("GetCapability", e))?;
        if got != capability {
            return Err(TpmError::BadResponse {
                command: "GetCapability",
                reason: format!("asked for capability {capability}, got {got}"),
            });
        }
        Ok((more, r.rest().to_vec()))
    }

    /// All handles of the type that `first` belongs to (e.g. [`handle::TRANSIENT_FIRST`]).
    pub fn handles(&mut self, first: u32) -> Result<Vec<u32>> {
        let ty = first >> 24;
        // Sessions are listed with either session prefix (0x02 HMAC, 0x03 policy).
        let session = |t: u32| t == 0x02 || t == 0x03;
        let same_type = |h: u32| h >> 24 == ty || (session(ty) && session(h >> 24));
        let mut out = Vec::new();
        let mut next = first;
        loop {
            let (more, data) = self.get_capability(CAP_HANDLES, next, 64)?;
            let mut r = Reader::new(&data, "TPML_HANDLE");
            let n = r.count(256).map_err(|e| bad_response("GetCapability", e))?;
            let mut last = None;
            for _ in 0..n {
                let h = r.u32().map_err(|e| bad_response("GetCapability", e))?;
                if same_type(h) {
                    out.push(h);
                }
                last = Some(h);
            }
            match (more, last) {
                (true, Some(l)) if same_type(l) && l < u32::MAX => next = l + 1,
                _ => return Ok(out),
            }
        }
    }

    /// One `TPM_PT_*` property value.
    pub fn property(&mut self, property: u32) -> Result<Option<u32>> {
        let (_, data) = self.get_capability(CAP_TPM_PROPERTIES, property, 1)?;
        let mut r = Reader::new(&data, "TPML_TAGGED_TPM_PROPERTY");
        let n = r.count(256).map_err(|e| bad_response("GetCapability", e))?;
        if n == 0 {
            return Ok(None);
        }
        let p = r.u32().map_err(|e| bad_response("GetCapability", e))?;
        let v = r.u32().map_err(|e| bad_response("GetCapability", e))?;
        Ok((p == property).then_some(v))
    }

    /// PCR banks with at least one PCR allocated.
    pub fn pcr_banks(&mut self) -> Result<Vec<HashAlg>> {
        let (_, data) = self.get_capability(CAP_PCRS, 0, 1)?;
        let mut r = Reader::new(&data, "TPML_PCR_SELECTION");
        let n = r.count(32).map_err(|e| bad_response("GetCapability", e))?;
        let mut banks = Vec::new();
        for _ in 0..n {
            let alg = r.u16().map_err(|e| bad_response("GetCapability", e))?;
            let size = r.u8().map_err(|e| bad_response("GetCapability", e))?;
            let bitmap = r
                .bytes(size.into())
                .map_err(|e| bad_response("GetCapability", e))?;
            // Banks of hashes we do not implement (SHA3, ...) are skipped, not an error.
            if let Some(h) = HashAlg::from_tpm_id(alg)
                && bitmap.iter().any(|&b| b != 0)
            {
                banks.push(h);
            }
        }
        Ok(banks)
    }

    /// `TPM_ALG_ID`s the TPM implements.
    pub fn supported_algorithms(&mut self) -> Result<Vec<u16>> {
        let mut out = Vec::new();
        let mut next = 0u32;
        loop {
            let (more, data) = self.get_capability(CAP_ALGS, next, 128)?;
            let mut r = Reader::new(&data, "TPML_ALG_PROPERTY");
            let n = r
                .count(1024)
                .map_err(|e| bad_response("GetCapability", e))?;
            for _ in 0..n {
                out.push(r.u16().map_err(|e| bad_response("GetCapability", e))?);
                r.u32().map_err(|e| bad_response("GetCapability", e))?;
            }
            match out.last() {
                Some(&last) if more => next = u32::from(last) + 1,
                _ => return Ok(out),
            }
        }
    }

    /// `n` random bytes from the TPM.
    pub fn get_random(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let want = (n - out.len()).min(32) as u16;
            let mut c = Command::new("GetRandom", cc::GET_RANDOM);
            c.params.u16(want);
            let resp = self.execute(c, 0)?;
            let mut r = Reader::new(&resp.params, "TPM2B_DIGEST");
            let got = r.tpm2b(64).map_err(|e| bad_response("GetRandom", e))?;
            if got.is_empty() {
                return Err(TpmError::BadResponse {
                    command: "GetRandom",
                    reason: "no bytes returned".into(),
                });
            }
            out.extend_from_slice(&got[..got.len().min(n - out.len())]);
        }
        Ok(out)
    }

    /// `TPM2_FlushContext` of a transient object or session, forgetting it.
    pub fn flush(&mut self, key: KeyHandle) -> Result<()> {
        self.flush_handle(key.handle)
    }

    fn flush_handle(&mut self, h: u32) -> Result<()> {
        let mut c = Command::new("FlushContext", cc::FLUSH_CONTEXT);
        c.params.u32(h);
        self.loaded.retain(|&l| l != h);
        self.execute(c, 0).map(|_| ())
    }

    /// Closes the connection without flushing: for a TPM that was reset or lost its
    /// objects otherwise, where this client's handles may since name other objects.
    pub fn abandon(mut self) {
        self.loaded.clear();
    }

    /// Flush every transient object this client loaded.
    pub fn flush_all(&mut self) -> Result<()> {
        for h in std::mem::take(&mut self.loaded) {
            self.flush_handle(h)?;
        }
        Ok(())
    }

    /// `TPM2_Shutdown(CLEAR)`: an orderly shutdown, so swtpm's next start does not count a
    /// dictionary-attack failure.
    pub fn shutdown(&mut self) -> Result<()> {
        let mut c = Command::new("Shutdown", cc::SHUTDOWN);
        c.params.u16(0x0000);
        self.execute(c, 0).map(|_| ())
    }

    /// `TPM2_DictionaryAttackLockReset` with an empty lockout password (test setups).
    pub fn dictionary_attack_lock_reset(&mut self) -> Result<()> {
        let c = Command::new(
            "DictionaryAttackLockReset",
            cc::DICTIONARY_ATTACK_LOCK_RESET,
        )
        .handle(handle::RH_LOCKOUT)
        .auth(Auth::Password(Vec::new()));
        self.execute(c, 0).map(|_| ())
    }

    fn track(&mut self, h: u32) {
        if h & 0xFF00_0000 == handle::TRANSIENT_FIRST {
            self.loaded.push(h);
        }
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        if let Err(e) = self.flush_all() {
            warn!(error = %e, "could not flush TPM objects on close");
        }
    }
}

pub(crate) fn bad_response(command: &'static str, e: TpmError) -> TpmError {
    TpmError::BadResponse {
        command,
        reason: e.to_string(),
    }
}
