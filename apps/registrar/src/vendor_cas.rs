//! The TPM vendor CA directory (`[tenant] tpm_cert_store`) as the registrar sees it: re-read
//! whenever its listing changes (a file added, removed, replaced or touched), so an operator
//! who drops in a new vendor CA does not have to restart the registrar, while an unchanged
//! directory is parsed once and shared.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use keylime_pki::EkCertStore;

/// Name, size and modification time of every entry: what decides "changed".
type Fingerprint = Vec<(std::ffi::OsString, u64, Option<SystemTime>)>;

/// The vendor CAs, loaded on first use and again when the directory changes.
pub struct VendorCaStore {
    dir: PathBuf,
    cached: Mutex<Option<(Fingerprint, Arc<EkCertStore>)>>,
}

impl std::fmt::Debug for VendorCaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorCaStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl VendorCaStore {
    /// A store for `dir`; nothing is read yet.
    pub fn new(dir: &Path) -> Self {
        VendorCaStore {
            dir: dir.to_path_buf(),
            cached: Mutex::new(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current CAs, re-read if the directory changed since the last call. The error
    /// says why the directory cannot be used.
    pub fn current(&self) -> Result<Arc<EkCertStore>, String> {
        let fingerprint = fingerprint(&self.dir)
            .map_err(|e| format!("cannot read tpm_cert_store {}: {e}", self.dir.display()))?;
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, store)) = cached.as_ref().filter(|(seen, _)| *seen == fingerprint) {
            return Ok(store.clone());
        }
        let store = EkCertStore::load(&self.dir)
            .map(Arc::new)
            .map_err(|e| format!("tpm_cert_store {} is unusable: {e}", self.dir.display()))?;
        tracing::info!(path = %self.dir.display(), certificates = store.len(), "TPM vendor CAs loaded");
        *cached = Some((fingerprint, store.clone()));
        Ok(store)
    }
}

fn fingerprint(dir: &Path) -> std::io::Result<Fingerprint> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        entries.push((entry.file_name(), meta.len(), meta.modified().ok()));
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = VendorCaStore::new(&dir.path().join("absent"));
        let err = store.current().unwrap_err();
        assert!(err.contains("cannot read tpm_cert_store"), "{err}");
    }

    fn write_ca(dir: &Path, file: &str) {
        let opts = keylime_pki::CaOptions {
            key_algorithm: keylime_pki::KeyAlgorithm::EcdsaP256,
            ..Default::default()
        };
        let ca = keylime_pki::CertificateAuthority::generate(&opts).unwrap();
        std::fs::write(dir.join(file), ca.cert_pem()).unwrap();
    }

    #[test]
    fn unchanged_directory_is_loaded_once() {
        let dir = tempfile::tempdir().unwrap();
        write_ca(dir.path(), "vendor.pem");
        let store = VendorCaStore::new(dir.path());
        let a = store.current().unwrap();
        let b = store.current().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same directory, same parsed store");
        write_ca(dir.path(), "second-vendor.pem");
        let c = store.current().unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a new file makes it re-read");
        assert_eq!(c.len(), a.len() + 1);
    }
}
