//! The crates of a Cargo workspace: every member's library and binary roots, read from the
//! manifests (`[lib] path`, `[[bin]] path`, else `src/lib.rs`, `src/main.rs` and
//! `src/bin/*.rs`). Tests, examples and benches are separate crates of test code and are
//! not read.

use std::path::{Path, PathBuf};

/// One crate to check.
#[derive(Debug, Clone)]
pub struct CrateRoot {
    /// `package (lib)` or `package (bin name)`.
    pub name: String,
    pub root: PathBuf,
}

/// Why the workspace could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid manifest: {source}")]
    Manifest {
        path: PathBuf,
        source: toml::de::Error,
    },
}

fn manifest(path: &Path) -> Result<toml::Table, WorkspaceError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkspaceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse().map_err(|source| WorkspaceError::Manifest {
        path: path.to_path_buf(),
        source,
    })
}

/// The crate roots of the workspace at `dir`, in member order.
pub fn crate_roots(dir: &Path) -> Result<Vec<CrateRoot>, WorkspaceError> {
    let root = manifest(&dir.join("Cargo.toml"))?;
    let members: Vec<String> = root
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for member in members {
        out.extend(member_roots(&dir.join(member))?);
    }
    Ok(out)
}

fn member_roots(dir: &Path) -> Result<Vec<CrateRoot>, WorkspaceError> {
    let manifest = manifest(&dir.join("Cargo.toml"))?;
    let package = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_owned();
    let path_of = |table: &toml::Value| {
        table
            .get("path")
            .and_then(|p| p.as_str())
            .map(|p| dir.join(p))
    };
    let mut out = Vec::new();
    let lib = manifest
        .get("lib")
        .and_then(path_of)
        .unwrap_or_else(|| dir.join("src/lib.rs"));
    if lib.is_file() {
        out.push(CrateRoot {
            name: format!("{package} (lib)"),
            root: lib,
        });
    }
    let mut bins: Vec<(String, PathBuf)> = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|bins| {
            bins.iter()
                .filter_map(|b| {
                    let name = b.get("name").and_then(|n| n.as_str())?.to_owned();
                    let path = path_of(b).unwrap_or_else(|| dir.join(format!("src/bin/{name}.rs")));
                    Some((name, path))
                })
                .collect()
        })
        .unwrap_or_default();
    let main = dir.join("src/main.rs");
    if main.is_file() && !bins.iter().any(|(_, p)| *p == main) {
        bins.push((package.clone(), main));
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
        let mut auto: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs") || p.join("main.rs").is_file())
            .collect();
        auto.sort();
        for path in auto {
            let path = if path.is_dir() {
                path.join("main.rs")
            } else {
                path
            };
            if !bins.iter().any(|(_, p)| *p == path) {
                let name = path
                    .with_extension("")
                    .iter()
                    .next_back()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                bins.push((name, path));
            }
        }
    }
    for (name, root) in bins {
        if root.is_file() {
            out.push(CrateRoot {
                name: format!("{package} (bin {name})"),
                root,
            });
        }
    }
    Ok(out)
}
