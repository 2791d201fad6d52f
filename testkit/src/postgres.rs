//! A private PostgreSQL server for one test: its own data directory and port, owned by the
//! `postgres` system user, so a test can stop and restart the database under running
//! services without touching the machine's shared server (127.0.0.1:5432, which other
//! tests use at the same time).
//!
//! Needs root (the server refuses to run as root, so it runs as `postgres` through
//! `runuser`) and Debian's PostgreSQL server package. Every failure panics with the
//! command's output: a test that needs this must fail loudly where it cannot run.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server; stopped (immediately) on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Creates a cluster (trust authentication, user `postgres`) and starts it on a
    /// reserved loopback port.
    pub fn start() -> PrivatePostgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("keylime-pg-")
            .tempdir()
            .expect("temporary directory");
        let owner = std::fs::metadata("/var/lib/postgresql")
            .expect("/var/lib/postgresql (Debian package postgresql)");
        std::os::unix::fs::chown(dir.path(), Some(owner.uid()), Some(owner.gid()))
            .expect("chown of the private cluster's directory (needs root)");
        let pg = PrivatePostgres {
            dir,
            bin,
            port: crate::ports::reserve(),
        };
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.start_again();
        pg
    }

    /// Creates database `name` (owned by `postgres`).
    pub fn create_database(&self, name: &str) {
        self.as_postgres(
            "createdb",
            &["-h", "127.0.0.1", "-p", &self.port.to_string(), name],
        );
    }

    /// `postgresql://` URL of database `name` as the `postgres` user.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Starts the stopped server again on the same port and data; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-o",
                &options,
                "-l",
                &self.dir.path().join("server.log").display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server: `fast` closes every connection and shuts down cleanly,
    /// `immediate` as after a crash.
    pub fn stop(&self, mode: &str) {
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {tool} through runuser: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed ({}):\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data().display().to_string(), "-m", "immediate"])
            .args(["-w", "stop"])
            .output();
    }
}

/// `/usr/lib/postgresql/<newest>/bin`, where Debian puts `initdb` and `pg_ctl`.
fn server_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e} (Debian package postgresql)", root.display()))
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no initdb under {}", root.display()))
}
