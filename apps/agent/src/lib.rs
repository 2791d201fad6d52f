//! keylime-agent service library (under construction).
