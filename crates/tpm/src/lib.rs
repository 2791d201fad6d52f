//! keylime-tpm (under construction).
