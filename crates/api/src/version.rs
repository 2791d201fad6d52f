//! API versions (PROTOCOL.md §1): parsing `"2.6"`/`"v2.6"`, the version lists each
//! component announces, the `/version` bodies and the negotiation rules of §1.2.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A `major.minor` REST API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version (2 = pull API, 3 = push API).
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiVersionError {
    /// The text was not `major.minor` (optionally prefixed with `v`).
    #[error("API version {0:?} is not of the form major.minor (e.g. \"2.6\" or \"v2.6\")")]
    Malformed(String),
}

impl ApiVersion {
    /// Build a version.
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// The URL path prefix for this version, e.g. `/v2.6`.
    pub fn path_prefix(&self) -> String {
        format!("/v{self}")
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = ApiVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || ApiVersionError::Malformed(s.to_owned());
        let body = s.strip_prefix('v').unwrap_or(s);
        let (major, minor) = body.split_once('.').ok_or_else(malformed)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(malformed());
        }
        Ok(Self {
            major: major.parse().map_err(|_| malformed())?,
            minor: minor.parse().map_err(|_| malformed())?,
        })
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The current API version of upstream 7.14.3 services.
pub const CURRENT_VERSION: ApiVersion = ApiVersion::new(2, 6);

/// Versions the registrar and verifier announce (`1.0`, `2.0`…`2.6`, `3.0`).
pub const SERVICE_SUPPORTED_VERSIONS: [ApiVersion; 9] = [
    ApiVersion::new(1, 0),
    ApiVersion::new(2, 0),
    ApiVersion::new(2, 1),
    ApiVersion::new(2, 2),
    ApiVersion::new(2, 3),
    ApiVersion::new(2, 4),
    ApiVersion::new(2, 5),
    ApiVersion::new(2, 6),
    ApiVersion::new(3, 0),
];

/// Pull-agent API versions (the Rust agent's default `api_versions`: 2.1–2.6).
pub const AGENT_SUPPORTED_VERSIONS: [ApiVersion; 6] = [
    ApiVersion::new(2, 1),
    ApiVersion::new(2, 2),
    ApiVersion::new(2, 3),
    ApiVersion::new(2, 4),
    ApiVersion::new(2, 5),
    ApiVersion::new(2, 6),
];

/// Whether a v2 path prefix minor is routed by services (`/v2`, `/v2.0`…`/v2.6`).
pub fn is_routed_v2_minor(minor: u8) -> bool {
    minor <= CURRENT_VERSION.minor
}

/// `results` of registrar/verifier `GET /version` (§1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// The service's current version, e.g. `"2.6"`.
    pub current_version: String,
    /// Every version it serves (absent before 2.5).
    #[serde(default)]
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// What a 7.14.3 registrar answers.
    pub fn registrar() -> Self {
        Self {
            current_version: CURRENT_VERSION.to_string(),
            supported_versions: SERVICE_SUPPORTED_VERSIONS
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// Parsed `supported_versions`, skipping entries that do not parse.
    pub fn supported(&self) -> Vec<ApiVersion> {
        self.supported_versions
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect()
    }
}

/// `results` of agent `GET /version`: `supported_version` (the newest) and, on newer
/// agents, the full list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentVersionInfo {
    /// The newest version the agent serves.
    pub supported_version: String,
    /// All versions it serves (absent on older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_versions: Option<Vec<String>>,
}

/// Versions an agent should try against a registrar, best first (§1.2 "Rust agent →
/// registrar"): with a `/version` answer, `current_version` if enabled, else the newest
/// enabled version the registrar lists; without one, every enabled version newest first.
pub fn registrar_version_candidates(
    info: Option<&VersionInfo>,
    enabled: &[ApiVersion],
) -> Vec<ApiVersion> {
    let mut newest_first: Vec<ApiVersion> = enabled.to_vec();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    newest_first.dedup();
    let Some(info) = info else {
        return newest_first;
    };
    if let Ok(current) = info.current_version.parse::<ApiVersion>()
        && newest_first.contains(&current)
    {
        return vec![current];
    }
    let supported = info.supported();
    newest_first
        .into_iter()
        .find(|v| supported.contains(v))
        .into_iter()
        .collect()
}

/// The highest version present in both lists, restricted to `major` (tenant rules).
pub fn highest_common(ours: &[ApiVersion], theirs: &[ApiVersion], major: u8) -> Option<ApiVersion> {
    ours.iter()
        .filter(|v| v.major == major && theirs.contains(v))
        .max()
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(v("2.6"), ApiVersion::new(2, 6));
        assert_eq!(v("v2.6"), ApiVersion::new(2, 6));
        assert_eq!(v("3.0").to_string(), "3.0");
        assert_eq!(v("2.6").path_prefix(), "/v2.6");
        for bad in [
            "2", "v", "2.", ".6", "2.6.1", "x2.6", "2.a", "-1.0", "999.0",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad} accepted");
        }
        assert!(v("2.10") > v("2.9"));
    }

    #[test]
    fn registrar_version_body_matches_upstream() {
        let json = serde_json::to_value(VersionInfo::registrar()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"current_version":"2.6","supported_versions":
                ["1.0","2.0","2.1","2.2","2.3","2.4","2.5","2.6","3.0"]})
        );
    }

    #[test]
    fn negotiation_prefers_current_then_newest_common() {
        let enabled = AGENT_SUPPORTED_VERSIONS;
        let info = VersionInfo::registrar();
        assert_eq!(
            registrar_version_candidates(Some(&info), &enabled),
            vec![v("2.6")]
        );

        let older = VersionInfo {
            current_version: "3.1".into(),
            supported_versions: vec!["2.0".into(), "2.3".into(), "3.1".into()],
        };
        assert_eq!(
            registrar_version_candidates(Some(&older), &enabled),
            vec![v("2.3")]
        );

        let disjoint = VersionInfo {
            current_version: "1.0".into(),
            supported_versions: vec!["1.0".into()],
        };
        assert!(registrar_version_candidates(Some(&disjoint), &enabled).is_empty());

        let none = registrar_version_candidates(None, &[v("2.1"), v("2.6"), v("2.3")]);
        assert_eq!(none, vec![v("2.6"), v("2.3"), v("2.1")]);
    }

    #[test]
    fn highest_common_restricts_major() {
        let theirs = SERVICE_SUPPORTED_VERSIONS;
        let ours = [v("2.4"), v("2.5"), v("3.0")];
        assert_eq!(highest_common(&ours, &theirs, 2), Some(v("2.5")));
        assert_eq!(highest_common(&[v("2.9")], &theirs, 2), None);
    }
}
