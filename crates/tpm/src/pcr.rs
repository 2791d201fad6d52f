//! PCR selections (`TPMS_PCR_SELECTION` / `TPML_PCR_SELECTION`) and the PCR composite
//! digest a quote signs.

use crate::alg::HashAlg;
use crate::error::{Result, TpmError};
use crate::marshal::{Reader, Writer};

/// Highest PCR index plus one that a selection may name (the TPM's select bitmap is 3
/// bytes on every PC-client TPM; we allow up to 4 as tpm2-tss does).
pub const MAX_PCRS: u8 = 32;
/// Most selections a `TPML_PCR_SELECTION` may carry (`HASH_COUNT` in tpm2-tss).
pub const MAX_SELECTIONS: usize = 16;

/// One bank and the PCR indexes selected in it, sorted ascending without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcrSelection {
    pub hash: HashAlg,
    pub pcrs: Vec<u8>,
}

impl PcrSelection {
    /// A selection; indexes are sorted and deduplicated. Fails on an index >= [`MAX_PCRS`].
    pub fn new(hash: HashAlg, pcrs: impl IntoIterator<Item = u8>) -> Result<Self> {
        let mut pcrs: Vec<u8> = pcrs.into_iter().collect();
        if let Some(bad) = pcrs.iter().find(|&&p| p >= MAX_PCRS) {
            return Err(TpmError::InvalidArgument(format!(
                "PCR index {bad} out of range 0..{MAX_PCRS}"
            )));
        }
        pcrs.sort_unstable();
        pcrs.dedup();
        Ok(PcrSelection { hash, pcrs })
    }

    /// From Keylime's `mask` bitmap: bit n selects PCR n.
    pub fn from_mask(hash: HashAlg, mask: u32) -> Self {
        PcrSelection {
            hash,
            pcrs: (0..32u8).filter(|i| mask & (1 << i) != 0).collect(),
        }
    }

    /// The selection as a bitmap (bit n = PCR n).
    pub fn mask(&self) -> u32 {
        self.pcrs.iter().fold(0, |m, &p| m | (1u32 << p))
    }

    /// The `pcrSelect` bitmap bytes, `size` bytes long (3 on PC-client TPMs).
    pub fn select_bytes(&self, size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        for &p in &self.pcrs {
            if let Some(byte) = b.get_mut(usize::from(p / 8)) {
                *byte |= 1 << (p % 8);
            }
        }
        b
    }

    /// Write a `TPMS_PCR_SELECTION` with a 3-byte bitmap (4 if a PCR above 23 is selected).
    pub fn write(&self, w: &mut Writer) {
        let size = if self.pcrs.iter().any(|&p| p >= 24) {
            4
        } else {
            3
        };
        w.u16(self.hash.tpm_id())
            .u8(size as u8)
            .bytes(&self.select_bytes(size));
    }

    /// Read a `TPMS_PCR_SELECTION`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.offset();
        let alg = r.u16()?;
        let hash = HashAlg::from_tpm_id(alg)
            .ok_or_else(|| r.bad_value("PCR bank hash", at, alg.into()))?;
        let size_at = r.offset();
        let size = r.u8()?;
        if size > MAX_PCRS / 8 {
            return Err(r.bad_value("sizeofSelect", size_at, size.into()));
        }
        let bitmap = r.bytes(size.into())?;
        Ok(PcrSelection {
            hash,
            pcrs: bitmap_to_pcrs(bitmap),
        })
    }

    /// Write a `TPML_PCR_SELECTION` of `sels`.
    pub fn write_list(sels: &[PcrSelection], w: &mut Writer) {
        w.u32(sels.len() as u32);
        for s in sels {
            s.write(w);
        }
    }

    /// Read a `TPML_PCR_SELECTION`.
    pub fn read_list(r: &mut Reader<'_>) -> Result<Vec<PcrSelection>> {
        let n = r.count(MAX_SELECTIONS)?;
        (0..n).map(|_| PcrSelection::read(r)).collect()
    }
}

/// Indexes of the set bits of a `pcrSelect` bitmap, ascending.
pub(crate) fn bitmap_to_pcrs(bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, byte) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                out.push((i * 8 + bit) as u8);
            }
        }
    }
    out
}

/// The PCR composite digest a quote signs: `H(value_0 || value_1 || ...)` in selection order.
pub fn pcr_digest(hash: HashAlg, values: &[Vec<u8>]) -> Vec<u8> {
    let parts: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    hash.digest_parts(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_round_trips_through_tpml() {
        let sels = vec![
            PcrSelection::new(HashAlg::Sha256, [16, 0, 10, 10]).unwrap(),
            PcrSelection::new(HashAlg::Sha1, [23]).unwrap(),
        ];
        assert_eq!(sels[0].pcrs, vec![0, 10, 16]);
        assert_eq!(sels[0].mask(), 0x10401);
        let mut w = Writer::new();
        PcrSelection::write_list(&sels, &mut w);
        assert_eq!(
            w.buf,
            [
                0, 0, 0, 2, 0, 0x0B, 3, 0x01, 0x04, 0x01, 0, 0x04, 3, 0, 0, 0x80
            ]
        );
        let mut r = Reader::new(&w.buf, "TPML_PCR_SELECTION");
        assert_eq!(PcrSelection::read_list(&mut r).unwrap(), sels);
        r.finish().unwrap();
        assert_eq!(PcrSelection::from_mask(HashAlg::Sha256, 0x10401), sels[0]);
    }

    #[test]
    fn bad_selections_are_rejected() {
        assert!(PcrSelection::new(HashAlg::Sha256, [32]).is_err());
        let bad_hash = [0, 0, 0, 1, 0x12, 0x34, 3, 0, 0, 0];
        assert!(matches!(
            PcrSelection::read_list(&mut Reader::new(&bad_hash, "T")),
            Err(TpmError::BadValue { offset: 4, .. })
        ));
        let big_select = [0, 0, 0, 1, 0, 0x0B, 200, 0];
        assert!(matches!(
            PcrSelection::read_list(&mut Reader::new(&big_select, "T")),
            Err(TpmError::BadValue {
                field: "sizeofSelect",
                offset: 6,
                ..
            })
        ));
        let many = [0, 0, 1, 0];
        assert!(matches!(
            PcrSelection::read_list(&mut Reader::new(&many, "T")),
            Err(TpmError::SizeTooLarge { .. })
        ));
    }
}
