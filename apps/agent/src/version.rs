//! Choice of the registrar API version (PROTOCOL.md §1.2, "Rust agent → registrar").
//!
//! Pure logic: reads the agent's enabled registrar API versions and, given what the registrar's
//! `GET /version` said (if anything), decides which versions to try and in what order.
//! The ordering rule itself is `keylime_api::version::registrar_version_candidates`;
//! this module adds option parsing and a clear error. HTTP lives in `registrar_client`.

use keylime_api::version::registrar_version_candidates;
use keylime_api::{ApiVersion, VersionInfo};
use thiserror::Error;

/// Why no API version could be chosen.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("api_versions entry '{0}' is not a version of the form MAJOR.MINOR")]
    Malformed(String),
    #[error("api_versions enables no version")]
    NoneEnabled,
    #[error(
        "registrar supports none of the enabled API versions: agent enabled [{enabled}], registrar supports [{supported}]"
    )]
    Incompatible { enabled: String, supported: String },
}

/// Parses the resolved version list of `registrar_api_versions`
/// (`AgentConfig::enabled_registrar_api_versions`), sorted oldest first without
/// duplicates.
pub fn parse_enabled(list: &[String]) -> Result<Vec<ApiVersion>, VersionError> {
    let mut versions: Vec<ApiVersion> = list
        .iter()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| VersionError::Malformed(s.clone()))
        })
        .collect::<Result<_, _>>()?;
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        return Err(VersionError::NoneEnabled);
    }
    Ok(versions)
}

/// The versions to try for registration, best first; never empty on `Ok`.
pub fn candidates(
    enabled: &[ApiVersion],
    registrar: Option<&VersionInfo>,
) -> Result<Vec<ApiVersion>, VersionError> {
    if enabled.is_empty() {
        return Err(VersionError::NoneEnabled);
    }
    let list = registrar_version_candidates(registrar, enabled);
    if list.is_empty() {
        let join = |v: Vec<String>| v.join(", ");
        return Err(VersionError::Incompatible {
            enabled: join(enabled.iter().map(ToString::to_string).collect()),
            supported: join(
                registrar
                    .map(|r| r.supported_versions.clone())
                    .unwrap_or_default(),
            ),
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keylime_api::AGENT_SUPPORTED_VERSIONS;

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    fn enabled(list: &[&str]) -> Vec<ApiVersion> {
        parse_enabled(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn registrar(current: &str, supported: &[&str]) -> VersionInfo {
        VersionInfo {
            current_version: current.to_string(),
            supported_versions: supported.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn current_version_is_used_when_enabled() {
        let enabled = AGENT_SUPPORTED_VERSIONS.to_vec();
        let reg = VersionInfo::registrar();
        assert_eq!(candidates(&enabled, Some(&reg)).unwrap(), vec![v("2.6")]);
    }

    #[test]
    fn newer_registrar_falls_back_to_newest_common_version() {
        let enabled = AGENT_SUPPORTED_VERSIONS.to_vec();
        let reg = registrar("3.0", &["2.4", "2.5", "3.0"]);
        assert_eq!(candidates(&enabled, Some(&reg)).unwrap(), vec![v("2.5")]);
    }

    #[test]
    fn no_common_version_is_an_error() {
        let enabled = enabled(&["2.1", "2.2"]);
        let reg = registrar("3.0", &["3.0"]);
        assert_eq!(
            candidates(&enabled, Some(&reg)),
            Err(VersionError::Incompatible {
                enabled: "2.1, 2.2".into(),
                supported: "3.0".into()
            })
        );
    }

    #[test]
    fn missing_version_endpoint_tries_all_newest_first() {
        let enabled = enabled(&["2.2", "2.10", "2.9"]);
        assert_eq!(
            candidates(&enabled, None).unwrap(),
            vec![v("2.10"), v("2.9"), v("2.2")]
        );
    }

    #[test]
    fn list_parsing() {
        assert_eq!(enabled(&["2.5", "2.1", " 2.5"]), vec![v("2.1"), v("2.5")]);
        assert_eq!(
            parse_enabled(&["2.x".into()]),
            Err(VersionError::Malformed("2.x".into()))
        );
        assert_eq!(parse_enabled(&[]), Err(VersionError::NoneEnabled));
        assert_eq!(candidates(&[], None), Err(VersionError::NoneEnabled));
    }
}
