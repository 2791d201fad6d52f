//! keylime-pki (under construction).
