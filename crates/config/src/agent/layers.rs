//! Layering of the agent's TOML files and `KEYLIME_AGENT_*` variables
//! (upstream rust-keylime `config/file_config.rs`, `config/env.rs`).
//!
//! Order, later wins: built-in defaults; `/usr/etc/keylime/agent.conf`;
//! `/usr/etc/keylime/agent.conf.d/*`; `/etc/keylime/agent.conf`;
//! `/etc/keylime/agent.conf.d/*` (all optional, snippets sorted, hidden files
//! skipped as upstream's glob does). `$KEYLIME_AGENT_CONFIG` replaces all the
//! files and must exist. `KEYLIME_AGENT_<OPTION>` variables apply last.
//! Only the `[agent]` table is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::error::{ConfigError, Origin};
use crate::ini::read_limited;
use crate::sources::{Sources, snippet_files};
use crate::values::{self, IntOption};

/// Names the file that replaces all agent files.
pub const AGENT_CONFIG_ENV: &str = "KEYLIME_AGENT_CONFIG";
const ENV_PREFIX: &str = "KEYLIME_AGENT_";
pub(crate) const SECTION: &str = "agent";

/// One agent option value with its origin.
#[derive(Clone, Debug)]
pub(crate) struct AgentValue {
    pub value: toml::Value,
    pub origin: Origin,
}

/// The merged `[agent]` options.
#[derive(Debug, Default)]
pub(crate) struct AgentLayers {
    pub values: BTreeMap<String, AgentValue>,
}

#[derive(serde::Deserialize)]
struct AgentFile {
    #[serde(default)]
    agent: Option<BTreeMap<String, Spanned<toml::Value>>>,
}

impl AgentLayers {
    /// Files to read, in order.
    pub fn files(sources: &Sources) -> Result<Vec<PathBuf>, ConfigError> {
        if let Some(path) = sources.var(AGENT_CONFIG_ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConfigError::MissingAgentConfigFile { path });
            }
            tracing::warn!(path = %path.display(), "agent configuration replaced by {AGENT_CONFIG_ENV}");
            return Ok(vec![path]);
        }
        let mut files = Vec::new();
        for dir in [sources.usr_etc_keylime(), sources.etc_keylime()] {
            let base = dir.join("agent.conf");
            if base.exists() {
                files.push(base);
            }
            files.extend(
                snippet_files(&dir.join("agent.conf.d"))?
                    .into_iter()
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    }),
            );
        }
        Ok(files)
    }

    /// Reads the files and the environment of `sources`.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut layers = AgentLayers::default();
        for file in Self::files(sources)? {
            tracing::debug!(path = %file.display(), "reading agent configuration");
            let text = read_limited(&file)?;
            layers.merge_toml(&file, &text)?;
        }
        let mut overrides: Vec<(&String, &String)> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.as_str() != AGENT_CONFIG_ENV)
            .collect();
        overrides.sort();
        for (var, value) in overrides {
            let option = var[ENV_PREFIX.len()..].to_ascii_lowercase();
            tracing::debug!(env = %var, option = %option, "agent option overridden by environment variable");
            layers.values.insert(
                option,
                AgentValue {
                    value: toml::Value::String(value.clone()),
                    origin: Origin::Env { var: var.clone() },
                },
            );
        }
        Ok(layers)
    }

    /// Merges the `[agent]` table of one TOML text over the current values.
    pub fn merge_toml(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: AgentFile = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            line: e.span().map(|span| line_of(text, span.start)),
            message: e.message().to_string(),
        })?;
        for (key, spanned) in file.agent.unwrap_or_default() {
            let line = line_of(text, spanned.span().start);
            self.values.insert(
                key,
                AgentValue {
                    value: spanned.into_inner(),
                    origin: Origin::File {
                        path: path.to_path_buf(),
                        line,
                    },
                },
            );
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Typed reads of the merged agent options, with the lenient conversions of
/// the `config` crate upstream uses (`"9002"` is a port, `"true"` a boolean).
pub(crate) struct AgentReader<'a> {
    layers: &'a AgentLayers,
    consumed: std::cell::RefCell<Vec<&'static str>>,
}

impl<'a> AgentReader<'a> {
    pub fn new(layers: &'a AgentLayers) -> Self {
        AgentReader {
            layers,
            consumed: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn get(&self, option: &'static str) -> Option<&'a AgentValue> {
        self.consumed.borrow_mut().push(option);
        self.layers.values.get(option)
    }

    pub fn origin(&self, option: &'static str) -> Origin {
        self.layers
            .values
            .get(option)
            .map(|v| v.origin.clone())
            .unwrap_or(Origin::Default)
    }

    fn invalid(v: &AgentValue, option: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(&v.origin, SECTION, option, reason)
    }

    /// Text of a scalar option (`default` when unset).
    pub fn string(&self, option: &'static str, default: &str) -> Result<String, ConfigError> {
        let Some(v) = self.get(option) else {
            return Ok(default.to_string());
        };
        match &v.value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(Self::invalid(
                v,
                option,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    pub fn boolean(&self, option: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.get(option) else {
            return Ok(default);
        };
        match &v.value {
            toml::Value::Boolean(b) => Ok(*b),
            toml::Value::Integer(0) => Ok(false),
            toml::Value::Integer(1) => Ok(true),
            toml::Value::String(s) => {
                values::parse_bool(s).map_err(|r| Self::invalid(v, option, r))
            }
            other => Err(Self::invalid(
                v,
                option,
                format!("expected a boolean, found {}", other.type_str()),
            )),
        }
    }

    pub fn int<T: IntOption + TryFrom<i64>>(
        &self,
        option: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.get(option) else {
            return Ok(default);
        };
        match &v.value {
            toml::Value::Integer(i) => T::try_from(*i).map_err(|_| {
                Self::invalid(
                    v,
                    option,
                    format!("expected an integer {}, found {i}", T::range_text()),
                )
            }),
            toml::Value::String(s) => {
                values::parse_int::<T>(s).map_err(|r| Self::invalid(v, option, r))
            }
            other => Err(Self::invalid(
                v,
                option,
                format!("expected an integer, found {}", other.type_str()),
            )),
        }
    }

    /// A list written as a TOML array or as a string in the agent list syntax.
    pub fn list(&self, option: &'static str, default: &str) -> Result<Vec<String>, ConfigError> {
        let Some(v) = self.get(option) else {
            return Ok(super::settings::agent_list(default));
        };
        match &v.value {
            toml::Value::String(s) => Ok(super::settings::agent_list(s)),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(Self::invalid(
                        v,
                        option,
                        format!(
                            "expected an array of strings, found an element of type {}",
                            other.type_str()
                        ),
                    )),
                })
                .collect(),
            other => Err(Self::invalid(
                v,
                option,
                format!("expected a list, found {}", other.type_str()),
            )),
        }
    }

    /// Logs options that were set but never read.
    pub fn report_unknown(&self) {
        let consumed = self.consumed.borrow();
        for (option, value) in &self.layers.values {
            if !consumed.contains(&option.as_str()) {
                tracing::debug!(option = %option, origin = %value.origin, "ignoring unknown agent option");
            }
        }
    }
}
