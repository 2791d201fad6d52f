//! IMA failure events with upstream's ids (without the `ima.` prefix) and context shapes
//! (`keylime/ima/ima.py`, `keylime/ima/ast.py`), collected with a per-id cap so a hostile
//! list cannot produce unbounded output.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Events kept per id; further ones are only counted ([`crate::ImaVerdict::suppressed`]).
pub const MAX_EVENTS_PER_ID: u32 = 1000;

/// Longest excerpt of a list line quoted in a context.
const MAX_QUOTED_LINE: usize = 1024;

/// Upstream's event ids this check raises, without the `ima.` component prefix.
///
/// An `ima-sig` entry whose signature does not verify falls back to the digests and fails
/// with the `validation.ima-ng` ids, as upstream's does whenever a runtime policy is given
/// (its `validator.ima-sig.invalid_signature` only occurs without one).
pub mod ids {
    pub const PARSER_ENTRY: &str = "parser.entry";
    pub const IMA_HASH: &str = "validation.ima_hash";
    pub const IMA_PCR: &str = "validation.ima_pcr";
    pub const TOMTOU: &str = "validation.tomtou";
    pub const NOT_IN_ALLOWLIST: &str = "validation.ima-ng.not_in_allowlist";
    pub const RUNTIME_POLICY_HASH: &str = "validation.ima-ng.runtime_policy_hash";
    pub const INVALID_KEY: &str = "invalid_key";
    pub const PCR_MISMATCH: &str = "pcr_mismatch";
    pub const QUOTE_PROGRESS: &str = "quote_progress";
}

/// One failure event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImaFailure {
    /// Event id without the `ima.` prefix, e.g. `validation.ima-ng.not_in_allowlist`.
    pub id: String,
    /// Upstream's context: `{"message": …}` or a structured object.
    pub context: Value,
    /// Upstream raises every IMA event as recoverable.
    pub recoverable: bool,
}

impl ImaFailure {
    /// The full event id (`ima.` + [`id`](Self::id)).
    pub fn event_id(&self) -> String {
        format!("ima.{}", self.id)
    }

    /// The `message` of the context, if it has one.
    pub fn message(&self) -> Option<&str> {
        self.context.get("message").and_then(Value::as_str)
    }
}

/// Collects events in order, keeping at most [`MAX_EVENTS_PER_ID`] per id.
#[derive(Debug, Default)]
pub(crate) struct FailureSink {
    pub(crate) list: Vec<ImaFailure>,
    counts: Vec<(&'static str, u32)>,
    pub(crate) suppressed: u64,
}

impl FailureSink {
    /// Records an event; the context is only built when the event is kept.
    pub(crate) fn push(&mut self, id: &'static str, context: impl FnOnce() -> Value) {
        let n = match self.counts.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => n,
            None => {
                self.counts.push((id, 0));
                &mut self.counts.last_mut().expect("just pushed").1
            }
        };
        if *n >= MAX_EVENTS_PER_ID {
            self.suppressed += 1;
            return;
        }
        *n += 1;
        self.list.push(ImaFailure {
            id: id.to_owned(),
            context: context(),
            recoverable: true,
        });
    }

    /// Moves `other`'s events after these (caps are per sink).
    pub(crate) fn append(&mut self, other: FailureSink) {
        self.list.extend(other.list);
        self.suppressed += other.suppressed;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty() && self.suppressed == 0
    }
}

pub(crate) fn message(text: String) -> Value {
    json!({ "message": text })
}

/// `text` cut to [`MAX_QUOTED_LINE`] bytes on a char boundary.
pub(crate) fn quoted_line(text: &str) -> String {
    if text.len() <= MAX_QUOTED_LINE {
        return text.to_owned();
    }
    let mut end = MAX_QUOTED_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_id_and_counts_the_rest() {
        let mut s = FailureSink::default();
        assert!(s.is_empty());
        for _ in 0..MAX_EVENTS_PER_ID + 5 {
            s.push(ids::PARSER_ENTRY, || message("x".into()));
        }
        s.push(ids::PCR_MISMATCH, || message("y".into()));
        assert_eq!(s.list.len(), MAX_EVENTS_PER_ID as usize + 1);
        assert_eq!(s.suppressed, 5);
        assert_eq!(s.list.last().unwrap().event_id(), "ima.pcr_mismatch");
        let long = "é".repeat(2000);
        let q = quoted_line(&long);
        assert!(q.len() < 1100 && q.ends_with("(4000 bytes)"), "{q}");
    }
}
