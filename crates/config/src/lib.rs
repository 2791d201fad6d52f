//! keylime-config (under construction).
