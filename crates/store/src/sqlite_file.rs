//! Owner-only SQLite files. The verifier's database holds revocation private keys and the
//! V key shares, the registrar's the activation secrets: the file is created 0600 before
//! SQLite opens it, and SQLite gives its `-wal` and `-shm` files the database file's
//! permissions, so they follow.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of database files.
const FILE_MODE: u32 = 0o600;

/// Creates `path` empty with mode 0600 if it is missing (an empty file is an empty SQLite
/// database); narrows an existing file that group or others can access to 0600.
pub(crate) fn ensure_owner_only(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        // The umask may only have narrowed the mode further, never widened it.
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "database file was readable by others; restricting it to its owner (0600)"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}
