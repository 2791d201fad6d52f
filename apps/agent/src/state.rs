//! The agent's persistent data file (`agent_data_path`, default
//! `$keylime_dir/agent_data.json`): the AK blob and what it was made for.
//!
//! The AK is only reusable under the same EK and with the same algorithms, so the file
//! records the EK public area and the AK hash/signing algorithms next to the blob; any
//! mismatch makes the stored AK stale. Writes are atomic (temp file in the same folder,
//! fsync, rename, fsync of the folder) so a crash never leaves a half-written file.
//! This module does no TPM work.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use thiserror::Error;

/// Format version written into the file; a different version is treated as stale.
pub const FORMAT_VERSION: u32 = 1;

/// Largest data file we are willing to read (an AK blob is a few KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Contents of the data file. `A` is the TPM crate's serialisable AK blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentData<A> {
    pub format_version: u32,
    /// b64 TPM2B_PUBLIC of the EK the AK was created under.
    pub ek_public: String,
    /// `tpm_hash_alg` the AK was created with (e.g. `sha256`).
    pub ak_hash_alg: String,
    /// `tpm_signing_alg` the AK was created with (e.g. `rsassa`).
    pub ak_sign_alg: String,
    /// The AK as the TPM crate serialises it (public + private areas).
    pub ak: A,
}

/// Why the data file could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot read agent data file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent data file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("agent data file {path} is not valid agent data JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write agent data file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise agent data for {path}: {source}")]
    Serialise {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Why a stored AK cannot be used for this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    FormatVersion { found: u32 },
    EkChanged,
    HashAlgChanged { stored: String, wanted: String },
    SignAlgChanged { stored: String, wanted: String },
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FormatVersion { found } => {
                write!(f, "file format version {found}, expected {FORMAT_VERSION}")
            }
            Self::EkChanged => write!(f, "the EK differs from the one the AK was created under"),
            Self::HashAlgChanged { stored, wanted } => {
                write!(
                    f,
                    "AK hash algorithm is {stored}, configuration wants {wanted}"
                )
            }
            Self::SignAlgChanged { stored, wanted } => {
                write!(
                    f,
                    "AK signing algorithm is {stored}, configuration wants {wanted}"
                )
            }
        }
    }
}

impl<A> AgentData<A> {
    /// Whether the stored AK was made for this EK and these algorithms.
    pub fn check(&self, ek_public: &str, hash_alg: &str, sign_alg: &str) -> Result<(), Staleness> {
        if self.format_version != FORMAT_VERSION {
            return Err(Staleness::FormatVersion {
                found: self.format_version,
            });
        }
        if self.ek_public != ek_public {
            return Err(Staleness::EkChanged);
        }
        if !self.ak_hash_alg.eq_ignore_ascii_case(hash_alg) {
            return Err(Staleness::HashAlgChanged {
                stored: self.ak_hash_alg.clone(),
                wanted: hash_alg.to_string(),
            });
        }
        if !self.ak_sign_alg.eq_ignore_ascii_case(sign_alg) {
            return Err(Staleness::SignAlgChanged {
                stored: self.ak_sign_alg.clone(),
                wanted: sign_alg.to_string(),
            });
        }
        Ok(())
    }
}

impl<A: DeserializeOwned> AgentData<A> {
    /// Reads the file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StateError::Read {
                path: path.into(),
                source,
            })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(StateError::TooLarge { path: path.into() });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Parse {
                path: path.into(),
                source,
            })
    }
}

impl<A: Serialize> AgentData<A> {
    /// Writes the file atomically, readable by its owner only.
    pub fn store(&self, path: &Path) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(self).map_err(|source| StateError::Serialise {
            path: path.into(),
            source,
        })?;
        crate::private_files::write_private(path, &json).map_err(|source| StateError::Write {
            path: path.into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct FakeAk {
        public: Vec<u8>,
        private: Vec<u8>,
    }

    fn sample() -> AgentData<FakeAk> {
        AgentData {
            format_version: FORMAT_VERSION,
            ek_public: "AToAAQ==".into(),
            ak_hash_alg: "sha256".into(),
            ak_sign_alg: "rsassa".into(),
            ak: FakeAk {
                public: vec![1, 2, 3],
                private: vec![4, 5],
            },
        }
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent_data.json");
        assert_eq!(AgentData::<FakeAk>::load(&path).unwrap(), None);
        sample().store(&path).unwrap();
        assert_eq!(AgentData::<FakeAk>::load(&path).unwrap(), Some(sample()));
        // Overwrite in place, and no temp files are left behind.
        let mut changed = sample();
        changed.ak.private = vec![9];
        changed.store(&path).unwrap();
        assert_eq!(AgentData::<FakeAk>::load(&path).unwrap(), Some(changed));
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("agent_data.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn corrupt_and_oversized_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent_data.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            AgentData::<FakeAk>::load(&path),
            Err(StateError::Parse { .. })
        ));
        fs::write(&path, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert!(matches!(
            AgentData::<FakeAk>::load(&path),
            Err(StateError::TooLarge { .. })
        ));
    }

    #[test]
    fn staleness_is_detected() {
        let d = sample();
        assert_eq!(d.check("AToAAQ==", "SHA256", "rsassa"), Ok(()));
        assert_eq!(
            d.check("other", "sha256", "rsassa"),
            Err(Staleness::EkChanged)
        );
        assert!(matches!(
            d.check("AToAAQ==", "sha384", "rsassa"),
            Err(Staleness::HashAlgChanged { .. })
        ));
        assert!(matches!(
            d.check("AToAAQ==", "sha256", "ecdsa"),
            Err(Staleness::SignAlgChanged { .. })
        ));
        let mut old = sample();
        old.format_version = 0;
        assert_eq!(
            old.check("AToAAQ==", "sha256", "rsassa"),
            Err(Staleness::FormatVersion { found: 0 })
        );
    }
}
