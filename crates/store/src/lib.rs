//! keylime-store (under construction).
