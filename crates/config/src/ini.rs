//! INI reader with the semantics of Python's `configparser.RawConfigParser`,
//! which upstream Keylime uses for `verifier.conf`, `registrar.conf`, …
//!
//! What it owns: turning file text into `(section, option) -> value` with the
//! origin (file and line) of every value, and merging several files where later
//! files win. What it does not do: typing values or applying environment
//! overrides (see `reader.rs`).
//!
//! Rules reproduced from `RawConfigParser` (no interpolation, strict mode):
//! * `option = value` and `option: value`; the first `=` or `:` splits;
//!   whitespace around key and value is dropped; `option =` is an empty value.
//! * Lines whose first non-blank character is `#` or `;` are comments. There
//!   are no inline comments: `port = 8881 # x` has the value `8881 # x`.
//! * A line indented deeper than its option's line continues the value
//!   (joined with `\n`); blank lines inside a value are kept, trailing ones
//!   dropped.
//! * Option names are case-insensitive (stored lower case); section names are
//!   case-sensitive. `[DEFAULT]` supplies fallbacks for every section.
//! * Within one file a section or an option of a section may appear only once;
//!   across files later values override earlier ones.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Origin};

/// Largest configuration file we read (upstream files are ~20 KiB).
pub const MAX_CONFIG_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// Name of the fallback section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// One value with the place it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniValue {
    /// The value as written (continuation lines joined with `\n`), quotes kept.
    pub raw: String,
    /// File and line of the option.
    pub origin: Origin,
}

/// The merged content of one or more INI files.
#[derive(Clone, Debug, Default)]
pub struct IniDocument {
    sections: BTreeMap<String, BTreeMap<String, IniValue>>,
    files: Vec<PathBuf>,
}

struct PendingOption {
    section: String,
    name: String,
    indent: usize,
    line: usize,
    lines: Vec<String>,
}

impl IniDocument {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files merged into this document, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads `path` and merges it over the current content.
    pub fn read_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = read_limited(path)?;
        self.read_str(path, &text)
    }

    /// Parses `text` (named `path` in errors) and merges it over the current
    /// content. On error nothing of this text is merged.
    pub fn read_str(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let parsed = parse(path, text)?;
        for (section, options) in parsed {
            let target = self.sections.entry(section).or_default();
            for (name, value) in options {
                target.insert(name, value);
            }
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// The value of `option` in `section`, falling back to `[DEFAULT]`.
    pub fn get(&self, section: &str, option: &str) -> Option<&IniValue> {
        let option = option.to_ascii_lowercase();
        self.sections
            .get(section)
            .and_then(|s| s.get(&option))
            .or_else(|| {
                self.sections
                    .get(DEFAULT_SECTION)
                    .and_then(|s| s.get(&option))
            })
    }

    /// Whether a `[section]` header was read.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// Names of the sections read (including `DEFAULT` if present).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// Options written in `section` itself (not those inherited from `[DEFAULT]`).
    pub fn options(&self, section: &str) -> impl Iterator<Item = (&str, &IniValue)> {
        self.sections
            .get(section)
            .into_iter()
            .flat_map(|s| s.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

/// Reads a UTF-8 text file of at most [`MAX_CONFIG_FILE_SIZE`] bytes.
pub(crate) fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_CONFIG_FILE_SIZE {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_CONFIG_FILE_SIZE,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_string())
}

type Sections = BTreeMap<String, BTreeMap<String, IniValue>>;

fn parse(path: &Path, text: &str) -> Result<Sections, ConfigError> {
    let mut sections: Sections = BTreeMap::new();
    let mut seen_sections: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut pending: Option<PendingOption> = None;

    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let stripped = line.trim();

        if stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        if stripped.is_empty() {
            if let Some(p) = pending.as_mut() {
                p.lines.push(String::new());
            }
            continue;
        }

        let indent = line.len() - line.trim_start().len();
        if let Some(p) = pending.as_mut()
            && indent > p.indent
        {
            p.lines.push(stripped.to_string());
            continue;
        }

        finish(&mut sections, pending.take(), path);

        if let Some(header) = section_header(stripped) {
            if !seen_sections.insert(header.to_string()) {
                return Err(ConfigError::DuplicateSection {
                    path: path.to_path_buf(),
                    line: line_no,
                    section: header.to_string(),
                });
            }
            sections.entry(header.to_string()).or_default();
            current = Some(header.to_string());
            continue;
        }

        let Some(section) = current.as_ref() else {
            return Err(ConfigError::MissingSectionHeader {
                path: path.to_path_buf(),
                line: line_no,
                text: stripped.to_string(),
            });
        };

        let Some(split) = stripped.find(['=', ':']) else {
            return Err(malformed(path, line_no, stripped));
        };
        let name = stripped[..split].trim_end().to_ascii_lowercase();
        if name.is_empty() {
            return Err(malformed(path, line_no, stripped));
        }
        let value = stripped[split + 1..].trim();
        let exists = sections.get(section).is_some_and(|s| s.contains_key(&name));
        if exists {
            return Err(ConfigError::DuplicateOption {
                path: path.to_path_buf(),
                line: line_no,
                section: section.clone(),
                option: name,
            });
        }
        // Reserve the name now so a duplicate is caught even before `finish`.
        sections.entry(section.clone()).or_default().insert(
            name.clone(),
            IniValue {
                raw: String::new(),
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: line_no,
                },
            },
        );
        pending = Some(PendingOption {
            section: section.clone(),
            name,
            indent,
            line: line_no,
            lines: vec![value.to_string()],
        });
    }
    finish(&mut sections, pending.take(), path);
    Ok(sections)
}

fn malformed(path: &Path, line: usize, text: &str) -> ConfigError {
    ConfigError::MalformedLine {
        path: path.to_path_buf(),
        line,
        text: text.to_string(),
    }
}

/// `[name]` → `name` (up to the last `]`, as Python's greedy header pattern).
fn section_header(stripped: &str) -> Option<&str> {
    let rest = stripped.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

fn finish(sections: &mut Sections, pending: Option<PendingOption>, path: &Path) {
    let Some(p) = pending else { return };
    let raw = p.lines.join("\n").trim_end().to_string();
    sections.entry(p.section).or_default().insert(
        p.name,
        IniValue {
            raw,
            origin: Origin::File {
                path: path.to_path_buf(),
                line: p.line,
            },
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<IniDocument, ConfigError> {
        let mut d = IniDocument::new();
        d.read_str(Path::new("t.conf"), text)?;
        Ok(d)
    }

    fn raw<'a>(d: &'a IniDocument, s: &str, o: &str) -> &'a str {
        d.get(s, o).map(|v| v.raw.as_str()).unwrap_or("<missing>")
    }

    #[test]
    fn both_delimiters_comments_and_case() {
        let d = doc("# c\n; c\n[s]\nKey = v1\nother: v2 = x\n  # indented comment\nempty =\ninline = 1 # not a comment\n")
            .expect("parses");
        assert_eq!(raw(&d, "s", "key"), "v1");
        assert_eq!(raw(&d, "s", "KEY"), "v1");
        assert_eq!(raw(&d, "s", "other"), "v2 = x");
        assert_eq!(raw(&d, "s", "empty"), "");
        assert_eq!(raw(&d, "s", "inline"), "1 # not a comment");
    }

    #[test]
    fn continuation_lines_and_blank_lines() {
        let d = doc("[s]\nlist = [\n    'a',\n\n    'b']\n\nnext = 1\n").expect("parses");
        assert_eq!(raw(&d, "s", "list"), "[\n'a',\n\n'b']");
        assert_eq!(raw(&d, "s", "next"), "1");
    }

    #[test]
    fn default_section_is_a_fallback() {
        let d = doc("[DEFAULT]\na = 1\n[s]\nb = 2\n").expect("parses");
        assert_eq!(raw(&d, "s", "a"), "1");
        assert_eq!(raw(&d, "other", "a"), "1");
    }

    #[test]
    fn origins_record_the_first_line() {
        let d = doc("[s]\n\nx = 1\n  2\n").expect("parses");
        let v = d.get("s", "x").expect("present");
        assert_eq!(v.raw, "1\n2");
        assert_eq!(
            v.origin,
            Origin::File {
                path: "t.conf".into(),
                line: 3
            }
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = doc("x = 1\n").expect_err("no header");
        assert!(
            matches!(e, ConfigError::MissingSectionHeader { line: 1, .. }),
            "{e}"
        );
        let e = doc("[s]\nno delimiter here\n").expect_err("malformed");
        assert!(
            matches!(e, ConfigError::MalformedLine { line: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().starts_with("t.conf:2:"), "{e}");
        let e = doc("[s]\n= 1\n").expect_err("empty key");
        assert!(
            matches!(e, ConfigError::MalformedLine { line: 2, .. }),
            "{e}"
        );
        let e = doc("[s]\na = 1\nA = 2\n").expect_err("duplicate");
        assert!(
            matches!(e, ConfigError::DuplicateOption { line: 3, .. }),
            "{e}"
        );
        let e = doc("[s]\n[t]\n[s]\n").expect_err("duplicate section");
        assert!(
            matches!(e, ConfigError::DuplicateSection { line: 3, .. }),
            "{e}"
        );
    }

    #[test]
    fn later_files_override_earlier_ones() {
        let mut d = IniDocument::new();
        d.read_str(Path::new("a"), "[s]\nx = 1\ny = 1\n")
            .expect("a");
        d.read_str(Path::new("b"), "[s]\nx = 2\n").expect("b");
        assert_eq!(raw(&d, "s", "x"), "2");
        assert_eq!(raw(&d, "s", "y"), "1");
        assert_eq!(d.files().len(), 2);
    }
}
