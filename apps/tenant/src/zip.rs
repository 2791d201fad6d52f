//! A minimal ZIP writer (stored entries, no compression, as upstream's tenant writes its
//! certificate package with `ZIP_STORED`): local headers, central directory and end
//! record, CRC-32 computed here. Only what the payload package needs; not a general
//! archive library (no ZIP64, at most 65535 entries of < 4 GiB).

use crate::error::TenantError;

/// One file in the archive.
pub struct ZipEntry {
    pub name: String,
    pub data: Vec<u8>,
}

/// The archive bytes for `entries` (names must be unique, plain file names).
pub fn write_stored_zip(entries: &[ZipEntry]) -> Result<Vec<u8>, TenantError> {
    let too_big = |what: &str| TenantError::Payload(format!("zip package: {what} too large"));
    let count = u16::try_from(entries.len()).map_err(|_| too_big("entry count"))?;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let name = e.name.as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| too_big("file name"))?;
        let size = u32::try_from(e.data.len()).map_err(|_| too_big(&e.name))?;
        let offset = u32::try_from(out.len()).map_err(|_| too_big("archive"))?;
        let crc = crc32(&e.data);
        // Local file header.
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(0u16.to_le_bytes()); // method: stored
        out.extend(0u16.to_le_bytes()); // time
        out.extend(0x0021u16.to_le_bytes()); // date 1980-01-01
        out.extend(crc.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // extra
        out.extend(name);
        out.extend(&e.data);
        // Central directory header.
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(0x031eu16.to_le_bytes()); // made by: Unix, 3.0
        central.extend(20u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0x0021u16.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(name_len.to_le_bytes());
        central.extend(0u16.to_le_bytes()); // extra
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attrs
        central.extend((0o100_644u32 << 16).to_le_bytes()); // external attrs: rw-r--r--
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| too_big("archive"))?;
    let cd_size = u32::try_from(central.len()).map_err(|_| too_big("central directory"))?;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_answer() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn archive_is_readable_by_unzip() {
        let zip = write_stored_zip(&[
            ZipEntry {
                name: "a.txt".into(),
                data: b"hello".to_vec(),
            },
            ZipEntry {
                name: "autorun.sh".into(),
                data: b"#!/bin/sh\necho hi\n".to_vec(),
            },
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.zip");
        std::fs::write(&path, &zip).unwrap();
        // python3's zipfile is present wherever the test suite runs; fail loudly if not.
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(sorted(z.namelist())); print(z.read('a.txt').decode())"])
            .arg(&path)
            .output()
            .expect("python3 must be installed for this test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "['a.txt', 'autorun.sh']\nhello\n"
        );
    }
}
