//! Crash-safe file output for keys and certificates: write a temporary file in
//! the target directory with the final permissions, fsync it, rename it over the
//! target and fsync the directory. A crash leaves either the old file, the new
//! file, or a stray `.tmp` file — never a half-written key under the real name.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::PkiError;

/// Mode of private key files.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode of certificate files (public).
pub(crate) const CERT_MODE: u32 = 0o644;
/// Mode of directories holding keys.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) if missing and sets it to 0700.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| PkiError::io("creating directory", dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| PkiError::io("setting permissions of", dir, e))
}

/// Atomically writes `contents` to `path` with file mode `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    // A random suffix keeps concurrent writers (threads or processes) apart.
    let tmp = dir.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| PkiError::io("creating", &tmp, e))?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("setting permissions of", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| PkiError::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| PkiError::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("renaming into place", path, e))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io("reading", path, e))
}

/// An exclusive advisory lock on `dir/.lock`, held until dropped, so that two
/// processes generating the same TLS directory (a verifier and a tenant at first
/// start) do not interleave and pair one's CA certificate with the other's key.
pub(crate) struct DirLock {
    _file: File,
}

pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, PkiError> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(KEY_MODE)
        .open(&path)
        .map_err(|e| PkiError::io("opening lock file", &path, e))?;
    file.lock().map_err(|e| PkiError::io("locking", &path, e))?;
    Ok(DirLock { _file: file })
}
