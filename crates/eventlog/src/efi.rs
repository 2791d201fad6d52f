//! UEFI structures carried in event data: GUIDs, `UEFI_VARIABLE_DATA`, the
//! `EFI_SIGNATURE_LIST`s of PK/KEK/db/dbx, and `UEFI_IMAGE_LOAD_EVENT`.

use std::fmt;

use crate::error::EventDataError;
use crate::reader::{Reader, Short};

pub(crate) fn short(s: Short) -> EventDataError {
    EventDataError::Truncated {
        what: s.what,
        offset: s.offset,
        needed: s.needed,
        available: s.available,
    }
}

/// An `EFI_GUID` as stored (mixed endian); displays in the canonical text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// `EFI_GLOBAL_VARIABLE` (PK, KEK, SecureBoot, Boot####).
    pub const GLOBAL_VARIABLE: Guid = Guid::from_fields(
        0x8be4df61,
        0x93ca,
        0x11d2,
        [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
    );
    /// `EFI_IMAGE_SECURITY_DATABASE_GUID` (db, dbx).
    pub const IMAGE_SECURITY_DATABASE: Guid = Guid::from_fields(
        0xd719b2cb,
        0x3d3a,
        0x4596,
        [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
    );
    /// `EFI_CERT_X509_GUID`.
    pub const CERT_X509: Guid = Guid::from_fields(
        0xa5c059a1,
        0x94e4,
        0x4aa7,
        [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
    );
    /// `EFI_CERT_SHA256_GUID`.
    pub const CERT_SHA256: Guid = Guid::from_fields(
        0xc1c41626,
        0x504c,
        0x4092,
        [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
    );

    /// Parse the canonical lowercase text form (`8be4df61-93ca-11d2-aa0d-00e098032b8c`),
    /// the only form [`Guid`]'s `Display` produces; anything else is `None`.
    pub fn parse_canonical(s: &str) -> Option<Guid> {
        let b = s.as_bytes();
        if b.len() != 36
            || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-')
            || b.iter().enumerate().any(|(i, c)| {
                ![8, 13, 18, 23].contains(&i) && !matches!(c, b'0'..=b'9' | b'a'..=b'f')
            })
        {
            return None;
        }
        let hex = |from: usize, to: usize| u64::from_str_radix(s.get(from..to)?, 16).ok();
        let mut d4 = [0u8; 8];
        for (i, at) in [19, 21, 24, 26, 28, 30, 32, 34].into_iter().enumerate() {
            d4[i] = u8::try_from(hex(at, at + 2)?).ok()?;
        }
        Some(Guid::from_fields(
            u32::try_from(hex(0, 8)?).ok()?,
            u16::try_from(hex(9, 13)?).ok()?,
            u16::try_from(hex(14, 18)?).ok()?,
            d4,
        ))
    }

    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9]
        )?;
        for b in &g[10..] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Decode UTF-16LE, stopping at the first NUL; unpaired surrogates become U+FFFD.
pub fn utf16le(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// `UEFI_VARIABLE_DATA`: which variable was measured, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiVariable {
    pub vendor: Guid,
    pub name: String,
    pub data: Vec<u8>,
}

impl EfiVariable {
    pub fn decode(bytes: &[u8]) -> Result<EfiVariable, EventDataError> {
        let mut r = Reader::new(bytes);
        let vendor = Guid(r.array("VariableName GUID").map_err(short)?);
        let name_len = r.u64("UnicodeNameLength").map_err(short)?;
        let data_len = r.u64("VariableDataLength").map_err(short)?;
        let name = r
            .take(name_len.saturating_mul(2), "UnicodeName")
            .map_err(short)?;
        let data = r.take(data_len, "VariableData").map_err(short)?;
        Ok(EfiVariable {
            vendor,
            name: utf16le(name),
            data: data.to_vec(),
        })
    }

    /// PK, KEK, db or dbx (by name and vendor GUID): the contents are signature lists.
    pub fn is_signature_database(&self) -> bool {
        (self.vendor == Guid::GLOBAL_VARIABLE && matches!(self.name.as_str(), "PK" | "KEK"))
            || (self.vendor == Guid::IMAGE_SECURITY_DATABASE
                && matches!(self.name.as_str(), "db" | "dbx"))
    }

    /// The `SecureBoot` variable's value: `Some(true)` for 1, `None` if this is not it
    /// or it is empty.
    pub fn secure_boot(&self) -> Option<bool> {
        (self.vendor == Guid::GLOBAL_VARIABLE && self.name == "SecureBoot")
            .then(|| self.data.first().map(|b| *b == 1))
            .flatten()
    }

    /// Decode the data as a sequence of `EFI_SIGNATURE_LIST`s.
    pub fn signature_lists(&self) -> Result<Vec<SignatureList>, EventDataError> {
        SignatureList::decode_all(&self.data)
    }
}

/// One `EFI_SIGNATURE_DATA`: owner and the signature (an X.509 DER certificate, a SHA-256
/// hash, ... depending on the list type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureData {
    pub owner: Guid,
    pub data: Vec<u8>,
}

/// What a signature list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    X509,
    Sha256,
    Other(Guid),
}

/// One `EFI_SIGNATURE_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureList {
    pub signature_type: Guid,
    pub header: Vec<u8>,
    pub signatures: Vec<SignatureData>,
}

impl SignatureList {
    pub fn kind(&self) -> SignatureKind {
        match self.signature_type {
            Guid::CERT_X509 => SignatureKind::X509,
            Guid::CERT_SHA256 => SignatureKind::Sha256,
            other => SignatureKind::Other(other),
        }
    }

    /// Decode back-to-back signature lists filling `bytes`.
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<SignatureList>, EventDataError> {
        let mut r = Reader::new(bytes);
        let mut lists = Vec::new();
        while r.remaining() > 0 {
            let start = r.pos();
            let malformed = |reason: String| EventDataError::Malformed {
                what: "EFI_SIGNATURE_LIST",
                offset: start,
                reason,
            };
            let signature_type = Guid(r.array("SignatureType").map_err(short)?);
            let list_size = r.u32("SignatureListSize").map_err(short)?;
            let header_size = r.u32("SignatureHeaderSize").map_err(short)?;
            let sig_size = r.u32("SignatureSize").map_err(short)?;
            let body = u64::from(list_size)
                .checked_sub(28 + u64::from(header_size))
                .ok_or_else(|| {
                    malformed(format!(
                        "list size {list_size} smaller than its header ({header_size} + 28)"
                    ))
                })?;
            if sig_size < 16 || !body.is_multiple_of(u64::from(sig_size)) {
                return Err(malformed(format!(
                    "signature size {sig_size} does not divide the {body} bytes of signatures"
                )));
            }
            let header = r
                .take(u64::from(header_size), "SignatureHeader")
                .map_err(short)?
                .to_vec();
            let mut sigs = Reader::new(r.take(body, "Signatures").map_err(short)?);
            let mut signatures = Vec::new();
            while sigs.remaining() > 0 {
                let owner = Guid(sigs.array("SignatureOwner").map_err(short)?);
                let data = sigs
                    .take(u64::from(sig_size) - 16, "SignatureData")
                    .map_err(short)?;
                signatures.push(SignatureData {
                    owner,
                    data: data.to_vec(),
                });
            }
            lists.push(SignatureList {
                signature_type,
                header,
                signatures,
            });
        }
        Ok(lists)
    }
}

/// `UEFI_IMAGE_LOAD_EVENT` (EV_EFI_BOOT_SERVICES_APPLICATION / _DRIVER, RUNTIME_SERVICES_DRIVER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLoad {
    pub location_in_memory: u64,
    pub length_in_memory: u64,
    pub link_time_address: u64,
    /// The raw `EFI_DEVICE_PATH_PROTOCOL` bytes.
    pub device_path: Vec<u8>,
}

impl ImageLoad {
    pub fn decode(bytes: &[u8]) -> Result<ImageLoad, EventDataError> {
        let mut r = Reader::new(bytes);
        let location_in_memory = r.u64("ImageLocationInMemory").map_err(short)?;
        let length_in_memory = r.u64("ImageLengthInMemory").map_err(short)?;
        let link_time_address = r.u64("ImageLinkTimeAddress").map_err(short)?;
        let path_len = r.u64("LengthOfDevicePath").map_err(short)?;
        let device_path = r.take(path_len, "DevicePath").map_err(short)?.to_vec();
        Ok(ImageLoad {
            location_in_memory,
            length_in_memory,
            link_time_address,
            device_path,
        })
    }

    /// The file path nodes (type 4, subtype 4) of the device path, joined: e.g.
    /// `\EFI\fedora\shimx64.efi`. Empty when the path has none.
    pub fn file_path(&self) -> String {
        let mut out = String::new();
        let mut rest = self.device_path.as_slice();
        while let [ty, sub, l0, l1, ..] = rest {
            let len = usize::from(u16::from_le_bytes([*l0, *l1]));
            if len < 4 || len > rest.len() {
                break;
            }
            if (*ty, *sub) == (4, 4) {
                out.push_str(&utf16le(rest.get(4..len).unwrap_or(&[])));
            }
            if *ty == 0x7f {
                break;
            }
            rest = rest.get(len..).unwrap_or(&[]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_guid_text_round_trips() {
        for g in [
            Guid::GLOBAL_VARIABLE,
            Guid::IMAGE_SECURITY_DATABASE,
            Guid::CERT_X509,
        ] {
            assert_eq!(Guid::parse_canonical(&g.to_string()), Some(g));
        }
        for bad in [
            "8BE4DF61-93CA-11D2-AA0D-00E098032B8C",
            "8be4df61-93ca-11d2-aa0d-00e098032b8",
            "8be4df61+93ca-11d2-aa0d-00e098032b8c",
            "8be4df61-93ca-11d2-aa0d-00e098032b8g",
            "",
        ] {
            assert_eq!(Guid::parse_canonical(bad), None, "{bad}");
        }
    }
}
