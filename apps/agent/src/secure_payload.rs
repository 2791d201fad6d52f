//! Delivery of the secure payload once K is known (PROTOCOL.md §4.6): K is written to
//! `unzipped/<enc_keyname>`, the decrypted payload to `unzipped/<dec_payload_file>`, the
//! zip (if `extract_payload_zip`) is unpacked into `unzipped/`, and `payload_script`
//! (`autorun.sh`) runs once with `unzipped/` as working directory.
//!
//! The secure directory is `$keylime_dir/secure`, a plain 0700 directory: unlike upstream
//! no tmpfs is mounted (that needs root and `mount(2)`); `secure_size` is therefore
//! unused. Zip extraction refuses the whole archive when any entry would land outside
//! `unzipped/` (`../`, absolute paths), is a symlink, or when the entries exceed the size
//! or count caps — a payload is all or nothing.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keylime_payload::BootstrapKey;
use thiserror::Error;

use crate::private_files::ensure_private_dir;

/// Caps on what a payload zip may expand to (zip-bomb guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes all entries together may expand to (counted while inflating).
    pub max_bytes: u64,
}

/// The caps used for payloads: 10,000 entries, 256 MiB.
pub const ZIP_LIMITS: ZipLimits = ZipLimits {
    max_entries: 10_000,
    max_bytes: 256 * 1024 * 1024,
};
/// How long `payload_script` may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how the payload is delivered (from the agent configuration).
#[derive(Debug, Clone)]
pub struct PayloadSettings {
    /// `$keylime_dir/secure`.
    pub secure_dir: PathBuf,
    pub enc_keyname: String,
    pub dec_payload_file: String,
    pub extract_payload_zip: bool,
    pub payload_script: String,
}

impl PayloadSettings {
    /// `secure_dir/unzipped`, where the payload lands.
    pub fn unzipped_dir(&self) -> PathBuf {
        self.secure_dir.join("unzipped")
    }
}

/// Why a payload could not be delivered.
#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("payload cannot be decrypted with the derived bootstrap key: {0}")]
    Decrypt(#[from] keylime_payload::PayloadError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("payload zip is unreadable: {0}")]
    Zip(String),
    #[error("payload zip entry {name:?} is refused: {reason}")]
    ZipEntry { name: String, reason: &'static str },
    #[error("payload zip is refused: {0}")]
    ZipLimits(String),
    #[error("option {option} = {value:?} must be a plain file name")]
    BadFileName { option: &'static str, value: String },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DeliveryError + 'a {
    move |source| DeliveryError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A plain file name from the configuration (no separators, not `.`/`..`).
fn file_name<'a>(option: &'static str, value: &'a str) -> Result<&'a str, DeliveryError> {
    if value.is_empty() || value == "." || value == ".." || value.contains('/') {
        return Err(DeliveryError::BadFileName {
            option,
            value: value.to_string(),
        });
    }
    Ok(value)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), DeliveryError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io("cannot create", path))?;
    f.write_all(data).map_err(io("cannot write", path))
}

/// What [`prepare`] left for the caller: the script to run, if any.
#[derive(Debug)]
pub struct PreparedPayload {
    pub unzipped: PathBuf,
    /// `unzipped/<payload_script>` when a payload was delivered and the script exists.
    pub script: Option<PathBuf>,
}

/// Blocking part of the delivery: wipes `unzipped/`, writes K, decrypts and writes the
/// payload, unpacks the zip. Returns the script to run.
pub fn prepare(
    settings: &PayloadSettings,
    key: &BootstrapKey,
    payload_b64: Option<&str>,
) -> Result<PreparedPayload, DeliveryError> {
    let key_name = file_name("enc_keyname", &settings.enc_keyname)?;
    let payload_name = file_name("dec_payload_file", &settings.dec_payload_file)?;
    // Decrypt first: a payload that does not decrypt must not wipe the previous one.
    let plaintext = payload_b64
        .map(|b64| keylime_payload::decrypt_payload(key, b64))
        .transpose()?;
    ensure_private_dir(&settings.secure_dir).map_err(io("cannot create", &settings.secure_dir))?;
    let unzipped = settings.unzipped_dir();
    if unzipped.exists() {
        std::fs::remove_dir_all(&unzipped).map_err(io("cannot clear", &unzipped))?;
    }
    ensure_private_dir(&unzipped).map_err(io("cannot create", &unzipped))?;
    write_file(&unzipped.join(key_name), key.as_bytes(), 0o600)?;
    let Some(plaintext) = plaintext else {
        tracing::info!(dir = %unzipped.display(), "bootstrap key stored; no payload was sent");
        return Ok(PreparedPayload {
            unzipped,
            script: None,
        });
    };
    let payload_path = unzipped.join(payload_name);
    write_file(&payload_path, &plaintext, 0o600)?;
    tracing::info!(path = %payload_path.display(), bytes = plaintext.len(), "payload decrypted");
    if settings.extract_payload_zip {
        let files = extract_zip(&plaintext, &unzipped)?;
        tracing::info!(dir = %unzipped.display(), files, "payload zip extracted");
        mark_action_list_executable(&unzipped);
    }
    let script = if settings.payload_script.is_empty() {
        None
    } else {
        let name = file_name("payload_script", &settings.payload_script)?;
        let path = unzipped.join(name);
        if path.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(io("cannot make executable", &path))?;
            Some(path)
        } else {
            tracing::info!(
                script = name,
                "payload has no payload_script; nothing to run"
            );
            None
        }
    };
    Ok(PreparedPayload { unzipped, script })
}

/// Unpacks `zip_bytes` into `dest` after checking every entry (see module docs).
/// Returns the number of files written.
pub fn extract_zip(zip_bytes: &[u8], dest: &Path) -> Result<usize, DeliveryError> {
    extract_zip_with(zip_bytes, dest, ZIP_LIMITS)
}

/// [`extract_zip`] with explicit caps.
pub fn extract_zip_with(
    zip_bytes: &[u8],
    dest: &Path,
    limits: ZipLimits,
) -> Result<usize, DeliveryError> {
    let ZipLimits {
        max_entries,
        max_bytes,
    } = limits;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
        .map_err(|e| DeliveryError::Zip(e.to_string()))?;
    if archive.len() > max_entries {
        return Err(DeliveryError::ZipLimits(format!(
            "{} entries, more than {max_entries}",
            archive.len()
        )));
    }
    // First pass: names and declared sizes, so nothing is written for a refused zip.
    let mut plan = Vec::with_capacity(archive.len());
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| DeliveryError::Zip(e.to_string()))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| "<undecodable name>".into());
        if entry.is_symlink() {
            return Err(DeliveryError::ZipEntry {
                name,
                reason: "symbolic links are not allowed",
            });
        }
        if name.starts_with('/') || name.starts_with('\\') {
            return Err(DeliveryError::ZipEntry {
                name,
                reason: "absolute paths are not allowed",
            });
        }
        let Some(rel) = entry.enclosed_name() else {
            return Err(DeliveryError::ZipEntry {
                name,
                reason: "path leaves the payload directory",
            });
        };
        declared = declared.saturating_add(entry.size());
        plan.push((rel, entry.is_dir()));
    }
    if declared > max_bytes {
        return Err(DeliveryError::ZipLimits(format!(
            "entries expand to {declared} bytes, more than {max_bytes}"
        )));
    }
    // Second pass: write, counting real bytes (declared sizes can lie).
    let mut written: u64 = 0;
    let mut files = 0;
    for (i, (rel, is_dir)) in plan.into_iter().enumerate() {
        let target = dest.join(&rel);
        if is_dir {
            ensure_private_dir(&target).map_err(io("cannot create", &target))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            ensure_private_dir(parent).map_err(io("cannot create", parent))?;
        }
        let mut entry = archive
            .by_index(i)
            .map_err(|e| DeliveryError::Zip(e.to_string()))?;
        let budget = max_bytes - written;
        let mut data = Vec::new();
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| DeliveryError::Zip(format!("entry {}: {e}", rel.display())))?;
        if data.len() as u64 > budget {
            return Err(DeliveryError::ZipLimits(format!(
                "entries expand to more than {max_bytes} bytes"
            )));
        }
        written += data.len() as u64;
        write_file(&target, &data, 0o600)?;
        files += 1;
    }
    Ok(files)
}

/// Payload revocation actions named in `action_list` must be executable (as upstream).
fn mark_action_list_executable(unzipped: &Path) {
    let Ok(list) = std::fs::read_to_string(unzipped.join("action_list")) else {
        return;
    };
    for name in crate::revocation::parse_action_list(&list) {
        let path = unzipped.join(&name);
        if crate::revocation::is_plain_name(&name)
            && path.is_file()
            && let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(action = name, error = %e, "cannot make payload action executable");
        }
    }
}

/// Runs the payload script once with `unzipped/` as working directory; logs its exit
/// status and output. Killed after [`SCRIPT_TIMEOUT`].
pub async fn run_script(script: &Path, cwd: &Path) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\"")
        .arg(script)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(script = %script.display(), error = %e, "cannot start payload script");
            return;
        }
    };
    match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Err(_) => {
            tracing::error!(script = %script.display(), "payload script timed out and was killed")
        }
        Ok(Err(e)) => {
            tracing::error!(script = %script.display(), error = %e, "payload script failed to run")
        }
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                tracing::info!(script = %script.display(), status = %out.status, %stdout, %stderr, "payload script finished");
            } else {
                tracing::warn!(script = %script.display(), status = %out.status, %stdout, %stderr, "payload script failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn extracts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        let z = make_zip(&[("a.txt", b"A"), ("sub/b.txt", b"B")]);
        assert_eq!(extract_zip(&z, dir.path()).unwrap(), 2);
        assert_eq!(std::fs::read(dir.path().join("sub/b.txt")).unwrap(), b"B");
    }

    #[test]
    fn traversal_and_absolute_entries_are_refused_and_nothing_written() {
        for bad in ["../evil.sh", "sub/../../evil.sh", "/etc/evil"] {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("unzipped");
            std::fs::create_dir(&dest).unwrap();
            let z = make_zip(&[("ok.txt", b"x"), (bad, b"pwned")]);
            let err = extract_zip(&z, &dest).unwrap_err();
            assert!(
                matches!(err, DeliveryError::ZipEntry { .. }),
                "{bad}: {err}"
            );
            assert!(!dir.path().join("evil.sh").exists());
            assert!(
                !dest.join("ok.txt").exists(),
                "partial extraction for {bad}"
            );
        }
    }

    #[test]
    fn size_and_count_caps_refuse_bombs() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![0u8; 100_000];
        let z = make_zip(&[("zeros", &big)]);
        assert!(z.len() < 10_000, "compressed well");
        let tight = ZipLimits {
            max_entries: 10,
            max_bytes: 50_000,
        };
        assert!(matches!(
            extract_zip_with(&z, dir.path(), tight),
            Err(DeliveryError::ZipLimits(_))
        ));
        assert!(!dir.path().join("zeros").exists());
        let few = ZipLimits {
            max_entries: 1,
            max_bytes: 1_000_000,
        };
        let two = make_zip(&[("a", b"a"), ("b", b"b")]);
        assert!(matches!(
            extract_zip_with(&two, dir.path(), few),
            Err(DeliveryError::ZipLimits(_))
        ));
    }

    #[test]
    fn not_a_zip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract_zip(b"not a zip", dir.path()),
            Err(DeliveryError::Zip(_))
        ));
    }

    #[test]
    fn bad_config_file_names_are_refused() {
        assert!(file_name("enc_keyname", "../k").is_err());
        assert!(file_name("enc_keyname", "").is_err());
        assert!(file_name("enc_keyname", "..").is_err());
        assert_eq!(
            file_name("enc_keyname", "derived_tci_key").unwrap(),
            "derived_tci_key"
        );
    }
}
