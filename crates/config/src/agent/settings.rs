//! Keyword-valued agent options: `uuid`, `api_versions`, `ek_handle`, and the
//! agent's list syntax.

use crate::pyliteral::{self, PyValue};
use crate::values;

/// API versions the agent serves in pull mode (upstream rust-keylime).
pub const AGENT_API_VERSIONS: &[&str] = &["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"];
/// API versions the agent uses in push mode (fixed, as upstream).
pub const PUSH_API_VERSIONS: &[&str] = &["3.0"];

/// The `uuid` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UuidSetting {
    /// A UUID written in the file (normalised to lower-case hyphenated form).
    Fixed(String),
    /// `generate` (or a value that is not a UUID, as upstream): a random v4
    /// UUID chosen at start.
    Generate,
    /// `hash_ek`: hex SHA-256 of the EK public key PEM.
    HashEk,
}

impl UuidSetting {
    /// Parses the option; a malformed UUID becomes [`UuidSetting::Generate`]
    /// with a warning, exactly like upstream's agent.
    pub fn parse(raw: &str) -> Self {
        match values::unquote(raw) {
            "hash_ek" => UuidSetting::HashEk,
            "generate" => UuidSetting::Generate,
            other => match uuid::Uuid::parse_str(other) {
                Ok(id) => UuidSetting::Fixed(id.hyphenated().to_string()),
                Err(_) => {
                    tracing::warn!(
                        uuid = other,
                        "agent uuid is not a UUID; a random one will be generated"
                    );
                    UuidSetting::Generate
                }
            },
        }
    }
}

/// `api_versions` / `registrar_api_versions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiVersionsSetting {
    /// `default`: every supported version.
    Default,
    /// `latest`: only the newest supported version.
    Latest,
    /// An explicit list such as `"2.1, 2.2"`.
    List(Vec<String>),
}

impl ApiVersionsSetting {
    /// Parses `default`, `latest` or a list.
    pub fn parse(raw: &str) -> Self {
        match values::unquote(raw) {
            "default" | "" => ApiVersionsSetting::Default,
            "latest" => ApiVersionsSetting::Latest,
            _ => ApiVersionsSetting::List(agent_list(raw)),
        }
    }

    /// The enabled versions, oldest first: list entries not in `supported`
    /// are skipped (with a warning); if none is left, all of `supported`.
    pub fn resolve(&self, supported: &[&str]) -> Vec<String> {
        let all = || supported.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            ApiVersionsSetting::Default => all(),
            ApiVersionsSetting::Latest => supported
                .last()
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
            ApiVersionsSetting::List(list) => {
                let mut enabled: Vec<&str> = Vec::new();
                for v in list {
                    match supported.iter().find(|s| **s == v.as_str()) {
                        Some(s) if !enabled.contains(s) => enabled.push(s),
                        Some(_) => {}
                        None => {
                            tracing::warn!(version = %v, "skipping unsupported API version from configuration")
                        }
                    }
                }
                enabled.sort_by_key(|v| version_key(v));
                if enabled.is_empty() {
                    tracing::warn!(
                        "no supported API version configured; enabling all supported versions"
                    );
                    all()
                } else {
                    enabled.into_iter().map(str::to_string).collect()
                }
            }
        }
    }
}

fn version_key(v: &str) -> (u32, u32) {
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
}

/// The `ek_handle` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EkHandleSetting {
    /// `generate` or empty: create the EK from the standard template.
    Generate,
    /// A persistent handle such as `0x81000000`.
    Persistent(u32),
}

impl EkHandleSetting {
    /// Parses `generate`, empty, or a hexadecimal handle (`0x` optional).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match values::unquote(raw) {
            "" | "generate" => Ok(EkHandleSetting::Generate),
            other => {
                let digits = other
                    .strip_prefix("0x")
                    .or_else(|| other.strip_prefix("0X"))
                    .unwrap_or(other);
                u32::from_str_radix(digits, 16)
                    .map(EkHandleSetting::Persistent)
                    .map_err(|_| format!("expected `generate` or a hexadecimal TPM handle such as 0x81000000, found {raw:?}"))
            }
        }
    }
}

/// The agent's list syntax: optional brackets, items separated by commas,
/// spaces or newlines, each optionally quoted (upstream `list_parser`).
pub fn agent_list(raw: &str) -> Vec<String> {
    let text = raw.trim();
    if text.starts_with('[')
        && let Ok(PyValue::List(items)) = pyliteral::parse(text)
        && items.iter().all(|i| i.as_str().is_some())
    {
        return items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|item| item.trim_matches(|c| c == '"' || c == '\''))
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms() {
        assert_eq!(UuidSetting::parse("hash_ek"), UuidSetting::HashEk);
        assert_eq!(UuidSetting::parse("\"generate\""), UuidSetting::Generate);
        assert_eq!(
            UuidSetting::parse("D432FBB3-D2F1-4A97-9EF7-75BD81C00000"),
            UuidSetting::Fixed("d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into())
        );
        assert_eq!(UuidSetting::parse("not-a-uuid"), UuidSetting::Generate);
    }

    #[test]
    fn api_versions() {
        assert_eq!(
            ApiVersionsSetting::parse("default")
                .resolve(AGENT_API_VERSIONS)
                .len(),
            6
        );
        assert_eq!(
            ApiVersionsSetting::parse("latest").resolve(AGENT_API_VERSIONS),
            vec!["2.6"]
        );
        assert_eq!(
            ApiVersionsSetting::parse("2.6, 2.1, 1.0, 2.1").resolve(AGENT_API_VERSIONS),
            vec!["2.1", "2.6"]
        );
        assert_eq!(
            ApiVersionsSetting::parse("['9.9']")
                .resolve(AGENT_API_VERSIONS)
                .len(),
            6
        );
    }

    #[test]
    fn ek_handle() {
        assert_eq!(
            EkHandleSetting::parse("generate"),
            Ok(EkHandleSetting::Generate)
        );
        assert_eq!(EkHandleSetting::parse(""), Ok(EkHandleSetting::Generate));
        assert_eq!(
            EkHandleSetting::parse("0x81000000"),
            Ok(EkHandleSetting::Persistent(0x8100_0000))
        );
        assert_eq!(
            EkHandleSetting::parse("81010001"),
            Ok(EkHandleSetting::Persistent(0x8101_0001))
        );
        assert!(EkHandleSetting::parse("0xZZ").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(agent_list("a.crt, b.crt"), vec!["a.crt", "b.crt"]);
        assert_eq!(agent_list("['a', \"b\"]"), vec!["a", "b"]);
        assert_eq!(agent_list("[a b]"), vec!["a", "b"]);
        assert_eq!(agent_list(""), Vec::<String>::new());
    }
}
