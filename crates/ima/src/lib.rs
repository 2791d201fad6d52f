//! keylime-ima (under construction).
