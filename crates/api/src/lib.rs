//! keylime-api (under construction).
