//! Key commands: EK creation and loading, AK creation and loading under the EK, the EK
//! policy session, and ActivateCredential.

use tracing::debug;

use super::{AkBlob, KeyHandle, Tpm, bad_response};
use crate::alg::{EkAlg, HashAlg, SignAlg, id};
use crate::command::{Auth, Command, cc, handle};
use crate::error::{Result, TpmError};
use crate::marshal::{Reader, Writer, tpm2b_checked};
use crate::public::{MAX_TPMT_PUBLIC, Public};
use crate::templates;

/// Largest `TPM2B_PRIVATE` content (`sizeof(_PRIVATE)` is well under 1 KiB).
const MAX_PRIVATE: usize = 2048;
const MAX_ID_OBJECT: usize = 1024;
const MAX_ENCRYPTED_SECRET: usize = 1024;

impl Tpm {
    /// Create the EK from the TCG default template (low range) under the endorsement
    /// hierarchy (empty endorsement password).
    pub fn create_ek(&mut self, alg: EkAlg) -> Result<KeyHandle> {
        let template = templates::ek_template(alg);
        let mut c = Command::new("CreatePrimary", cc::CREATE_PRIMARY)
            .handle(handle::RH_ENDORSEMENT)
            .auth(Auth::Password(Vec::new()));
        write_create_params(&mut c.params, &template);
        let resp = self.execute(c, 1)?;
        let h = first_handle("CreatePrimary", &resp.handles)?;
        self.track(h);
        let mut r = Reader::new(&resp.params, "CreatePrimary response");
        let public = Public::read_tpm2b(&mut r).map_err(|e| bad_response("CreatePrimary", e))?;
        debug!(handle = format_args!("0x{h:08x}"), %alg, "created EK");
        Ok(KeyHandle { handle: h, public })
    }

    /// Use a persistent EK (e.g. 0x81010001): reads its public area.
    pub fn load_persistent_ek(&mut self, handle: u32) -> Result<KeyHandle> {
        let public = self.read_public(handle)?;
        Ok(KeyHandle { handle, public })
    }

    /// `TPM2_ReadPublic` of any loaded or persistent object.
    pub fn read_public(&mut self, object: u32) -> Result<Public> {
        let c = Command::new("ReadPublic", cc::READ_PUBLIC).handle(object);
        let resp = self.execute(c, 0)?;
        let mut r = Reader::new(&resp.params, "ReadPublic response");
        Public::read_tpm2b(&mut r).map_err(|e| bad_response("ReadPublic", e))
    }

    /// Start a policy session satisfying the EK policy A: `PolicySecret(TPM_RH_ENDORSEMENT)`.
    fn ek_policy_session(&mut self) -> Result<u32> {
        let mut c = Command::new("StartAuthSession", cc::START_AUTH_SESSION)
            .handle(handle::RH_NULL)
            .handle(handle::RH_NULL);
        let nonce = rand_bytes::<32>();
        c.params.tpm2b(&nonce).tpm2b(&[]).u8(0x01); // TPM_SE_POLICY
        c.params.u16(id::NULL).u16(HashAlg::Sha256.tpm_id());
        let resp = self.execute(c, 1)?;
        let session = first_handle("StartAuthSession", &resp.handles)?;

        let mut c = Command::new("PolicySecret", cc::POLICY_SECRET)
            .handle(handle::RH_ENDORSEMENT)
            .handle(session)
            .auth(Auth::Password(Vec::new()));
        c.params.tpm2b(&[]).tpm2b(&[]).tpm2b(&[]).u32(0);
        if let Err(e) = self.execute(c, 0) {
            let _ = self.flush_handle(session);
            return Err(e);
        }
        Ok(session)
    }

    /// Create an AK under the EK with `tpm2_createak`'s attributes: RSA-2048 for
    /// RSASSA/RSAPSS, NIST P-256 for ECDSA; `hash` is the name and signing hash.
    pub fn create_ak(&mut self, ek: &KeyHandle, hash: HashAlg, sign: SignAlg) -> Result<AkBlob> {
        let template = templates::ak_template(hash, sign);
        let session = self.ek_policy_session()?;
        let mut c = Command::new("Create", cc::CREATE)
            .handle(ek.handle)
            .auth(Auth::Policy(session));
        write_create_params(&mut c.params, &template);
        let resp = self.execute(c, 0)?;
        let mut r = Reader::new(&resp.params, "Create response");
        let private = r
            .tpm2b(MAX_PRIVATE)
            .map_err(|e| bad_response("Create", e))?;
        let private = tpm2b_checked("TPM2B_PRIVATE", private, MAX_PRIVATE)?;
        let public = Public::read_tpm2b(&mut r).map_err(|e| bad_response("Create", e))?;
        debug!(%hash, %sign, "created AK");
        Ok(AkBlob {
            public: public.to_tpm2b(),
            private,
            hash,
            sign,
        })
    }

    /// Load an AK created by [`Tpm::create_ak`] (or `tpm2_createak`) under the EK.
    pub fn load_ak(&mut self, ek: &KeyHandle, ak: &AkBlob) -> Result<KeyHandle> {
        let public = Public::from_tpm2b(&ak.public)?;
        let mut pr = Reader::new(&ak.private, "TPM2B_PRIVATE");
        pr.tpm2b(MAX_PRIVATE)?;
        pr.finish()?;
        let session = self.ek_policy_session()?;
        let mut c = Command::new("Load", cc::LOAD)
            .handle(ek.handle)
            .auth(Auth::Policy(session));
        c.params.bytes(&ak.private).bytes(&ak.public);
        let resp = self.execute(c, 1)?;
        let h = first_handle("Load", &resp.handles)?;
        self.track(h);
        let mut r = Reader::new(&resp.params, "Load response");
        let name = r.tpm2b(2 + 64).map_err(|e| bad_response("Load", e))?;
        if name != public.name().as_slice() {
            let _ = self.flush_handle(h);
            return Err(TpmError::BadResponse {
                command: "Load",
                reason: "the TPM's name for the AK differs from the name of its public area".into(),
            });
        }
        Ok(KeyHandle { handle: h, public })
    }

    /// `TPM2_ActivateCredential`: recover the credential MakeCredential wrapped for `ak`'s
    /// name under `ek`. `id_object` and `encrypted_secret` are TPM2B contents.
    pub fn activate_credential(
        &mut self,
        ak: &KeyHandle,
        ek: &KeyHandle,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>> {
        let id_object = tpm2b_checked("TPM2B_ID_OBJECT", id_object, MAX_ID_OBJECT)?;
        let secret = tpm2b_checked(
            "TPM2B_ENCRYPTED_SECRET",
            encrypted_secret,
            MAX_ENCRYPTED_SECRET,
        )?;
        let session = self.ek_policy_session()?;
        let mut c = Command::new("ActivateCredential", cc::ACTIVATE_CREDENTIAL)
            .handle(ak.handle)
            .handle(ek.handle)
            .auth(Auth::Password(Vec::new()))
            .auth(Auth::Policy(session));
        c.params.bytes(&id_object).bytes(&secret);
        let resp = self.execute(c, 0)?;
        let mut r = Reader::new(&resp.params, "ActivateCredential response");
        let cred = r
            .tpm2b(64)
            .map_err(|e| bad_response("ActivateCredential", e))?;
        Ok(cred.to_vec())
    }
}

/// `inSensitive` (empty auth and data), `inPublic`, empty `outsideInfo` and `creationPCR`.
fn write_create_params(w: &mut Writer, template: &[u8]) {
    debug_assert!(template.len() <= MAX_TPMT_PUBLIC);
    w.u16(4).tpm2b(&[]).tpm2b(&[]);
    w.tpm2b(template);
    w.tpm2b(&[]);
    w.u32(0);
}

fn first_handle(command: &'static str, handles: &[u32]) -> Result<u32> {
    handles.first().copied().ok_or(TpmError::BadResponse {
        command,
        reason: "no handle in response".into(),
    })
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b
}
