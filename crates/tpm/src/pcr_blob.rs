//! The PCR blob of a Keylime quote string: tpm2-tools' `tpm2_quote -o` "serialized" file,
//! a little-endian raw dump of tpm2-tss C structures (PROTOCOL.md §4.4):
//!
//! `TPML_PCR_SELECTION` (u32 count + 16 × 8-byte `TPMS_PCR_SELECTION`, 132 bytes), a u32
//! count k, then k × `TPML_DIGEST` (u32 count + 8 × {u16 size, 64-byte buffer}, 532 bytes).
//! PCR values follow the selections in order, ascending PCR index within each bank.

use crate::alg::HashAlg;
use crate::error::{Result, TpmError};
use crate::marshal::Reader;
use crate::pcr::{PcrSelection, bitmap_to_pcrs};

const SELECTION_SLOTS: usize = 16;
const SELECT_MAX: usize = 4;
const DIGESTS_PER_LIST: usize = 8;
const DIGEST_BUFFER: usize = 64;
const SELECTION_LIST_LEN: usize = 4 + SELECTION_SLOTS * 8;
const DIGEST_LIST_LEN: usize = 4 + DIGESTS_PER_LIST * (2 + DIGEST_BUFFER);
/// Most `TPML_DIGEST` chunks accepted (enough for 4 full banks of 32 PCRs).
const MAX_DIGEST_LISTS: usize = 16;

/// Serialize one bank's PCR values (ascending PCR order) as tpm2-tools does.
///
/// `values` must hold one value per selected PCR, each `selection.hash.digest_len()` long;
/// this is checked.
pub fn encode(selection: &PcrSelection, values: &[Vec<u8>]) -> Result<Vec<u8>> {
    if values.len() != selection.pcrs.len() {
        return Err(TpmError::InvalidArgument(format!(
            "{} PCR values for {} selected PCRs",
            values.len(),
            selection.pcrs.len()
        )));
    }
    if let Some(v) = values
        .iter()
        .find(|v| v.len() != selection.hash.digest_len())
    {
        return Err(TpmError::InvalidArgument(format!(
            "PCR value of {} bytes in the {} bank",
            v.len(),
            selection.hash
        )));
    }
    if selection
        .pcrs
        .iter()
        .any(|&p| usize::from(p) >= SELECT_MAX * 8)
    {
        return Err(TpmError::InvalidArgument("PCR index above 31".into()));
    }
    let chunks: Vec<&[Vec<u8>]> = values.chunks(DIGESTS_PER_LIST).collect();
    let mut out = Vec::with_capacity(SELECTION_LIST_LEN + 4 + chunks.len() * DIGEST_LIST_LEN);
    out.extend(1u32.to_le_bytes());
    out.extend(selection.hash.tpm_id().to_le_bytes());
    // tpm2-tools writes sizeofSelect 3 (24 PCRs); 4 only when a PCR above 23 is selected.
    out.push(if selection.pcrs.iter().any(|&p| p >= 24) {
        4
    } else {
        3
    });
    let mut select = selection.select_bytes(SELECT_MAX);
    out.append(&mut select);
    out.push(0); // struct padding
    out.resize(SELECTION_LIST_LEN, 0);
    out.extend((chunks.len() as u32).to_le_bytes());
    for chunk in chunks {
        out.extend((chunk.len() as u32).to_le_bytes());
        for slot in 0..DIGESTS_PER_LIST {
            match chunk.get(slot) {
                Some(v) => {
                    out.extend((v.len() as u16).to_le_bytes());
                    out.extend(v);
                    out.resize(out.len() + DIGEST_BUFFER - v.len(), 0);
                }
                None => out.resize(out.len() + 2 + DIGEST_BUFFER, 0),
            }
        }
    }
    Ok(out)
}

/// Parse a tpm2-tools serialized PCR blob into its selections and the PCR values in order.
///
/// The whole blob must be consumed, every digest must have its bank's size, and the number
/// of digests must equal the number of selected PCRs.
pub fn decode(b: &[u8]) -> Result<(Vec<PcrSelection>, Vec<Vec<u8>>)> {
    let mut r = Reader::new(b, "PCR blob TPML_PCR_SELECTION");
    let count_at = r.offset();
    let count = r.u32_le()? as usize;
    if count > SELECTION_SLOTS {
        return Err(TpmError::SizeTooLarge {
            structure: r.structure,
            offset: count_at,
            size: count,
            max: SELECTION_SLOTS,
        });
    }
    let mut selections = Vec::with_capacity(count);
    for slot in 0..SELECTION_SLOTS {
        let at = r.offset();
        let alg = r.u16_le()?;
        let size_at = r.offset();
        let size = usize::from(r.u8()?);
        let bitmap = r.bytes(SELECT_MAX)?;
        r.u8()?; // padding
        if slot >= count {
            continue;
        }
        let hash = HashAlg::from_tpm_id(alg)
            .ok_or_else(|| r.bad_value("PCR bank hash", at, alg.into()))?;
        if size > SELECT_MAX {
            return Err(r.bad_value("sizeofSelect", size_at, size as u32));
        }
        selections.push(PcrSelection {
            hash,
            pcrs: bitmap_to_pcrs(&bitmap[..size]),
        });
    }

    r.structure = "PCR blob TPML_DIGEST";
    let lists_at = r.offset();
    let lists = r.u32_le()? as usize;
    if lists > MAX_DIGEST_LISTS {
        return Err(TpmError::SizeTooLarge {
            structure: r.structure,
            offset: lists_at,
            size: lists,
            max: MAX_DIGEST_LISTS,
        });
    }
    let mut values = Vec::new();
    for _ in 0..lists {
        let n_at = r.offset();
        let n = r.u32_le()? as usize;
        if n > DIGESTS_PER_LIST {
            return Err(TpmError::SizeTooLarge {
                structure: r.structure,
                offset: n_at,
                size: n,
                max: DIGESTS_PER_LIST,
            });
        }
        for slot in 0..DIGESTS_PER_LIST {
            let size_at = r.offset();
            let size = usize::from(r.u16_le()?);
            let buffer = r.bytes(DIGEST_BUFFER)?;
            if slot >= n {
                continue;
            }
            if size > DIGEST_BUFFER {
                return Err(TpmError::SizeTooLarge {
                    structure: "PCR blob TPM2B_DIGEST",
                    offset: size_at,
                    size,
                    max: DIGEST_BUFFER,
                });
            }
            values.push((size_at, buffer[..size].to_vec()));
        }
    }
    r.finish()?;

    let expected: Vec<HashAlg> = selections
        .iter()
        .flat_map(|s| s.pcrs.iter().map(move |_| s.hash))
        .collect();
    if expected.len() != values.len() {
        return Err(TpmError::SizeMismatch {
            structure: "PCR blob",
            offset: lists_at,
            declared: expected.len(),
            actual: values.len(),
        });
    }
    for (hash, (at, v)) in expected.iter().zip(&values) {
        if v.len() != hash.digest_len() {
            return Err(TpmError::SizeMismatch {
                structure: "PCR blob TPM2B_DIGEST",
                offset: *at,
                declared: hash.digest_len(),
                actual: v.len(),
            });
        }
    }
    Ok((selections, values.into_iter().map(|(_, v)| v).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8 + 1; len]).collect()
    }

    #[test]
    fn sizes_match_tpm2_tools() {
        let three = PcrSelection::new(HashAlg::Sha256, [0, 1, 16]).unwrap();
        let blob = encode(&three, &values(3, 32)).unwrap();
        assert_eq!(blob.len(), 668);
        let eleven = PcrSelection::new(HashAlg::Sha256, (0..10).chain([16])).unwrap();
        assert_eq!(encode(&eleven, &values(11, 32)).unwrap().len(), 1200);
    }

    #[test]
    fn high_pcrs_round_trip() {
        let sel = PcrSelection::new(HashAlg::Sha256, [1, 24, 31]).unwrap();
        let vals = values(3, 32);
        assert_eq!(
            decode(&encode(&sel, &vals).unwrap()).unwrap(),
            (vec![sel], vals)
        );
    }

    #[test]
    fn round_trip() {
        let sel = PcrSelection::new(HashAlg::Sha1, (0..10).chain([16, 23])).unwrap();
        let vals = values(12, 20);
        let blob = encode(&sel, &vals).unwrap();
        let (sels, got) = decode(&blob).unwrap();
        assert_eq!(sels, vec![sel]);
        assert_eq!(got, vals);
    }

    #[test]
    fn rejects_malformed() {
        let sel = PcrSelection::new(HashAlg::Sha256, [0, 1, 16]).unwrap();
        let blob = encode(&sel, &values(3, 32)).unwrap();
        for len in [0, 4, 131, 135, 136, 667] {
            assert!(decode(&blob[..len]).is_err(), "accepted {len} bytes");
        }
        let mut long = blob.clone();
        long.push(0);
        assert!(matches!(
            decode(&long),
            Err(TpmError::TrailingBytes { offset: 668, .. })
        ));
        // A digest of the wrong size for its bank.
        let mut short = blob.clone();
        short[136 + 4] = 20;
        assert!(matches!(
            decode(&short),
            Err(TpmError::SizeMismatch {
                offset: 140,
                declared: 32,
                actual: 20,
                ..
            })
        ));
        // One digest fewer than selected PCRs.
        let mut fewer = blob.clone();
        fewer[136] = 2;
        assert!(matches!(
            decode(&fewer),
            Err(TpmError::SizeMismatch {
                declared: 3,
                actual: 2,
                ..
            })
        ));
        // Absurd counts.
        let mut many = blob.clone();
        many[0] = 17;
        assert!(matches!(
            decode(&many),
            Err(TpmError::SizeTooLarge { offset: 0, .. })
        ));
        let mut lists = blob;
        lists[132] = 200;
        assert!(matches!(
            decode(&lists),
            Err(TpmError::SizeTooLarge { offset: 132, .. })
        ));
        // Wrong value count for the selection on encode.
        assert!(encode(&sel, &values(2, 32)).is_err());
        assert!(encode(&sel, &values(3, 20)).is_err());
    }
}
