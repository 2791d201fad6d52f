//! The allow-list: cycles kept on purpose, one a line, each with its reason:
//!
//! ```text
//! keylime-eventlog (lib): crate::log crate::log::digest_check  # why this shape is natural
//! ```
//!
//! A cycle is allowed only when its module set equals a listed one exactly, so a cycle that
//! grows is reported again. A line without a reason is refused.

/// One allowed cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedCycle {
    pub krate: String,
    pub modules: Vec<String>,
    pub reason: String,
}

/// Why the allow-list was refused.
#[derive(Debug, thiserror::Error)]
pub enum AllowListError {
    #[error("allow-list line {line}: expected `crate: module module …  # reason`")]
    Malformed { line: usize },
    #[error("allow-list line {line}: every allowed cycle needs a reason after `#`")]
    NoReason { line: usize },
}

/// Parse the allow-list text (blank lines and lines starting with `#` are skipped).
pub fn parse(text: &str) -> Result<Vec<AllowedCycle>, AllowListError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (entry, reason) = trimmed.split_once('#').unwrap_or((trimmed, ""));
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AllowListError::NoReason { line });
        }
        let (krate, modules) = entry
            .rsplit_once("):")
            .map(|(k, m)| (format!("{k})"), m))
            .ok_or(AllowListError::Malformed { line })?;
        let mut modules: Vec<String> = modules.split_whitespace().map(str::to_owned).collect();
        if modules.len() < 2 {
            return Err(AllowListError::Malformed { line });
        }
        modules.sort();
        out.push(AllowedCycle {
            krate: krate.trim().to_owned(),
            modules,
            reason: reason.to_owned(),
        });
    }
    Ok(out)
}
