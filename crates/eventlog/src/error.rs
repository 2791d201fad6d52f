//! Errors of the event-log parser: every variant names where (byte offset) and what was wrong.

use thiserror::Error;

/// Why an event log could not be parsed. Offsets are byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventLogError {
    #[error("event log is empty")]
    Empty,
    #[error(
        "event log truncated at offset {offset}: {what} needs {needed} bytes, {available} left"
    )]
    Truncated {
        offset: usize,
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error(
        "event {event} at offset {offset}: event size {size} exceeds the {available} bytes left"
    )]
    EventTooLarge {
        event: usize,
        offset: usize,
        size: u64,
        available: usize,
    },
    #[error(
        "event {event} at offset {offset}: {count} digests but the Spec ID event lists {max} algorithms"
    )]
    DigestCount {
        event: usize,
        offset: usize,
        count: u32,
        max: usize,
    },
    #[error(
        "event {event} at offset {offset}: digest algorithm {alg:#06x} is not in the Spec ID event's table"
    )]
    UnknownAlgorithm {
        event: usize,
        offset: usize,
        alg: u16,
    },
    #[error("Spec ID event at offset {offset}: {reason}")]
    BadSpecId { offset: usize, reason: String },
    #[error("first event at offset 0 is not a valid log header: {reason}")]
    BadHeader { reason: String },
}

/// Why the data of one event could not be decoded (the log itself still parsed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventDataError {
    #[error(
        "{what} truncated at offset {offset} of the event data: needs {needed} bytes, {available} left"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: u64,
        available: usize,
    },
    #[error("{what} at offset {offset} of the event data is malformed: {reason}")]
    Malformed {
        what: &'static str,
        offset: usize,
        reason: String,
    },
}
