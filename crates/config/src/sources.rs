//! Where configuration comes from: the file system root and the environment.
//!
//! [`Sources`] makes both injectable so tests (and tools) can load
//! configuration from a temporary directory with a hand-made environment;
//! [`Sources::system`] is the real machine. This module also owns the search
//! order of the service files (PROTOCOL.md §9.1, upstream `keylime/config.py`):
//!
//! 1. If `KEYLIME_<C>_CONFIG` names an existing file, only that file is read.
//!    (A name that does not exist is logged and ignored, as upstream does.)
//! 2. Otherwise the first existing of `/etc/keylime/<c>.conf` and
//!    `/usr/etc/keylime/<c>.conf` is the base file.
//! 3. Then every regular file of `/usr/etc/keylime/<c>.conf.d/` and then of
//!    `/etc/keylime/<c>.conf.d/`, each directory sorted by name, later wins.
//!    (Upstream skips snippets when no base file exists; we apply them and
//!    warn, so a snippet-only setup does what its author meant.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::ini::IniDocument;

/// Upstream's default work directory.
pub const DEFAULT_KEYLIME_DIR: &str = "/var/lib/keylime";

/// The file-system root and the environment configuration is read from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Directory standing for `/`: files are looked up under
    /// `<etc_root>/etc/keylime` and `<etc_root>/usr/etc/keylime`.
    pub etc_root: PathBuf,
    /// Environment variables (overrides, `KEYLIME_DIR`, `KEYLIME_*_CONFIG`).
    pub env: HashMap<String, String>,
}

impl Sources {
    /// The real machine: `/` and the process environment (variables that are
    /// not valid UTF-8 are ignored).
    pub fn system() -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Sources {
            etc_root: PathBuf::from("/"),
            env,
        }
    }

    /// `etc_root` with an empty environment (for tests).
    pub fn isolated(etc_root: impl Into<PathBuf>) -> Self {
        Sources {
            etc_root: etc_root.into(),
            env: HashMap::new(),
        }
    }

    /// Adds or replaces one environment variable (builder style).
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// An environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// `$KEYLIME_DIR`, or `/var/lib/keylime` when unset or empty.
    pub fn keylime_dir(&self) -> PathBuf {
        match self.var("KEYLIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(DEFAULT_KEYLIME_DIR),
        }
    }

    /// `<etc_root>/etc/keylime`.
    pub fn etc_keylime(&self) -> PathBuf {
        self.etc_root.join("etc/keylime")
    }

    /// `<etc_root>/usr/etc/keylime`.
    pub fn usr_etc_keylime(&self) -> PathBuf {
        self.etc_root.join("usr/etc/keylime")
    }

    /// The service files to read for `component`, in reading order.
    pub fn service_files(&self, component: ServiceComponent) -> Result<Vec<PathBuf>, ConfigError> {
        let name = component.name();
        let env_name = component.config_env_var();
        if let Some(path) = self.var(env_name).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if path.is_file() {
                tracing::info!(component = name, path = %path.display(), "configuration file set by {env_name}; other files are ignored");
                return Ok(vec![path]);
            }
            tracing::info!(component = name, path = %path.display(), "{env_name} does not name an existing file; using installed configuration");
        }

        let file_name = format!("{name}.conf");
        let mut files = Vec::new();
        match [self.etc_keylime(), self.usr_etc_keylime()]
            .into_iter()
            .map(|dir| dir.join(&file_name))
            .find(|p| p.exists())
        {
            Some(base) => files.push(base),
            None => tracing::warn!(
                component = name,
                "no {file_name} found in /etc/keylime or /usr/etc/keylime; using built-in defaults"
            ),
        }
        let snippet_dir = format!("{name}.conf.d");
        for dir in [self.usr_etc_keylime(), self.etc_keylime()] {
            files.extend(snippet_files(&dir.join(&snippet_dir))?);
        }
        Ok(files)
    }

    /// Reads and merges the service files of `component`.
    pub fn service_document(
        &self,
        component: ServiceComponent,
    ) -> Result<IniDocument, ConfigError> {
        let mut doc = IniDocument::new();
        for file in self.service_files(component)? {
            tracing::debug!(component = component.name(), path = %file.display(), "reading configuration");
            doc.read_file(&file)?;
        }
        Ok(doc)
    }
}

/// Regular files of `dir` sorted by path; none if `dir` does not exist.
pub(crate) fn snippet_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let read_err = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The services configured with upstream's INI files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceComponent {
    /// `verifier.conf`
    Verifier,
    /// `registrar.conf`
    Registrar,
    /// `tenant.conf`
    Tenant,
    /// `ca.conf`
    Ca,
    /// `logging.conf`
    Logging,
}

impl ServiceComponent {
    /// Lower-case name used in file names and as the main section.
    pub fn name(self) -> &'static str {
        match self {
            ServiceComponent::Verifier => "verifier",
            ServiceComponent::Registrar => "registrar",
            ServiceComponent::Tenant => "tenant",
            ServiceComponent::Ca => "ca",
            ServiceComponent::Logging => "logging",
        }
    }

    /// `KEYLIME_<C>_CONFIG`.
    pub fn config_env_var(self) -> &'static str {
        match self {
            ServiceComponent::Verifier => "KEYLIME_VERIFIER_CONFIG",
            ServiceComponent::Registrar => "KEYLIME_REGISTRAR_CONFIG",
            ServiceComponent::Tenant => "KEYLIME_TENANT_CONFIG",
            ServiceComponent::Ca => "KEYLIME_CA_CONFIG",
            ServiceComponent::Logging => "KEYLIME_LOGGING_CONFIG",
        }
    }

    /// The environment variable overriding `option` of `section`:
    /// `KEYLIME_<C>_<OPTION>` for the component's own section, else
    /// `KEYLIME_<C>_<SECTION>_<OPTION>`.
    pub fn override_env_var(self, section: &str, option: &str) -> String {
        let component = self.name().to_ascii_uppercase();
        if section == self.name() {
            format!("KEYLIME_{component}_{}", option.to_ascii_uppercase())
        } else {
            format!(
                "KEYLIME_{component}_{}_{}",
                section.to_ascii_uppercase(),
                option.to_ascii_uppercase()
            )
        }
    }
}

/// `$KEYLIME_DIR` of the process, or `/var/lib/keylime`.
pub fn keylime_dir() -> PathBuf {
    match std::env::var("KEYLIME_DIR") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_KEYLIME_DIR),
    }
}

/// `load()` (the real machine) and `load_from(&Sources)` (files per PROTOCOL.md §9.1, then
/// `KEYLIME_*` overrides) for a service configuration type with a `from_document`.
#[macro_export]
#[doc(hidden)]
macro_rules! service_loaders {
    ($ty:ty, $component:ident) => {
        impl $ty {
            /// Loads from the real machine.
            pub fn load() -> Result<Self, $crate::ConfigError> {
                Self::load_from(&$crate::Sources::system())
            }

            /// Loads from `sources`: the component's files (§9.1), then environment
            /// overrides.
            pub fn load_from(sources: &$crate::Sources) -> Result<Self, $crate::ConfigError> {
                let doc = sources.service_document($crate::ServiceComponent::$component)?;
                Self::from_document(&doc, sources)
            }
        }
    };
}
