//! Why a measured-boot policy rejected a log ([`Violation`]): what the `example` policy's
//! rules return and `check` turns into failure events.

/// Why a policy rejected a log: upstream's free-text reason, the event it stopped at and
/// the reference-state entry that did not match, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub reason: String,
    pub event: Option<usize>,
    pub component: Option<String>,
}

impl Violation {
    pub fn new(reason: impl Into<String>) -> Self {
        Violation {
            reason: reason.into(),
            event: None,
            component: None,
        }
    }

    pub fn at_event(mut self, event: usize) -> Self {
        self.event = Some(event);
        self
    }

    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }
}
