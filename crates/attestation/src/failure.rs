//! Failure events and their severities (PROTOCOL.md §5.11).
//!
//! An event id is `component[.sub…].event`, with upstream's component names — including the
//! misspelt `qoute_validation` (§11 Q2), which status fields, webhooks and revocation
//! messages must carry verbatim. A [`SeverityPolicy`] gives each event a label: the first
//! rule whose regex matches the *whole* event id wins, no match means the highest label,
//! and an irrecoverable event is always raised to the highest label.
//!
//! This module only classifies; it never logs or sends anything.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Components that raise failure events; [`Component::id`] is the event id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// `qoute_validation` (sic, upstream's spelling).
    QuoteValidation,
    /// `pcr_validation`.
    PcrValidation,
    /// `measured_boot`.
    MeasuredBoot,
    /// `ima`.
    Ima,
    /// `internal`.
    Internal,
    /// `default`.
    Default,
}

impl Component {
    /// The event id prefix upstream uses for this component.
    pub fn id(self) -> &'static str {
        match self {
            Component::QuoteValidation => "qoute_validation",
            Component::PcrValidation => "pcr_validation",
            Component::MeasuredBoot => "measured_boot",
            Component::Ima => "ima",
            Component::Internal => "internal",
            Component::Default => "default",
        }
    }
}

/// One reason an attestation failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureEvent {
    /// Full event id, e.g. `pcr_validation.invalid_pcr_7`.
    pub event_id: String,
    /// Severity label from the policy, e.g. `emergency`.
    pub severity_label: String,
    /// Index of the label in the configured label list (0 = least severe).
    pub severity_level: u32,
    /// Event details; upstream sends this JSON-encoded as the revocation `context`.
    pub context: Value,
    /// `false` when the check stopped early and later checks were skipped.
    pub recoverable: bool,
}

impl FailureEvent {
    /// The context as upstream's revocation message carries it: a JSON string.
    pub fn context_json(&self) -> String {
        self.context.to_string()
    }
}

/// All failure events of one attestation, in the order they were raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub events: Vec<FailureEvent>,
}

impl Failure {
    /// Whether every event is recoverable (polling may go on if severity allows).
    pub fn recoverable(&self) -> bool {
        self.events.iter().all(|e| e.recoverable)
    }

    /// The first event with the highest severity level (upstream's `highest_severity_event`,
    /// which status reports as `last_event_id` / `severity_level`).
    pub fn highest_severity_event(&self) -> Option<&FailureEvent> {
        self.events.iter().fold(None, |best, e| match best {
            Some(b) if b.severity_level >= e.severity_level => Some(b),
            _ => Some(e),
        })
    }

    /// The event ids, in order.
    pub fn event_ids(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.event_id.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Why a severity configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SeverityConfigError {
    #[error("severity_labels is empty")]
    NoLabels,
    #[error("severity_labels lists {0:?} twice")]
    DuplicateLabel(String),
    #[error("severity_policy rule {index}: event_id regex {pattern:?} does not compile: {source}")]
    BadRegex {
        index: usize,
        pattern: String,
        source: regex::Error,
    },
}

/// One `severity_policy` entry as configured: `{"event_id": regex, "severity_label": label}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityRule {
    pub event_id: String,
    pub severity_label: String,
}

/// Compiled `severity_labels` + `severity_policy`.
#[derive(Debug, Clone)]
pub struct SeverityPolicy {
    labels: Vec<String>,
    rules: Vec<(Regex, String)>,
}

/// Upstream's default labels, least severe first.
pub const DEFAULT_SEVERITY_LABELS: [&str; 7] = [
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

impl Default for SeverityPolicy {
    /// Upstream's default: every event is `emergency`.
    fn default() -> Self {
        let labels: Vec<String> = DEFAULT_SEVERITY_LABELS.map(String::from).to_vec();
        SeverityPolicy::new(labels, &[]).unwrap_or_else(|_| unreachable!("default labels"))
    }
}

impl SeverityPolicy {
    /// Compile a configuration. Empty `rules` means upstream's default (everything gets the
    /// highest label). A rule naming an unknown label yields the highest label when it
    /// matches, as upstream does.
    pub fn new(labels: Vec<String>, rules: &[SeverityRule]) -> Result<Self, SeverityConfigError> {
        if labels.is_empty() {
            return Err(SeverityConfigError::NoLabels);
        }
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].contains(l) {
                return Err(SeverityConfigError::DuplicateLabel(l.clone()));
            }
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, r)| {
                // Python's re.fullmatch: the whole id must match.
                Regex::new(&format!("^(?:{})$", r.event_id))
                    .map(|re| (re, r.severity_label.clone()))
                    .map_err(|source| SeverityConfigError::BadRegex {
                        index,
                        pattern: r.event_id.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(SeverityPolicy { labels, rules })
    }

    fn max_level(&self) -> u32 {
        (self.labels.len() - 1) as u32
    }

    /// The (label, level) for an event id.
    pub fn classify(&self, event_id: &str) -> (&str, u32) {
        let max = self.max_level();
        for (re, label) in &self.rules {
            if re.is_match(event_id) {
                return match self.labels.iter().position(|l| l == label) {
                    Some(i) => (self.labels[i].as_str(), i as u32),
                    None => (self.labels[max as usize].as_str(), max),
                };
            }
        }
        (self.labels[max as usize].as_str(), max)
    }

    /// Build an event: classify it, and raise irrecoverable events to the highest label.
    pub fn event(
        &self,
        component: Component,
        name: &str,
        context: Value,
        recoverable: bool,
    ) -> FailureEvent {
        let event_id = format!("{}.{name}", component.id());
        let (label, level) = if recoverable {
            self.classify(&event_id)
        } else {
            let max = self.max_level();
            (self.labels[max as usize].as_str(), max)
        };
        FailureEvent {
            severity_label: label.to_string(),
            severity_level: level,
            event_id,
            context,
            recoverable,
        }
    }
}

/// Upstream turns a plain-string context into `{"message": s}`.
pub fn message(text: impl Into<String>) -> Value {
    serde_json::json!({ "message": text.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> SeverityPolicy {
        SeverityPolicy::new(
            DEFAULT_SEVERITY_LABELS.map(String::from).to_vec(),
            &[
                SeverityRule {
                    event_id: "pcr_validation\\.invalid_pcr_1\\d".into(),
                    severity_label: "warning".into(),
                },
                SeverityRule {
                    event_id: "pcr_validation\\..*".into(),
                    severity_label: "error".into(),
                },
                SeverityRule {
                    event_id: "ima\\..*".into(),
                    severity_label: "no-such-label".into(),
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn first_full_match_wins() {
        let p = policy();
        assert_eq!(p.classify("pcr_validation.invalid_pcr_14"), ("warning", 2));
        // Not a full match of rule 1 (prefix only), so rule 2 applies.
        assert_eq!(p.classify("pcr_validation.invalid_pcr_140"), ("error", 3));
        assert_eq!(p.classify("pcr_validation.invalid_pcr_7"), ("error", 3));
        assert_eq!(p.classify("ima.pcr_mismatch"), ("emergency", 6));
        assert_eq!(
            p.classify("qoute_validation.quote_validation"),
            ("emergency", 6)
        );
        assert_eq!(
            SeverityPolicy::default().classify("pcr_validation.invalid_pcr_1"),
            ("emergency", 6)
        );
    }

    #[test]
    fn irrecoverable_events_get_the_highest_label() {
        let p = policy();
        let e = p.event(Component::PcrValidation, "invalid_pcr_14", json!({}), false);
        assert_eq!(
            (e.severity_label.as_str(), e.severity_level),
            ("emergency", 6)
        );
        let e = p.event(Component::PcrValidation, "invalid_pcr_14", json!({}), true);
        assert_eq!(e.event_id, "pcr_validation.invalid_pcr_14");
        assert_eq!(
            (e.severity_label.as_str(), e.severity_level),
            ("warning", 2)
        );
    }

    #[test]
    fn highest_severity_event_is_the_first_of_the_highest() {
        let p = policy();
        let f = Failure {
            events: vec![
                p.event(Component::PcrValidation, "invalid_pcr_12", json!(1), true),
                p.event(Component::PcrValidation, "invalid_pcr_3", json!(2), true),
                p.event(Component::PcrValidation, "missing_pcrs", json!(3), true),
            ],
        };
        let top = f.highest_severity_event().unwrap();
        assert_eq!(top.event_id, "pcr_validation.invalid_pcr_3");
        assert!(f.recoverable());
        assert!(Failure::default().highest_severity_event().is_none());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(matches!(
            SeverityPolicy::new(vec![], &[]),
            Err(SeverityConfigError::NoLabels)
        ));
        assert!(matches!(
            SeverityPolicy::new(vec!["a".into(), "a".into()], &[]),
            Err(SeverityConfigError::DuplicateLabel(_))
        ));
        let bad = SeverityRule {
            event_id: "(".into(),
            severity_label: "a".into(),
        };
        assert!(matches!(
            SeverityPolicy::new(vec!["a".into()], &[bad]),
            Err(SeverityConfigError::BadRegex { index: 0, .. })
        ));
    }
}
