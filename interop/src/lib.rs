//! Interoperability tests against upstream Keylime 7.14.3.
