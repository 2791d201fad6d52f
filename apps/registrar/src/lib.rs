//! keylime-registrar service library (under construction).
