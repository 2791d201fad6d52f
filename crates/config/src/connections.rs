//! Connection-limit options shared by `[verifier]` and `[registrar]`. Upstream has none
//! (its Tornado servers have no caps), so the names are ours; each listener of the service
//! applies them on its own.

use crate::error::ConfigError;
use crate::reader::OptionReader;

/// Per-listener connection limits.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionConfig {
    /// `max_connections`: connections held at once per listener (lowered at start to fit
    /// the open-files limit).
    pub max_connections: usize,
    /// `max_connections_per_ip`: per client address; 0 = no per-address cap.
    pub max_connections_per_ip: usize,
    /// `tls_handshake_timeout` in seconds.
    pub tls_handshake_timeout: f64,
    /// `first_byte_timeout` in seconds: from accepting (and the handshake) to the first
    /// request byte.
    pub first_byte_timeout: f64,
    /// `header_read_timeout` in seconds: from a request's first byte to its last header.
    pub header_read_timeout: f64,
    /// `idle_connection_timeout` in seconds: a kept-alive connection's wait for its next
    /// request.
    pub idle_connection_timeout: f64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_connections: 1024,
            max_connections_per_ip: 128,
            tls_handshake_timeout: 10.0,
            first_byte_timeout: 10.0,
            header_read_timeout: 20.0,
            idle_connection_timeout: 60.0,
        }
    }
}

impl ConnectionConfig {
    pub(crate) fn read(r: &OptionReader<'_>, section: &str) -> Result<Self, ConfigError> {
        let d = ConnectionConfig::default();
        let positive = |option: &str, default: f64| -> Result<f64, ConfigError> {
            r.parsed(
                section,
                option,
                default,
                |raw| match crate::values::parse_seconds(raw)? {
                    v if v > 0.0 => Ok(v),
                    _ => Err(format!(
                        "expected a positive number of seconds, found {raw:?}"
                    )),
                },
            )
        };
        Ok(ConnectionConfig {
            max_connections: r.parsed(section, "max_connections", d.max_connections, |raw| {
                match crate::values::parse_int::<usize>(raw)? {
                    0 => Err("expected at least 1 connection, found 0".into()),
                    n => Ok(n),
                }
            })?,
            max_connections_per_ip: r.int(
                section,
                "max_connections_per_ip",
                d.max_connections_per_ip,
            )?,
            tls_handshake_timeout: positive("tls_handshake_timeout", d.tls_handshake_timeout)?,
            first_byte_timeout: positive("first_byte_timeout", d.first_byte_timeout)?,
            header_read_timeout: positive("header_read_timeout", d.header_read_timeout)?,
            idle_connection_timeout: positive(
                "idle_connection_timeout",
                d.idle_connection_timeout,
            )?,
        })
    }
}
