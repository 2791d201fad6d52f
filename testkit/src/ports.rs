//! Loopback ports for tests that hand a port number to another process, or to a service
//! that binds it later. Binding port 0 and closing the socket is not enough: between the
//! probe and the child's bind, any other test running in parallel may take the same port.
//!
//! A reservation here is
//! - drawn from outside the kernel's ephemeral range (`ip_local_port_range`), so no port-0
//!   bind and no outgoing connection on the machine is ever given it, and away from the
//!   ports of services this kind of machine runs ([`AVOIDED`]);
//! - an exclusive `flock` on `<temp dir>/keylime-test-ports/<port>.lock`, held until the
//!   test process exits (the kernel drops it even when the process is killed), so no other
//!   test process, nor this one, is handed the port while it is held;
//! - a bind probe, so a port something else listens on now is skipped.
//!
//! What is left is a program outside the tests binding one of these ports explicitly between
//! the probe and the child's bind. The child then dies with "Address already in use";
//! [`is_addr_in_use`] recognises that, and the harness starts the service again on new
//! ports ([`Clashes`] bounds how often; [`relocate`] moves a port in configuration files).

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Lowest port handed out: below are the well-known and registered ports of most services.
const FLOOR: u16 = 20_000;

/// Ports of services found on development and CI machines, plus Keylime's own defaults;
/// never handed out even when they lie in the pool.
pub const AVOIDED: &[u16] = &[
    1883, 3306, 4222, 4369, 5432, 5672, 6379, 8881, 8890, 8891, 8892, 9002, 11211, 15672, 25672,
    27017, 27018, 27019,
];

/// The kernel's default ephemeral range, used when `/proc` cannot be read.
const DEFAULT_EPHEMERAL: (u16, u16) = (32_768, 60_999);

/// How many starts of one service may fail on a taken port before a harness gives up.
pub const START_ATTEMPTS: usize = 5;

/// Reservations of this process: the lock files stay open (and locked) until it exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Reserves one loopback port for the rest of the test process. Panics if the whole pool is
/// taken (it holds about 17,000 ports).
pub fn reserve() -> u16 {
    reserve_run(1)
}

/// A loopback port nothing listens on, for tests of unreachable peers: reserved (so no
/// other test binds it) and never bound by this one.
pub fn closed() -> u16 {
    reserve()
}

/// Reserves two consecutive ports `p` and `p + 1` and returns `p` (swtpm's TCTI expects the
/// control channel on the data port plus one).
pub fn reserve_pair() -> u16 {
    reserve_run(2)
}

fn reserve_run(len: u16) -> u16 {
    static POOL: OnceLock<Vec<u16>> = OnceLock::new();
    let pool = POOL.get_or_init(pool);
    let start = RandomState::new().hash_one(std::process::id()) as usize % pool.len();
    for i in 0..pool.len() {
        let first = pool[(start + i) % pool.len()];
        let ports: Vec<u16> = (0..len).filter_map(|k| first.checked_add(k)).collect();
        if ports.len() != usize::from(len) || !ports.iter().all(|p| pool.binary_search(p).is_ok()) {
            continue;
        }
        let mut locks = Vec::new();
        for &port in &ports {
            match try_reserve(port) {
                Some(lock) => locks.push(lock),
                None => break,
            }
        }
        if locks.len() == ports.len() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).extend(locks);
            return first;
        }
    }
    panic!(
        "no {len} free consecutive test port(s) left in the pool ({} ports outside the \
         ephemeral range, locks in {})",
        pool.len(),
        lock_dir().display()
    );
}

/// Locks `port` for this process if no test process holds it and nothing listens on it;
/// the reservation lasts as long as the returned file is open.
pub fn try_reserve(port: u16) -> Option<File> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("creating the port lock directory {}: {e}", dir.display()));
    let path = dir.join(format!("{port}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening the port lock {}: {e}", path.display()));
    // An flock belongs to the open file description: a second open of the same file, even
    // in this process, does not get it while the first is held.
    file.try_lock().ok()?;
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    Some(file)
}

/// Where the lock files live: one directory per machine, shared by every test process.
pub fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("keylime-test-ports")
}

/// The ports reservations are drawn from, sorted: `FLOOR..=65535` minus the ephemeral range
/// minus [`AVOIDED`].
pub fn pool() -> Vec<u16> {
    let (lo, hi) = ephemeral_range();
    (FLOOR..=u16::MAX)
        .filter(|p| !(lo..=hi).contains(p) && !AVOIDED.contains(p))
        .collect()
}

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or(DEFAULT_EPHEMERAL)
}

/// Whether a process's output (or an error's text) says a bind found its port taken.
pub fn is_addr_in_use(text: &str) -> bool {
    [
        "Address already in use",
        "EADDRINUSE",
        "os error 98",
        "Errno 98",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// A service that did not start because one of its ports was taken; holds what it printed.
#[derive(Debug)]
pub struct PortClash(pub String);

/// What a starting service's `output` and exit status (`None`: still running) say: `Err`
/// when it could not bind a port, whether it exited or kept running without the listener;
/// a panic naming `name` with its output when it exited for any other reason.
pub fn check_starting(
    name: &str,
    output: &str,
    exited: Option<std::process::ExitStatus>,
) -> Result<(), PortClash> {
    if is_addr_in_use(output) {
        return Err(PortClash(output.to_string()));
    }
    if let Some(status) = exited {
        panic!("{name} exited early with {status}; its output:\n{output}");
    }
    Ok(())
}

/// The starts of one service that failed on a taken port. A harness starts the service
/// again on new ports after each, until [`START_ATTEMPTS`] starts have failed:
///
/// ```ignore
/// let mut clashes = Clashes::new("the registrar");
/// let service = loop {
///     match try_start(&config).await {
///         Ok(service) => break service,
///         Err(clash) => clashes.record(clash),
///     }
///     move_ports(&mut config);
/// };
/// ```
#[derive(Debug)]
pub struct Clashes {
    what: String,
    count: usize,
}

impl Clashes {
    /// No clash yet for the service named `what`.
    pub fn new(what: impl Into<String>) -> Clashes {
        Clashes {
            what: what.into(),
            count: 0,
        }
    }

    /// Records a failed start; panics with its output once [`START_ATTEMPTS`] have failed.
    pub fn record(&mut self, PortClash(output): PortClash) {
        self.count += 1;
        assert!(
            self.count < START_ATTEMPTS,
            "{}: a port was taken on each of {START_ATTEMPTS} starts; last output:\n{output}",
            self.what
        );
        eprintln!(
            "{}: a port was taken (start {}), starting again on new ports",
            self.what, self.count
        );
    }

    /// How many starts failed so far.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Replaces port `old` by `new` in configuration files: every line `key = old` (INI or
/// TOML, the value optionally quoted) becomes `key = new`. Other lines are kept as written,
/// so changes a test made to the files survive.
pub fn relocate(files: &[&Path], old: u16, new: u16) {
    let old_text = old.to_string();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let moved: Vec<String> = text
            .split('\n')
            .map(|line| match line.split_once('=') {
                Some((key, value)) if value.trim().trim_matches('"') == old_text => {
                    format!(
                        "{key}= {}",
                        value.trim().replace(&old_text, &new.to_string())
                    )
                }
                _ => line.to_string(),
            })
            .collect();
        std::fs::write(file, moved.join("\n"))
            .unwrap_or_else(|e| panic!("rewriting {}: {e}", file.display()));
    }
}

#[cfg(test)]
mod tests;
