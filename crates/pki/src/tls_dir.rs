//! `tls_dir = generate`: the on-disk layout of a service's TLS directory
//! (upstream file names) and its idempotent creation. Also the agent's own
//! self-signed mTLS certificate files.
//!
//! Invariants: only missing things are created; an existing CA is reused (and
//! never replaced while its certificate exists); keys are written 0600 through
//! temp file + rename, key before certificate, so a crash at any point is
//! repaired by the next run; the directory is 0700.

use std::path::{Path, PathBuf};

use crate::PkiError;
use crate::ca::{CaOptions, CertRole, CertificateAuthority, IssuedCert, key_pair_from_pem};
use crate::certinfo::CertInfo;
use crate::files::{self, CERT_MODE, KEY_MODE};

/// CA certificate file name (upstream).
pub const CA_CERT_FILE: &str = "cacert.crt";
/// CA private key file name (upstream keeps it in `private.yml`; ours is PEM).
pub const CA_KEY_FILE: &str = "ca-private.pem";
/// Server certificate file name (upstream).
pub const SERVER_CERT_FILE: &str = "server-cert.crt";
/// Server private key file name (upstream).
pub const SERVER_KEY_FILE: &str = "server-private.pem";
/// Client certificate file name (upstream).
pub const CLIENT_CERT_FILE: &str = "client-cert.crt";
/// Client private key file name (upstream).
pub const CLIENT_KEY_FILE: &str = "client-private.pem";

/// Common name of generated server certificates (upstream `ca_util mkcert server`).
pub const SERVER_CN: &str = "server";
/// Common name of generated client certificates; the admin identity becomes `admin:client`.
pub const CLIENT_CN: &str = "client";

/// Paths of a generated TLS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsDir {
    /// The directory.
    pub dir: PathBuf,
    /// `cacert.crt`.
    pub ca_cert: PathBuf,
    /// `server-cert.crt`.
    pub server_cert: PathBuf,
    /// `server-private.pem`.
    pub server_key: PathBuf,
    /// `client-cert.crt`, when requested.
    pub client_cert: Option<PathBuf>,
    /// `client-private.pem`, when requested.
    pub client_key: Option<PathBuf>,
}

/// Makes sure `dir` holds a CA, a server certificate (SANs `server_sans`: IP
/// addresses or DNS names) and, if `with_client`, a client certificate,
/// creating only what is missing or unusable.
pub fn ensure_generated(
    dir: &Path,
    opts: &CaOptions,
    server_sans: &[String],
    with_client: bool,
) -> Result<TlsDir, PkiError> {
    files::ensure_private_dir(dir)?;
    let _lock = files::lock_dir(dir)?;
    let tls = TlsDir {
        dir: dir.to_owned(),
        ca_cert: dir.join(CA_CERT_FILE),
        server_cert: dir.join(SERVER_CERT_FILE),
        server_key: dir.join(SERVER_KEY_FILE),
        client_cert: with_client.then(|| dir.join(CLIENT_CERT_FILE)),
        client_key: with_client.then(|| dir.join(CLIENT_KEY_FILE)),
    };
    let ca_key_path = dir.join(CA_KEY_FILE);

    let server_ok = pair_usable(&tls.server_cert, &tls.server_key);
    let client_ok = match (&tls.client_cert, &tls.client_key) {
        (Some(c), Some(k)) => pair_usable(c, k),
        _ => true,
    };

    // The CA: reuse when its certificate exists; create when it does not.
    let mut fresh_ca = false;
    let ca: Option<CertificateAuthority> = if tls.ca_cert.exists() {
        if server_ok && client_ok {
            None // nothing to issue; the CA key is not needed
        } else if ca_key_path.exists() {
            let cert_pem = read_string(&tls.ca_cert)?;
            let key_pem = read_string(&ca_key_path)?;
            Some(
                CertificateAuthority::load(&cert_pem, &key_pem, opts).map_err(|e| match e {
                    PkiError::KeyLoad { reason, .. } => PkiError::KeyLoad {
                        path: ca_key_path.clone(),
                        reason,
                    },
                    other => other,
                })?,
            )
        } else {
            return Err(PkiError::KeyLoad {
                path: ca_key_path,
                reason: format!(
                    "missing, so the certificates missing from {} cannot be issued by the existing {CA_CERT_FILE}",
                    dir.display()
                ),
            });
        }
    } else {
        // A key without a certificate is a crash during generation: start over.
        let ca = CertificateAuthority::generate(opts)?;
        files::write_atomic(&ca_key_path, ca.key_pem().as_bytes(), KEY_MODE)?;
        files::write_atomic(&tls.ca_cert, ca.cert_pem().as_bytes(), CERT_MODE)?;
        tracing::info!(dir = %dir.display(), "created certificate authority");
        fresh_ca = true;
        Some(ca)
    };

    if let Some(ca) = &ca {
        // Certificates from a previous CA are useless under a new one.
        if fresh_ca || !server_ok {
            let issued = ca.issue(CertRole::Server, SERVER_CN, server_sans)?;
            write_pair(&tls.server_cert, &tls.server_key, &issued)?;
            tracing::info!(dir = %dir.display(), sans = ?server_sans, "created server certificate");
        }
        if let (Some(c), Some(k)) = (&tls.client_cert, &tls.client_key)
            && (fresh_ca || !client_ok)
        {
            let issued = ca.issue(CertRole::Client, CLIENT_CN, &[])?;
            write_pair(c, k, &issued)?;
            tracing::info!(dir = %dir.display(), "created client certificate");
        }
    }
    Ok(tls)
}

/// Loads the agent's mTLS certificate and key from `cert_path`/`key_path`, or
/// creates a self-signed one (ECDSA P-256, CN = `uuid`, SANs = `ips`) when they
/// are missing, do not match each other, name another agent, or have expired.
/// Returns `(cert_pem, key_pem)`.
pub fn load_or_create_agent_cert(
    cert_path: &Path,
    key_path: &Path,
    uuid: &str,
    ips: &[String],
) -> Result<(String, String), PkiError> {
    if cert_path.exists() && key_path.exists() {
        let cert_pem = read_string(cert_path)?;
        let key_pem = read_string(key_path)?;
        match agent_cert_reusable(&cert_pem, &key_pem, uuid) {
            Ok(()) => return Ok((cert_pem, key_pem)),
            Err(reason) => {
                tracing::warn!(cert = %cert_path.display(), %reason, "replacing agent mTLS certificate")
            }
        }
    }
    for path in [cert_path, key_path] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            files::ensure_private_dir(parent)?;
        }
    }
    let (cert_pem, key_pem) = crate::ca::self_signed_agent_cert(uuid, ips)?;
    files::write_atomic(key_path, key_pem.as_bytes(), KEY_MODE)?;
    files::write_atomic(cert_path, cert_pem.as_bytes(), CERT_MODE)?;
    tracing::info!(cert = %cert_path.display(), agent_id = uuid, "created self-signed agent mTLS certificate");
    Ok((cert_pem, key_pem))
}

fn agent_cert_reusable(cert_pem: &str, key_pem: &str, uuid: &str) -> Result<(), String> {
    let info = first_cert(cert_pem).map_err(|e| e.to_string())?;
    let key = key_pair_from_pem(key_pem)?;
    if info.spki != key.public_key_der() {
        return Err("key does not match certificate".into());
    }
    let cn = crate::tls::peer_common_name(&info.der.clone().into());
    if cn.as_deref() != Some(uuid) {
        return Err(format!("certificate CN {cn:?} is not the agent id {uuid}"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now > info.not_after {
        return Err("certificate expired".into());
    }
    Ok(())
}

/// A certificate + key pair on disk is usable when both parse and match.
fn pair_usable(cert: &Path, key: &Path) -> bool {
    if !cert.exists() || !key.exists() {
        return false;
    }
    let check = || -> Result<(), String> {
        let cert_pem = read_string(cert).map_err(|e| e.to_string())?;
        let key_pem = read_string(key).map_err(|e| e.to_string())?;
        let info = first_cert(&cert_pem).map_err(|e| e.to_string())?;
        let key = key_pair_from_pem(&key_pem)?;
        if info.spki != key.public_key_der() {
            return Err("key does not match certificate".into());
        }
        Ok(())
    };
    match check() {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(cert = %cert.display(), %reason, "certificate/key pair unusable, reissuing");
            false
        }
    }
}

fn first_cert(pem: &str) -> Result<CertInfo, PkiError> {
    let ders = crate::certinfo::pem_or_der_to_der_list(pem.as_bytes())?;
    let der = ders.first().ok_or_else(|| PkiError::Empty {
        what: "certificate file".into(),
    })?;
    CertInfo::parse(der, "certificate")
}

fn write_pair(cert: &Path, key: &Path, issued: &IssuedCert) -> Result<(), PkiError> {
    files::write_atomic(key, issued.key_pem.as_bytes(), KEY_MODE)?;
    files::write_atomic(cert, issued.cert_pem.as_bytes(), CERT_MODE)
}

fn read_string(path: &Path) -> Result<String, PkiError> {
    let bytes = files::read(path)?;
    String::from_utf8(bytes).map_err(|_| PkiError::Pem {
        what: path.display().to_string(),
        reason: "not UTF-8 text".into(),
    })
}
