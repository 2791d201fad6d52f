//! Measured-boot policies (PROTOCOL.md §8.4) and the measured-boot check the verifier runs
//! on each quote (§5.6).
//!
//! A policy is a name (`accept-all`, `reject-all`, `example`) and the agent's reference
//! state (`mb_policy` JSON). [`PreparedMbPolicy::prepare`] validates and compiles the
//! reference state once per policy version (regular expressions, digest and key sets);
//! [`check`] then replays a log, compares the replay with the quoted PCRs and, only if
//! they agree, evaluates the policy, returning failures with upstream's event ids (without
//! the `measured_boot.` prefix) and the boot aggregates the IMA check needs.
//! [`refstate_from_log`] derives the reference state a log implies, as
//! `keylime-policy create measured-boot` does.
//!
//! Nothing here does I/O or keeps state between calls.

mod check;
mod error;
mod example;
mod generate;
mod pattern;
mod refstate;
mod violation;

use std::fmt;

use serde_json::Value;

use crate::log::EventLog;

pub use check::{MbComponent, MbFailure, MbVerdict, boot_aggregates, check, check_replay_only};
pub use error::MbPolicyError;
pub use generate::refstate_from_log;
use refstate::truthy;
use violation::Violation;

/// PCRs upstream collects for measured boot (`config.MEASUREDBOOT_PCRS`): what a policy
/// without its own PCR set (accept-all, reject-all) replays.
pub const MEASURED_BOOT_PCRS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];

/// The PCRs the `example` policy reads: 0–9 and 14.
pub const EXAMPLE_POLICY_PCRS: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// The built-in policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbPolicyName {
    AcceptAll,
    RejectAll,
    Example,
}

impl MbPolicyName {
    pub fn parse(name: &str) -> Option<MbPolicyName> {
        Some(match name {
            "accept-all" => MbPolicyName::AcceptAll,
            "reject-all" => MbPolicyName::RejectAll,
            "example" => MbPolicyName::Example,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MbPolicyName::AcceptAll => "accept-all",
            MbPolicyName::RejectAll => "reject-all",
            MbPolicyName::Example => "example",
        }
    }
}

impl fmt::Display for MbPolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
enum Rules {
    /// No reference state: nothing is replayed or evaluated.
    Nothing,
    AcceptAll,
    RejectAll,
    Example(Box<refstate::ExampleRefState>),
}

/// A policy name with its compiled reference state. `Send + Sync`; prepare it once per
/// policy version and share it between checks.
#[derive(Debug, Clone)]
pub struct PreparedMbPolicy {
    name: MbPolicyName,
    rules: Rules,
    /// The reference state as JSON text, for failure contexts.
    refstate_text: String,
}

impl PreparedMbPolicy {
    /// `name`: the verifier's `measured_boot_policy_name`; `refstate`: the agent's
    /// `mb_policy` JSON. A missing or falsy reference state (`null`, `{}`, `[]`, `""`,
    /// `false`, `0`) means nothing to evaluate, as upstream treats it.
    pub fn prepare(name: &str, refstate: Option<&Value>) -> Result<Self, MbPolicyError> {
        let name =
            MbPolicyName::parse(name).ok_or_else(|| MbPolicyError::UnknownPolicy(name.into()))?;
        let Some(refstate) = refstate.filter(|v| truthy(v)) else {
            return Ok(PreparedMbPolicy {
                name,
                rules: Rules::Nothing,
                refstate_text: String::new(),
            });
        };
        let rules = match name {
            MbPolicyName::AcceptAll => Rules::AcceptAll,
            MbPolicyName::RejectAll => Rules::RejectAll,
            MbPolicyName::Example => {
                Rules::Example(Box::new(refstate::ExampleRefState::compile(refstate)?))
            }
        };
        Ok(PreparedMbPolicy {
            name,
            rules,
            refstate_text: refstate.to_string(),
        })
    }

    pub fn name(&self) -> MbPolicyName {
        self.name
    }

    /// Nothing to evaluate (no reference state): no PCR is replayed against the quote.
    pub fn is_empty(&self) -> bool {
        matches!(self.rules, Rules::Nothing)
    }

    /// PCRs whose quoted values are compared with the log's replay: the policy's own PCRs
    /// (`example`: 0–9 and 14), or every measured-boot PCR for policies without any.
    pub fn pcrs(&self) -> &[u8] {
        match self.rules {
            Rules::Nothing => &[],
            Rules::AcceptAll | Rules::RejectAll => &MEASURED_BOOT_PCRS,
            Rules::Example(_) => &EXAMPLE_POLICY_PCRS,
        }
    }

    /// PCRs the policy needs in the quote before it can be evaluated (`missing_pcrs`).
    fn required_pcrs(&self) -> &[u8] {
        match self.rules {
            Rules::Example(_) => &EXAMPLE_POLICY_PCRS,
            _ => &[],
        }
    }

    /// Evaluate the policy on a parsed log: `Err` with why it is rejected.
    fn evaluate(&self, log: &EventLog) -> Result<(), Violation> {
        match &self.rules {
            Rules::Nothing | Rules::AcceptAll => Ok(()),
            Rules::RejectAll => Err(Violation::new("reject all")),
            Rules::Example(refstate) => example::evaluate(refstate, log),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepared_policies_are_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<PreparedMbPolicy>();
        shareable::<MbVerdict>();
    }

    #[test]
    fn python_truthiness() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for true_ in [
            json!(true),
            json!(-1),
            json!("false"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&true_), "{true_}");
        }
    }
}
