//! What the public `POST /verify/evidence` route may cost (PROTOCOL.md §5.10): who may call
//! it (`verify_evidence`), how large and how slow its body may be, how many requests are
//! read or evaluated at once (429 with `Retry-After` beyond), and how much work a runtime
//! policy sent with it may ask for (exclude patterns, their length, digest entries). The
//! limits count work, never time: an accepted request's evaluation is bounded by its size.

use std::sync::Arc;
use std::time::Duration;

use keylime_config::{EvidenceAccess, VerifyEvidenceConfig};
use keylime_ima::policy::RuntimePolicy;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::listener::ConnectionInfo;

/// Seconds a client is asked to wait when every evaluation slot is taken.
const RETRY_AFTER_SECS: u64 = 1;

/// Limits of `/verify/evidence` (our `[verifier] verify_evidence*` options).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceSettings {
    /// Who may call the route.
    pub access: EvidenceAccess,
    /// Largest body. Sized to real evidence: a quote, keys and nonce (< 10 KiB), an IMA
    /// list of ~50,000 entries (~130 bytes each: ~6.5 MiB), a base64 UEFI log (< 300 KiB)
    /// and a runtime policy of ~50,000 digests (~6 MiB) fit in the default 16 MiB.
    pub max_body_bytes: usize,
    /// Deadline for the whole body to arrive.
    pub body_timeout: Duration,
    /// Requests being read or evaluated at once.
    pub max_in_flight: usize,
    /// Exclude patterns in a runtime policy.
    pub max_excludes: usize,
    /// Total length of those patterns in bytes.
    pub max_exclude_bytes: usize,
    /// Digest entries of a runtime policy (`digests`, `keyrings`, `ima-buf`).
    pub max_policy_entries: usize,
}

impl Default for EvidenceSettings {
    fn default() -> Self {
        Self::from_config(&VerifyEvidenceConfig::default())
    }
}

impl EvidenceSettings {
    /// The settings `verifier.conf` asks for.
    pub fn from_config(cfg: &VerifyEvidenceConfig) -> Self {
        EvidenceSettings {
            access: cfg.access,
            max_body_bytes: usize::try_from(cfg.max_size).unwrap_or(usize::MAX),
            body_timeout: Duration::try_from_secs_f64(cfg.timeout)
                .unwrap_or(Duration::from_secs(30)),
            max_in_flight: cfg.max_in_flight.max(1),
            max_excludes: cfg.max_excludes,
            max_exclude_bytes: cfg.max_exclude_bytes,
            max_policy_entries: cfg.max_policy_entries,
        }
    }
}

/// The route's admission control, shared by all requests.
#[derive(Debug)]
pub struct EvidenceGate {
    pub settings: EvidenceSettings,
    in_flight: Arc<Semaphore>,
}

impl EvidenceGate {
    pub fn new(settings: EvidenceSettings) -> Self {
        let in_flight = Arc::new(Semaphore::new(settings.max_in_flight));
        EvidenceGate {
            settings,
            in_flight,
        }
    }

    /// Let a request in, or say why not: 404 when the route is disabled, 403 without a
    /// client certificate when one is required, 429 when every slot is taken. The permit
    /// is held until the evaluation ends.
    pub fn admit(&self, conn: Option<&ConnectionInfo>) -> Result<OwnedSemaphorePermit, ApiError> {
        match self.settings.access {
            EvidenceAccess::Disabled => return Err(ApiError::NoRoute),
            EvidenceAccess::Mtls if !conn.is_some_and(|c| c.tls && c.peer_cert.is_some()) => {
                return Err(ApiError::AdminRequired {
                    action: "verify_evidence",
                });
            }
            EvidenceAccess::Public | EvidenceAccess::Mtls => {}
        }
        Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyRequests {
                reason: format!(
                    "{} evidence evaluations already in progress",
                    self.settings.max_in_flight
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            })
    }

    /// Refuse a runtime policy that asks for more work than this route allows.
    pub fn check_runtime_policy(&self, policy: &RuntimePolicy) -> Result<(), String> {
        let s = &self.settings;
        let excludes = policy.excludes.len();
        if excludes > s.max_excludes {
            return Err(format!(
                "{excludes} excludes; this route accepts at most {} (verify_evidence_max_excludes)",
                s.max_excludes
            ));
        }
        let exclude_bytes: usize = policy.excludes.iter().map(String::len).sum();
        if exclude_bytes > s.max_exclude_bytes {
            return Err(format!(
                "excludes of {exclude_bytes} bytes; this route accepts at most {} \
                 (verify_evidence_max_exclude_bytes)",
                s.max_exclude_bytes
            ));
        }
        let entries: usize = [&policy.digests, &policy.keyrings, &policy.ima_buf]
            .iter()
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum();
        if entries > s.max_policy_entries {
            return Err(format!(
                "{entries} digest entries; this route accepts at most {} \
                 (verify_evidence_max_policy_entries)",
                s.max_policy_entries
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(access: EvidenceAccess, in_flight: usize) -> EvidenceGate {
        EvidenceGate::new(EvidenceSettings {
            access,
            max_in_flight: in_flight,
            max_excludes: 2,
            max_exclude_bytes: 10,
            max_policy_entries: 3,
            ..EvidenceSettings::default()
        })
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let g = gate(EvidenceAccess::Public, 1);
        let held = g.admit(None).unwrap();
        assert!(matches!(
            g.admit(None),
            Err(ApiError::TooManyRequests {
                retry_after_secs: 1,
                ..
            })
        ));
        drop(held);
        assert!(g.admit(None).is_ok());
    }

    #[test]
    fn access_setting_is_enforced() {
        assert!(matches!(
            gate(EvidenceAccess::Disabled, 1).admit(None),
            Err(ApiError::NoRoute)
        ));
        assert!(matches!(
            gate(EvidenceAccess::Mtls, 1).admit(None),
            Err(ApiError::AdminRequired { .. })
        ));
    }

    #[test]
    fn policy_work_is_counted() {
        let g = gate(EvidenceAccess::Public, 1);
        let mut p = RuntimePolicy::empty();
        p.excludes = vec!["/a".into(), "/b".into()];
        p.digests
            .insert("/x".into(), vec!["00".into(), "11".into()]);
        p.keyrings.insert(".ima".into(), vec!["22".into()]);
        assert_eq!(g.check_runtime_policy(&p), Ok(()));
        p.ima_buf.insert("b".into(), vec!["33".into()]);
        let e = g.check_runtime_policy(&p).unwrap_err();
        assert!(e.contains("4 digest entries"), "{e}");
        p.ima_buf.clear();
        p.excludes = vec!["/0123456789".into()];
        let e = g.check_runtime_policy(&p).unwrap_err();
        assert!(e.contains("excludes of 11 bytes"), "{e}");
        p.excludes = vec!["/a".into(), "/b".into(), "/c".into()];
        let e = g.check_runtime_policy(&p).unwrap_err();
        assert!(e.contains("3 excludes"), "{e}");
    }
}
