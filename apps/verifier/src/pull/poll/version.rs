//! Agent API version renegotiation (PROTOCOL.md §1.2 "Verifier → agent"): when an agent
//! answers a quote or vkey request with 400 "API version not supported", GET its
//! unversioned `/version`, pick the highest 2.x version both sides serve and retry at once.
//! A "downgrade" (negotiated ≤ the version in use) is refused once the agent has been
//! attested (`attestation_count > 0`): the agent goes to FAILED with
//! `internal.verifier.version_not_supported`.
//!
//! The negotiated version is written into the stored add request (`supported_version`), so
//! a restarted verifier polls the agent at that version.

use keylime_api::ApiVersion;
use keylime_api::verifier::OperationalState;
use keylime_api::version::{AGENT_SUPPORTED_VERSIONS, AgentVersionInfo, highest_common};
use tokio::sync::watch;

use super::{Command, Exit, Poller, wait_command};
use crate::pull::client::AgentClient;

/// Why no version to retry with was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VersionRefusal {
    #[error("agent /version offers no 2.x API version the verifier serves (offered: {offered:?})")]
    NoCommon { offered: Vec<String> },
    #[error(
        "agent API version {negotiated} is not newer than {current} and the agent was already attested"
    )]
    Downgrade {
        negotiated: ApiVersion,
        current: ApiVersion,
    },
    #[error("agent rejects API version {0} but /version offers nothing else")]
    Unchanged(ApiVersion),
    #[error("version in use {0:?} is not an API version")]
    BadCurrent(String),
}

/// The version to retry with, given the agent's `/version` answer, the version in use and
/// the agent's attestation count.
pub(crate) fn choose_version(
    info: &AgentVersionInfo,
    current: &str,
    attestation_count: i64,
) -> Result<ApiVersion, VersionRefusal> {
    let current: ApiVersion = current
        .parse()
        .map_err(|_| VersionRefusal::BadCurrent(current.to_owned()))?;
    let offered: Vec<String> = match &info.supported_versions {
        Some(list) if !list.is_empty() => list.clone(),
        _ => vec![info.supported_version.clone()],
    };
    let theirs: Vec<ApiVersion> = offered.iter().filter_map(|v| v.parse().ok()).collect();
    let negotiated = highest_common(&AGENT_SUPPORTED_VERSIONS, &theirs, 2)
        .ok_or(VersionRefusal::NoCommon { offered })?;
    if negotiated <= current && attestation_count > 0 {
        return Err(VersionRefusal::Downgrade {
            negotiated,
            current,
        });
    }
    if negotiated == current {
        return Err(VersionRefusal::Unchanged(current));
    }
    Ok(negotiated)
}

impl Poller<'_> {
    /// Negotiate a new API version with the agent and switch `client` to it. `Err` when
    /// the loop must end (FAILED recorded, or an operator's command obeyed).
    pub(super) async fn renegotiate(
        &mut self,
        client: &mut AgentClient,
        commands: &mut watch::Receiver<Command>,
    ) -> Result<(), Exit> {
        let rejected = client.api_version().to_owned();
        tracing::info!(api_version = %rejected, "agent does not serve our API version; asking /version");
        let info = tokio::select! {
            r = client.agent_versions() => r,
            exit = wait_command(commands) => return Err(self.obey(exit).await),
        };
        let chosen = info
            .map_err(|e| format!("cannot read agent /version: {e}"))
            .and_then(|info| {
                choose_version(&info, &rejected, self.row.attestation_count)
                    .map_err(|e| e.to_string())
            });
        match chosen {
            Ok(version) => {
                tracing::info!(from = %rejected, to = %version, "agent API version renegotiated");
                self.persist_version(&version.to_string()).await;
                client.set_api_version(version);
                Ok(())
            }
            Err(reason) => Err(self
                .fail(OperationalState::Failed, "version_not_supported", &reason)
                .await),
        }
    }
}

impl Poller<'_> {
    /// Writes the negotiated version into the stored add request, so a restarted verifier
    /// polls the agent at that version instead of renegotiating (which, once the agent has
    /// attested, would count as a refused downgrade). A failed write is logged: polling
    /// goes on at the negotiated version.
    async fn persist_version(&mut self, version: &str) {
        let repo = self.ctx.store.verifier();
        let stored = match repo.get(&self.id).await {
            Ok(Some(agent)) => agent.add_request,
            Ok(None) => return, // deleted meanwhile: nothing to keep
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the add request; negotiated version kept in memory only");
                return;
            }
        };
        let mut request: serde_json::Value = match serde_json::from_str(&stored) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "stored add request is not JSON; negotiated version kept in memory only");
                return;
            }
        };
        if let Some(obj) = request.as_object_mut() {
            obj.insert(
                "supported_version".into(),
                serde_json::Value::String(version.to_owned()),
            );
        }
        if let Err(e) = repo.set_add_request(&self.id, &request.to_string()).await {
            tracing::warn!(error = %e, "cannot store the negotiated API version");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(newest: &str, list: Option<&[&str]>) -> AgentVersionInfo {
        AgentVersionInfo {
            supported_version: newest.into(),
            supported_versions: list.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn picks_highest_common_from_list_or_single_version() {
        let full = info("2.9", Some(&["2.1", "2.3", "2.9", "3.0"]));
        assert_eq!(choose_version(&full, "2.6", 0), Ok(v("2.3")));
        // Older agents send only supported_version.
        assert_eq!(choose_version(&info("2.2", None), "2.6", 0), Ok(v("2.2")));
        // Upgrades are fine after attestations.
        assert_eq!(choose_version(&info("2.6", None), "2.1", 5), Ok(v("2.6")));
    }

    #[test]
    fn refuses_downgrade_after_attestation_and_useless_retries() {
        assert_eq!(
            choose_version(&info("2.1", None), "2.6", 1),
            Err(VersionRefusal::Downgrade {
                negotiated: v("2.1"),
                current: v("2.6")
            })
        );
        assert!(matches!(
            choose_version(&info("2.6", None), "2.6", 3),
            Err(VersionRefusal::Downgrade { .. })
        ));
        assert_eq!(
            choose_version(&info("2.6", None), "2.6", 0),
            Err(VersionRefusal::Unchanged(v("2.6")))
        );
        assert!(matches!(
            choose_version(&info("1.0", Some(&["1.0", "3.0"])), "2.6", 0),
            Err(VersionRefusal::NoCommon { .. })
        ));
        assert!(matches!(
            choose_version(&info("garbage", None), "2.6", 0),
            Err(VersionRefusal::NoCommon { .. })
        ));
    }
}
