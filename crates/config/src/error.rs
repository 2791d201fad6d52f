//! Errors of the configuration loader.
//!
//! Every variant names the input it is about (a file and line, an environment
//! variable, or the option) and what was wrong with it, so an operator can fix
//! the file without reading our code. Values of secret options (passwords) are
//! never put into messages.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default (no file and no environment variable set it).
    Default,
    /// A line of a configuration file (1-based line number).
    File {
        /// The file that was read.
        path: PathBuf,
        /// 1-based line of the option (the first line of a multi-line value).
        line: usize,
    },
    /// An environment variable override.
    Env {
        /// Name of the variable, e.g. `KEYLIME_VERIFIER_PORT`.
        var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// Everything that can go wrong while reading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory that exists could not be read.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A configuration file is larger than we are willing to read.
    #[error("{}: configuration file is {size} bytes, more than the limit of {limit}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// An option line appears before any `[section]` header.
    #[error("{}:{line}: option before any [section] header: {text:?}", path.display())]
    MissingSectionHeader {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },

    /// A line that is neither a header, an option, a comment nor a continuation.
    #[error(
        "{}:{line}: expected `[section]`, `option = value`, `option: value`, a comment or an indented continuation, found {text:?}",
        path.display()
    )]
    MalformedLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },

    /// The same section header appears twice in one file.
    #[error("{}:{line}: section [{section}] already appeared in this file", path.display())]
    DuplicateSection {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the second header.
        line: usize,
        /// Section name.
        section: String,
    },

    /// The same option appears twice in one section of one file.
    #[error("{}:{line}: option `{option}` already set in section [{section}] of this file", path.display())]
    DuplicateOption {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the second occurrence.
        line: usize,
        /// Section name.
        section: String,
        /// Option name (lower case).
        option: String,
    },

    /// A value could not be converted to the option's type or is not allowed.
    #[error("{origin}: [{section}] {option}: {reason}")]
    InvalidValue {
        /// Where the value came from.
        origin: Origin,
        /// Section of the option.
        section: String,
        /// Option name.
        option: String,
        /// What was wrong, including the offending value unless it is secret.
        reason: String,
    },

    /// A TOML file (agent configuration) is not valid TOML.
    #[error("{}{}: invalid TOML: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// Parser message.
        message: String,
    },

    /// `KEYLIME_AGENT_CONFIG` names a file that does not exist.
    #[error("KEYLIME_AGENT_CONFIG names {}, which does not exist or is not a file", path.display())]
    MissingAgentConfigFile {
        /// The path from the environment variable.
        path: PathBuf,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::InvalidValue`].
    pub(crate) fn invalid(
        origin: &Origin,
        section: &str,
        option: &str,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            origin: origin.clone(),
            section: section.to_string(),
            option: option.to_string(),
            reason: reason.into(),
        }
    }
}
