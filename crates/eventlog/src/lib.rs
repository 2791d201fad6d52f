//! keylime-eventlog (under construction).
