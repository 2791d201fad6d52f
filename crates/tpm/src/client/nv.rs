//! NV reads: the EK certificate and the EK chain certificates the manufacturer
//! provisioned (TCG EK Credential Profile NV indexes).

use super::{Tpm, bad_response};
use crate::alg::EkAlg;
use crate::command::{Auth, Command, cc, handle};
use crate::error::{Result, TpmError};
use crate::marshal::Reader;
use crate::rc::RC_HANDLE;

/// First and last NV index of the EK certificate chain range.
pub const EK_CHAIN_FIRST: u32 = 0x01C0_0100;
pub const EK_CHAIN_LAST: u32 = 0x01C0_01FF;
/// `TPM_PT_NV_BUFFER_MAX`.
const PT_NV_BUFFER_MAX: u32 = 0x12C;
const TPMA_NV_OWNERREAD: u32 = 1 << 17;
const TPMA_NV_AUTHREAD: u32 = 1 << 18;
/// Largest NV index content read (EK certificates are 1–2 KiB).
const MAX_NV_DATA: usize = 16 * 1024;

impl Tpm {
    /// The EK certificate from its standard NV index, or `None` if the index is not defined.
    /// Returned as stored: some TPMs pad the DER with trailing bytes.
    pub fn read_ek_certificate(&mut self, alg: EkAlg) -> Result<Option<Vec<u8>>> {
        self.nv_read_if_defined(alg.cert_nv_index())
    }

    /// Certificates stored in the EK chain range 0x01c00100..=0x01c001ff, in index order.
    pub fn read_ek_chain_certificates(&mut self) -> Result<Vec<Vec<u8>>> {
        let indexes: Vec<u32> = self
            .handles(EK_CHAIN_FIRST)?
            .into_iter()
            .filter(|h| (EK_CHAIN_FIRST..=EK_CHAIN_LAST).contains(h))
            .collect();
        let mut out = Vec::with_capacity(indexes.len());
        for index in indexes {
            if let Some(cert) = self.nv_read_if_defined(index)? {
                out.push(cert);
            }
        }
        Ok(out)
    }

    fn nv_read_if_defined(&mut self, index: u32) -> Result<Option<Vec<u8>>> {
        match self.nv_read(index) {
            Ok(data) => Ok(Some(data)),
            Err(TpmError::Tpm {
                command: "NV_ReadPublic",
                rc,
            }) if rc.base() == RC_HANDLE => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole content of an NV index, read in chunks of the TPM's NV buffer size.
    pub fn nv_read(&mut self, index: u32) -> Result<Vec<u8>> {
        let (attributes, size) = self.nv_read_public(index)?;
        let auth_handle = if attributes & TPMA_NV_AUTHREAD != 0 {
            index
        } else if attributes & TPMA_NV_OWNERREAD != 0 {
            handle::RH_OWNER
        } else {
            return Err(TpmError::InvalidArgument(format!(
                "NV index 0x{index:08x} is readable neither with its own auth nor by the owner"
            )));
        };
        let chunk = self
            .property(PT_NV_BUFFER_MAX)?
            .map_or(512, |v| v.clamp(64, 4096) as usize);
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            let len = (size - data.len()).min(chunk);
            let mut c = Command::new("NV_Read", cc::NV_READ)
                .handle(auth_handle)
                .handle(index)
                .auth(Auth::Password(Vec::new()));
            c.params.u16(len as u16).u16(data.len() as u16);
            let resp = self.execute(c, 0)?;
            let mut r = Reader::new(&resp.params, "TPM2B_MAX_NV_BUFFER");
            let got = r.tpm2b(len).map_err(|e| bad_response("NV_Read", e))?;
            if got.len() != len {
                return Err(TpmError::BadResponse {
                    command: "NV_Read",
                    reason: format!("asked for {len} bytes, got {}", got.len()),
                });
            }
            data.extend_from_slice(got);
        }
        Ok(data)
    }

    /// (attributes, data size) of an NV index.
    fn nv_read_public(&mut self, index: u32) -> Result<(u32, usize)> {
        let c = Command::new("NV_ReadPublic", cc::NV_READ_PUBLIC).handle(index);
        let resp = self.execute(c, 0)?;
        let parse = || -> Result<(u32, usize)> {
            let mut r = Reader::new(&resp.params, "NV_ReadPublic response");
            let mut p = r.tpm2b_reader(512, "TPMS_NV_PUBLIC")?;
            p.u32()?; // nvIndex
            p.u16()?; // nameAlg
            let attributes = p.u32()?;
            p.tpm2b(64)?; // authPolicy
            let size = usize::from(p.u16()?);
            Ok((attributes, size))
        };
        let (attributes, size) = parse().map_err(|e| bad_response("NV_ReadPublic", e))?;
        if size > MAX_NV_DATA {
            return Err(TpmError::BadResponse {
                command: "NV_ReadPublic",
                reason: format!("NV index 0x{index:08x} holds {size} bytes, over {MAX_NV_DATA}"),
            });
        }
        Ok((attributes, size))
    }
}
