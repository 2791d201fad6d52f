//! Revocation notices, agent side (PROTOCOL.md §7): verify the envelope's RSA-PSS
//! signature with the public key of `revocation_cert`, then run the revocation actions —
//! the configured `revocation_actions`, then the payload's `unzipped/action_list` — each
//! with one argument, the path of a temporary file holding the parsed message JSON.
//!
//! An action name is a plain file name; it is looked up in `revocation_actions_dir`, then
//! (if `allow_payload_revocation_actions`) in the payload's `unzipped/` directory. Every
//! action runs even if an earlier one failed (upstream stops at the first failure; running
//! the rest is the safer reaction to a compromise); each result is logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keylime_payload::revocation::RevocationEnvelope;
use thiserror::Error;

/// How long one revocation action may run before it is killed.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Where revocation material lives (from the agent configuration).
#[derive(Debug, Clone)]
pub struct RevocationSettings {
    /// `revocation_cert` as configured (absolute after config resolution).
    pub revocation_cert: PathBuf,
    /// `$keylime_dir/secure`.
    pub secure_dir: PathBuf,
    pub revocation_actions: Vec<String>,
    pub revocation_actions_dir: PathBuf,
    pub allow_payload_revocation_actions: bool,
}

/// Why a revocation notice was not acted upon.
#[derive(Debug, Error)]
pub enum RevocationError {
    #[error("no revocation certificate: neither {configured} nor {in_payload} exists")]
    NoCertificate {
        configured: PathBuf,
        in_payload: PathBuf,
    },
    #[error("cannot read revocation certificate {path}: {source}")]
    ReadCertificate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid revocation message signature: {0}")]
    Signature(#[source] keylime_payload::PayloadError),
    #[error("revocation message is not a JSON object: {0}")]
    Message(String),
}

impl RevocationSettings {
    /// The payload's `unzipped/` directory.
    pub fn payload_dir(&self) -> PathBuf {
        self.secure_dir.join("unzipped")
    }

    /// The configured certificate if it exists, else the file of the same name in the
    /// payload's `unzipped/` directory.
    pub fn find_certificate(&self) -> Result<PathBuf, RevocationError> {
        if self.revocation_cert.is_file() {
            return Ok(self.revocation_cert.clone());
        }
        let name = self
            .revocation_cert
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("RevocationNotifier-cert.crt"));
        let in_payload = self.payload_dir().join(name);
        if in_payload.is_file() {
            return Ok(in_payload);
        }
        Err(RevocationError::NoCertificate {
            configured: self.revocation_cert.clone(),
            in_payload,
        })
    }

    /// Verifies the envelope and parses its message (blocking: reads the certificate).
    pub fn verify(
        &self,
        envelope: &RevocationEnvelope,
    ) -> Result<serde_json::Value, RevocationError> {
        let cert_path = self.find_certificate()?;
        let cert = std::fs::read_to_string(&cert_path).map_err(|source| {
            RevocationError::ReadCertificate {
                path: cert_path.clone(),
                source,
            }
        })?;
        envelope.verify(&cert).map_err(RevocationError::Signature)?;
        let msg: serde_json::Value = serde_json::from_str(&envelope.msg)
            .map_err(|e| RevocationError::Message(e.to_string()))?;
        if !msg.is_object() {
            return Err(RevocationError::Message("not an object".into()));
        }
        Ok(msg)
    }

    /// The action names to run, in order.
    pub fn action_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .revocation_actions
            .iter()
            .flat_map(|a| parse_action_list(a))
            .collect();
        match std::fs::read_to_string(self.payload_dir().join("action_list")) {
            Ok(list) => names.extend(parse_action_list(&list)),
            Err(_) => tracing::debug!("no action_list in the payload"),
        }
        names
    }

    /// Where the action `name` is, if anywhere allowed.
    pub fn lookup(&self, name: &str) -> Option<PathBuf> {
        if !is_plain_name(name) {
            return None;
        }
        let mut dirs = vec![self.revocation_actions_dir.clone()];
        if self.allow_payload_revocation_actions {
            dirs.push(self.payload_dir());
        }
        dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
    }
}

/// Splits an action list (`a,b`, one per line, or a Python-style `['a', 'b']`).
pub fn parse_action_list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(|s| {
            s.trim()
                .trim_matches(['[', ']'])
                .trim()
                .trim_matches(['\'', '"'])
                .trim()
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A file name without directory parts.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Result of one action, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    NotFound(String),
    Ran { name: String, success: bool },
    Failed { name: String, reason: String },
}

/// Runs every action with the message JSON in a temporary file (in `secure_dir`).
pub async fn run_actions(
    settings: &RevocationSettings,
    msg: &serde_json::Value,
) -> Vec<ActionOutcome> {
    let names = settings.action_names();
    if names.is_empty() {
        tracing::warn!("revocation received but no revocation actions are configured");
        return Vec::new();
    }
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        let outcome = match settings.lookup(&name) {
            None => {
                tracing::error!(action = name, "revocation action not found");
                ActionOutcome::NotFound(name)
            }
            Some(path) => run_one(settings, &name, &path, msg).await,
        };
        outcomes.push(outcome);
    }
    outcomes
}

async fn run_one(
    settings: &RevocationSettings,
    name: &str,
    path: &Path,
    msg: &serde_json::Value,
) -> ActionOutcome {
    let failed = |reason: String| {
        tracing::error!(action = name, %reason, "revocation action failed to run");
        ActionOutcome::Failed {
            name: name.to_string(),
            reason,
        }
    };
    let work_dir = if settings.secure_dir.is_dir() {
        settings.secure_dir.clone()
    } else {
        std::env::temp_dir()
    };
    let mut tmp = match tempfile::NamedTempFile::new_in(&work_dir) {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot create the message file: {e}")),
    };
    if let Err(e) = tmp
        .write_all(msg.to_string().as_bytes())
        .and_then(|()| tmp.flush())
    {
        return failed(format!("cannot write the message file: {e}"));
    }
    tracing::info!(action = name, path = %path.display(), "executing revocation action");
    let child = tokio::process::Command::new(path)
        .arg(tmp.path())
        .current_dir(&work_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {}: {e}", path.display())),
    };
    let result = tokio::time::timeout(ACTION_TIMEOUT, child.wait_with_output()).await;
    // The temporary file is removed when `tmp` drops, after the action finished.
    drop(tmp);
    match result {
        Err(_) => failed(format!("timed out after {ACTION_TIMEOUT:?}")),
        Ok(Err(e)) => failed(e.to_string()),
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let success = out.status.success();
            if success {
                tracing::info!(action = name, status = %out.status, %stdout, %stderr, "revocation action succeeded");
            } else {
                tracing::error!(action = name, status = %out.status, %stdout, %stderr, "revocation action failed");
            }
            ActionOutcome::Ran {
                name: name.to_string(),
                success,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_lists_in_all_spellings() {
        assert_eq!(parse_action_list("a,b"), vec!["a", "b"]);
        assert_eq!(parse_action_list("a\nb\n\n"), vec!["a", "b"]);
        assert_eq!(parse_action_list("['a', \"b\"]"), vec!["a", "b"]);
        assert!(parse_action_list(" , ").is_empty());
    }

    #[test]
    fn lookup_refuses_paths_and_respects_payload_permission() {
        let dir = tempfile::tempdir().unwrap();
        let actions = dir.path().join("actions");
        let secure = dir.path().join("secure");
        std::fs::create_dir_all(&actions).unwrap();
        std::fs::create_dir_all(secure.join("unzipped")).unwrap();
        std::fs::write(actions.join("local"), "").unwrap();
        std::fs::write(secure.join("unzipped/from_payload"), "").unwrap();
        let mut s = RevocationSettings {
            revocation_cert: dir.path().join("none.crt"),
            secure_dir: secure,
            revocation_actions: vec![],
            revocation_actions_dir: actions.clone(),
            allow_payload_revocation_actions: true,
        };
        assert_eq!(s.lookup("local"), Some(actions.join("local")));
        assert!(s.lookup("from_payload").is_some());
        assert_eq!(s.lookup("../actions/local"), None);
        s.allow_payload_revocation_actions = false;
        assert_eq!(s.lookup("from_payload"), None);
        assert!(matches!(
            s.find_certificate(),
            Err(RevocationError::NoCertificate { .. })
        ));
    }
}
