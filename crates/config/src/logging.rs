//! `logging.conf`: upstream feeds it to Python's `logging.config.fileConfig`.
//! We read only what matters to us: the levels of `[logger_root]` and
//! `[logger_keylime]`, mapped onto `tracing` levels.

use crate::error::ConfigError;
use crate::ini::IniDocument;
use crate::reader::OptionReader;
use crate::sources::{ServiceComponent, Sources};
use crate::values;

/// A Python logging level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `NOTSET` (inherit; for the root logger: everything).
    NotSet,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING` / `WARN`.
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL` / `FATAL`.
    Critical,
}

impl LogLevel {
    /// Parses a level name (any case) or Python's numeric level.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = values::unquote(raw);
        let level = match text.to_ascii_uppercase().as_str() {
            "NOTSET" => LogLevel::NotSet,
            "DEBUG" => LogLevel::Debug,
            "INFO" => LogLevel::Info,
            "WARNING" | "WARN" => LogLevel::Warning,
            "ERROR" => LogLevel::Error,
            "CRITICAL" | "FATAL" => LogLevel::Critical,
            _ => match text.parse::<u32>() {
                Ok(0) => LogLevel::NotSet,
                Ok(1..=10) => LogLevel::Debug,
                Ok(11..=20) => LogLevel::Info,
                Ok(21..=30) => LogLevel::Warning,
                Ok(31..=40) => LogLevel::Error,
                Ok(_) => LogLevel::Critical,
                Err(_) => {
                    return Err(format!(
                        "expected DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET, found {raw:?}"
                    ));
                }
            },
        };
        Ok(level)
    }

    /// The `tracing` filter directive for this level (`CRITICAL` → `error`,
    /// `NOTSET` → `trace`).
    pub fn tracing_directive(self) -> &'static str {
        match self {
            LogLevel::NotSet => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
        }
    }
}

/// The levels read from `logging.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggingConfig {
    /// `[logger_root] level` (default `INFO`).
    pub root_level: LogLevel,
    /// `[logger_keylime] level` (default `INFO`); the level of our own logs.
    pub keylime_level: LogLevel,
}

crate::service_loaders!(LoggingConfig, Logging);

impl LoggingConfig {
    /// Builds the configuration from merged files plus environment overrides.
    pub fn from_document(doc: &IniDocument, sources: &Sources) -> Result<Self, ConfigError> {
        let r = OptionReader::new(ServiceComponent::Logging, doc, sources);
        Ok(LoggingConfig {
            root_level: r.parsed("logger_root", "level", LogLevel::Info, LogLevel::parse)?,
            keylime_level: r.parsed("logger_keylime", "level", LogLevel::Info, LogLevel::parse)?,
        })
    }

    /// The level of our own (keylime) logs.
    pub fn level(&self) -> LogLevel {
        self.keylime_level
    }

    /// An `EnvFilter`-style directive: the root level, and the keylime level
    /// for our crates (`info,keylime=debug`).
    pub fn filter_directive(&self) -> String {
        format!(
            "{},keylime={}",
            self.root_level.tracing_directive(),
            self.keylime_level.tracing_directive()
        )
    }
}
