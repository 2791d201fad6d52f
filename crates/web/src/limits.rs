//! Connection limits of one listener: how many connections it holds (in all and per client
//! address), how long a connection may stay silent at each stage, and fitting the cap to
//! the process's file-descriptor limit so the cap, not `EMFILE`, is what stops a flood.

use std::time::Duration;

/// File descriptors left for everything but accepted connections (database, outgoing
/// requests, log files, the listeners themselves).
pub const RESERVED_FDS: usize = 64;

/// Smallest cap [`ConnectionLimits::within_fd_limit`] leaves a listener.
const MIN_CONNECTIONS: usize = 8;

/// Limits of one listener. Services read them from their configuration; the defaults
/// suit a service answering a few thousand agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections held at once. At the cap the oldest connection with no request in
    /// progress is closed to make room; when every connection is busy, new ones wait in
    /// the kernel's backlog until one ends.
    pub max_connections: usize,
    /// Connections held at once from one client address; 0 = no per-address cap. Beyond
    /// it that address's oldest idle connection is closed, or the new one when none is idle.
    pub max_connections_per_ip: usize,
    /// Time to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time from accepting a connection (after its handshake) to the first byte of a request.
    pub first_byte_timeout: Duration,
    /// Time from the first byte of a request to the end of its headers.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_connections_per_ip: 128,
            tls_handshake_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ConnectionLimits {
    /// The limits a service's configuration asks for (`[verifier]`, `[registrar]`).
    pub fn from_config(cfg: &keylime_config::ConnectionConfig) -> Self {
        // The reader refuses negative, zero and non-finite durations; a year is "never".
        let year = Duration::from_secs(365 * 24 * 3600);
        let secs = |v: f64| Duration::try_from_secs_f64(v).map_or(year, |d| d.min(year));
        ConnectionLimits {
            max_connections: cfg.max_connections.max(1),
            max_connections_per_ip: cfg.max_connections_per_ip,
            tls_handshake_timeout: secs(cfg.tls_handshake_timeout),
            first_byte_timeout: secs(cfg.first_byte_timeout),
            header_read_timeout: secs(cfg.header_read_timeout),
            idle_timeout: secs(cfg.idle_connection_timeout),
        }
    }

    /// These limits with `max_connections` lowered, if needed, so that `listeners` listeners
    /// of this process at their caps still leave [`RESERVED_FDS`] descriptors free under
    /// the soft `RLIMIT_NOFILE` (read from `/proc/self/limits`; unchanged when unknown).
    pub fn within_fd_limit(mut self, listeners: usize) -> Self {
        if let Some(soft) = open_files_soft_limit() {
            let share = fd_share(soft, listeners);
            if share < self.max_connections {
                tracing::info!(
                    configured = self.max_connections,
                    max_connections = share,
                    open_files_limit = soft,
                    listeners,
                    "connection cap lowered to fit the open-files limit"
                );
                self.max_connections = share;
            }
        }
        self
    }
}

/// Connections one of `listeners` listeners may hold under a soft limit of `soft` files.
fn fd_share(soft: u64, listeners: usize) -> usize {
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft.saturating_sub(RESERVED_FDS) / listeners.max(1)).max(MIN_CONNECTIONS)
}

/// The soft `Max open files` limit of this process; `None` when unlimited or unreadable.
pub fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&limits)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_line_is_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            256                  4096                 files     \n";
        assert_eq!(parse_open_files(limits), Some(256));
        assert_eq!(
            parse_open_files("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(parse_open_files("nothing here"), None);
    }

    #[test]
    fn share_leaves_the_reserve_and_has_a_floor() {
        assert_eq!(fd_share(256, 2), (256 - RESERVED_FDS) / 2);
        assert_eq!(fd_share(256, 1), 256 - RESERVED_FDS);
        assert_eq!(fd_share(32, 1), MIN_CONNECTIONS);
        assert_eq!(fd_share(1 << 20, 0), (1 << 20) - RESERVED_FDS);
    }

    #[test]
    fn configuration_defaults_are_the_defaults() {
        let cfg = keylime_config::ConnectionConfig::default();
        assert_eq!(
            ConnectionLimits::from_config(&cfg),
            ConnectionLimits::default()
        );
    }

    #[test]
    fn this_process_has_a_readable_limit() {
        // Linux always lists it; the test suite never runs unlimited.
        assert!(open_files_soft_limit().is_some_and(|n| n > 0));
    }
}
