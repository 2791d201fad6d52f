//! Typed reads of service options: environment override first, then the
//! merged files, then the built-in default.
//!
//! Owns the override rule `KEYLIME_<C>[_<SECTION>]_<OPTION>` and the
//! bookkeeping that reports options we do not know (kept in the file, logged
//! at debug level, never an error: operators' files carry options of other
//! versions).

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::error::{ConfigError, Origin};
use crate::ini::IniDocument;
use crate::pyliteral::PyValue;
use crate::sources::{ServiceComponent, Sources};
use crate::values::{self, IntOption};

/// A raw option value and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct RawOption {
    pub text: String,
    pub origin: Origin,
}

/// Reads options of one service component.
pub(crate) struct OptionReader<'a> {
    component: ServiceComponent,
    doc: &'a IniDocument,
    sources: &'a Sources,
    consumed: RefCell<BTreeSet<(String, String)>>,
}

impl<'a> OptionReader<'a> {
    pub fn new(component: ServiceComponent, doc: &'a IniDocument, sources: &'a Sources) -> Self {
        OptionReader {
            component,
            doc,
            sources,
            consumed: RefCell::new(BTreeSet::new()),
        }
    }

    /// The raw text of an option, if set anywhere.
    pub fn raw(&self, section: &str, option: &str) -> Option<RawOption> {
        self.consumed
            .borrow_mut()
            .insert((section.to_string(), option.to_string()));
        let var = self.component.override_env_var(section, option);
        if let Some(text) = self.sources.var(&var) {
            tracing::info!(
                component = self.component.name(),
                section,
                option,
                env = %var,
                "option overridden by environment variable"
            );
            return Some(RawOption {
                text: text.to_string(),
                origin: Origin::Env { var },
            });
        }
        self.doc.get(section, option).map(|v| RawOption {
            text: v.raw.clone(),
            origin: v.origin.clone(),
        })
    }

    /// Converts an option with `parse`, or returns `default` when unset.
    pub fn parsed<T>(
        &self,
        section: &str,
        option: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(section, option) {
            None => Ok(default),
            Some(raw) => parse(&raw.text)
                .map_err(|reason| ConfigError::invalid(&raw.origin, section, option, reason)),
        }
    }

    /// A string option with upstream's quote stripping.
    pub fn string(&self, section: &str, option: &str, default: &str) -> String {
        match self.raw(section, option) {
            None => default.to_string(),
            Some(raw) => values::unquote(&raw.text).to_string(),
        }
    }

    pub fn boolean(&self, section: &str, option: &str, default: bool) -> Result<bool, ConfigError> {
        self.parsed(section, option, default, values::parse_bool)
    }

    pub fn int<T: IntOption>(
        &self,
        section: &str,
        option: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        self.parsed(section, option, default, values::parse_int::<T>)
    }

    pub fn seconds(&self, section: &str, option: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(section, option, default, values::parse_seconds)
    }

    pub fn list(
        &self,
        section: &str,
        option: &str,
        default: &[&str],
    ) -> Result<Vec<String>, ConfigError> {
        self.parsed(
            section,
            option,
            default.iter().map(|s| s.to_string()).collect(),
            values::parse_list,
        )
    }

    pub fn literal_list(
        &self,
        section: &str,
        option: &str,
        default: &str,
    ) -> Result<(Vec<PyValue>, Origin), ConfigError> {
        let (text, origin) = match self.raw(section, option) {
            None => (default.to_string(), Origin::Default),
            Some(raw) => (raw.text, raw.origin),
        };
        let items = values::parse_literal_list(&text)
            .map_err(|reason| ConfigError::invalid(&origin, section, option, reason))?;
        Ok((items, origin))
    }

    /// Logs, at debug level, options present in `sections` that were never read.
    /// Also warns when files were read but none has the main (first) section.
    pub fn report_unknown(&self, sections: &[&str]) {
        if let Some(main) = sections.first()
            && !self.doc.files().is_empty()
            && !self.doc.has_section(main)
        {
            tracing::warn!(
                component = self.component.name(),
                files = ?self.doc.files(),
                "configuration files have no [{main}] section; using built-in defaults"
            );
        }
        let consumed = self.consumed.borrow();
        for section in sections {
            for (option, value) in self.doc.options(section) {
                if !consumed.contains(&(section.to_string(), option.to_string())) {
                    tracing::debug!(
                        component = self.component.name(),
                        section,
                        option,
                        origin = %value.origin,
                        "ignoring unknown configuration option"
                    );
                }
            }
        }
    }
}
