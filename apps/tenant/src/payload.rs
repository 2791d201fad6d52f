//! What `add` delivers to the agent besides the enrolment: the bootstrap key split and an
//! optional encrypted payload (PROTOCOL.md §4.6), prepared from one of upstream's sources:
//! * `-f FILE`: the file's bytes, encrypted with a fresh K;
//! * `-k KEYFILE [-p PAYLOAD]`: K, U, V read from a key file (three base64 lines, as
//!   upstream's `user_data_encrypt` writes it) and an already encrypted payload;
//! * `--cert DIR [--include DIR]`: a ZIP package of the certificate directory (which must
//!   hold `RevocationNotifier-cert.crt` so the agent can check revocation notices) plus the
//!   included files, encrypted with a fresh K. `RevocationNotifier-private.pem` from the
//!   directory becomes the verifier's `revocation_key` and is never put in the package,
//!   nor is any CA private key.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_payload::{BootstrapKey, KEY_LEN, encrypt_payload, split_key};

use crate::error::TenantError;
use crate::zip::{ZipEntry, write_stored_zip};

/// Certificate the agent uses to check revocation messages.
pub const REVOCATION_CERT_FILE: &str = "RevocationNotifier-cert.crt";
/// Private key the verifier signs revocation messages with.
pub const REVOCATION_KEY_FILE: &str = "RevocationNotifier-private.pem";
/// Files of a CA directory that must never leave the tenant's machine.
const NEVER_PACKAGED: [&str; 4] = [
    REVOCATION_KEY_FILE,
    "ca-private.pem",
    "cakey.pem",
    "private.yml",
];
/// Largest single input file read.
const MAX_INPUT_FILE: u64 = 64 * 1024 * 1024;

/// Where the payload comes from (upstream's mutually exclusive `-f`, `-k`, `--cert`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PayloadSource {
    /// Enrol without a payload or key.
    #[default]
    None,
    /// `-f FILE`.
    File(PathBuf),
    /// `-k KEYFILE [-p PAYLOAD]`.
    KeyFile {
        keyfile: PathBuf,
        payload: Option<PathBuf>,
    },
    /// `--cert DIR [--include DIR]`.
    CertDir {
        dir: PathBuf,
        include: Option<PathBuf>,
    },
}

/// The prepared key shares and payload.
#[derive(Debug)]
pub struct PreparedPayload {
    pub k: BootstrapKey,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// b64 text of the encrypted payload, if any.
    pub payload: Option<String>,
    /// PEM sent to the verifier as `revocation_key` (`""` for none).
    pub revocation_key: String,
}

/// Prepare `source`; `None` when there is nothing to deliver.
pub fn prepare(
    source: &PayloadSource,
    max_payload_size: u64,
) -> Result<Option<PreparedPayload>, TenantError> {
    let prepared = match source {
        PayloadSource::None => return Ok(None),
        PayloadSource::File(path) => {
            let data = read_limited(path)?;
            fresh(&data, String::new())
        }
        PayloadSource::KeyFile { keyfile, payload } => {
            let text = String::from_utf8(read_limited(keyfile)?).map_err(|_| {
                TenantError::Payload(format!("key file {} is not text", keyfile.display()))
            })?;
            let mut lines = text.lines().map(str::trim);
            let mut next = |what: &str| -> Result<Vec<u8>, TenantError> {
                let line = lines.next().unwrap_or("");
                let bytes = STANDARD.decode(line).map_err(|_| {
                    TenantError::Payload(format!(
                        "key file {}: the {what} line is not base64",
                        keyfile.display()
                    ))
                })?;
                if bytes.len() != KEY_LEN {
                    return Err(TenantError::Payload(format!(
                        "key file {}: {what} is {} bytes, expected {KEY_LEN}",
                        keyfile.display(),
                        bytes.len()
                    )));
                }
                Ok(bytes)
            };
            let k = next("K (first)")?;
            let u = next("U (second)")?;
            let v = next("V (third)")?;
            let k =
                BootstrapKey::from_slice(&k).map_err(|e| TenantError::Payload(e.to_string()))?;
            let payload = match payload {
                Some(p) => Some(
                    String::from_utf8(read_limited(p)?)
                        .map_err(|_| {
                            TenantError::Payload(format!(
                                "encrypted payload {} is not base64 text",
                                p.display()
                            ))
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            PreparedPayload {
                k,
                u,
                v,
                payload,
                revocation_key: String::new(),
            }
        }
        PayloadSource::CertDir { dir, include } => {
            let (zip, revocation_key) = cert_package(dir, include.as_deref())?;
            fresh(&zip, revocation_key)
        }
    };
    if let Some(p) = &prepared.payload
        && p.len() as u64 > max_payload_size
    {
        return Err(TenantError::Payload(format!(
            "payload size {} exceeds max_payload_size {max_payload_size}",
            p.len()
        )));
    }
    Ok(Some(prepared))
}

fn fresh(plaintext: &[u8], revocation_key: String) -> PreparedPayload {
    let (k, u, v) = split_key();
    let payload = encrypt_payload(&k, plaintext);
    PreparedPayload {
        k,
        u: u.to_vec(),
        v: v.to_vec(),
        payload: Some(payload),
        revocation_key,
    }
}

/// The ZIP of `dir` (+ `include`) and the revocation private key PEM.
pub fn cert_package(dir: &Path, include: Option<&Path>) -> Result<(Vec<u8>, String), TenantError> {
    let cert = dir.join(REVOCATION_CERT_FILE);
    if !cert.is_file() {
        return Err(TenantError::Payload(format!(
            "--cert directory {} has no {REVOCATION_CERT_FILE}: the agent could not check revocation notices",
            dir.display()
        )));
    }
    let key_path = dir.join(REVOCATION_KEY_FILE);
    let revocation_key = String::from_utf8(read_limited(&key_path)?)
        .map_err(|_| TenantError::Payload(format!("{} is not PEM text", key_path.display())))?;
    keylime_payload::parse_rsa_private_key_pem(&revocation_key)
        .map_err(|e| TenantError::Payload(format!("{}: {e}", key_path.display())))?;
    let mut entries = files_of(dir, true)?;
    if let Some(inc) = include {
        for e in files_of(inc, false)? {
            if entries.iter().any(|x| x.name == e.name) {
                return Err(TenantError::Payload(format!(
                    "--include file {} clashes with a file of the --cert directory",
                    e.name
                )));
            }
            entries.push(e);
        }
    }
    Ok((write_stored_zip(&entries)?, revocation_key))
}

/// Regular files directly in `dir`, sorted by name; secrets skipped when `skip_secrets`.
fn files_of(dir: &Path, skip_secrets: bool) -> Result<Vec<ZipEntry>, TenantError> {
    let read_dir = std::fs::read_dir(dir).map_err(|e| TenantError::file(dir, e))?;
    let mut entries = Vec::new();
    for item in read_dir {
        let item = item.map_err(|e| TenantError::file(dir, e))?;
        let path = item.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            return Err(TenantError::Payload(format!(
                "{} has a file name that is not UTF-8",
                dir.display()
            )));
        };
        if skip_secrets && NEVER_PACKAGED.contains(&name.as_str()) {
            continue;
        }
        entries.push(ZipEntry {
            data: read_limited(&path)?,
            name,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn read_limited(path: &Path) -> Result<Vec<u8>, TenantError> {
    let meta = std::fs::metadata(path).map_err(|e| TenantError::file(path, e))?;
    if meta.len() > MAX_INPUT_FILE {
        return Err(TenantError::Payload(format!(
            "{} is {} bytes, more than {MAX_INPUT_FILE}",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| TenantError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_payload_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret.txt");
        std::fs::write(&f, b"top secret").unwrap();
        let p = prepare(&PayloadSource::File(f), 1 << 20).unwrap().unwrap();
        let k = keylime_payload::combine(&p.u, &p.v).unwrap();
        assert_eq!(k, p.k);
        let plain = keylime_payload::decrypt_payload(&k, p.payload.as_deref().unwrap()).unwrap();
        assert_eq!(plain, b"top secret");
        assert_eq!(p.revocation_key, "");
        // Size limit applies to the encrypted text.
        let f = dir.path().join("big");
        std::fs::write(&f, vec![0u8; 2000]).unwrap();
        assert!(prepare(&PayloadSource::File(f), 1000).is_err());
    }

    #[test]
    fn keyfile_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let kf = dir.path().join("keys");
        let k = [1u8; 32];
        let v = [2u8; 32];
        let u: Vec<u8> = k.iter().zip(&v).map(|(a, b)| a ^ b).collect();
        std::fs::write(
            &kf,
            format!(
                "{}\n{}\n{}\n",
                STANDARD.encode(k),
                STANDARD.encode(&u),
                STANDARD.encode(v)
            ),
        )
        .unwrap();
        let p = prepare(
            &PayloadSource::KeyFile {
                keyfile: kf.clone(),
                payload: None,
            },
            10,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.u, u);
        assert!(p.payload.is_none());
        std::fs::write(&kf, "AAAA\n").unwrap();
        let err = prepare(
            &PayloadSource::KeyFile {
                keyfile: kf,
                payload: None,
            },
            10,
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected 32"), "{err}");
    }

    #[test]
    fn cert_dir_requires_revocation_cert_and_keeps_secrets_out() {
        let dir = tempfile::tempdir().unwrap();
        let err = cert_package(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains(REVOCATION_CERT_FILE), "{err}");

        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        std::fs::write(dir.path().join(REVOCATION_KEY_FILE), &pem).unwrap();
        std::fs::write(dir.path().join(REVOCATION_CERT_FILE), "CERT").unwrap();
        std::fs::write(dir.path().join("ca-private.pem"), "SECRET").unwrap();
        std::fs::write(dir.path().join("cacert.crt"), "CA").unwrap();
        let inc = tempfile::tempdir().unwrap();
        std::fs::write(inc.path().join("autorun.sh"), "#!/bin/sh\n").unwrap();
        let (zip, revocation_key) = cert_package(dir.path(), Some(inc.path())).unwrap();
        assert_eq!(revocation_key, pem);
        let text = String::from_utf8_lossy(&zip);
        for name in ["autorun.sh", REVOCATION_CERT_FILE, "cacert.crt"] {
            assert!(text.contains(name), "{name} packaged");
        }
        assert!(!text.contains("SECRET") && !text.contains(REVOCATION_KEY_FILE));
        assert!(
            !text.contains("PRIVATE KEY"),
            "no private key in the package"
        );
    }
}
