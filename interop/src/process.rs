//! A service process in its own process group, its output in a log file, the whole group
//! ended when dropped. Upstream's verifier and registrar fork worker processes; ending only
//! the parent would leave the workers holding the ports.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use keylime_testkit::ports::PortClash;

/// A running service (and the processes it forked).
#[derive(Debug)]
pub struct GroupProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl GroupProcess {
    /// Starts `program` in a new process group, with `env` added to an environment cleared of
    /// `KEYLIME_*`, `TCTI` and the Python variables that would change upstream's behaviour.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> GroupProcess {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("creating log file");
        let err = out.try_clone().expect("cloning log file handle");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        scrub_env(&mut cmd);
        cmd.env("RUST_LOG", "info").env("PYTHONUNBUFFERED", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        GroupProcess {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The service's name (also its log file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its output, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether the group leader has exited, with its status.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `Err` with its output when the service could not bind a port (whether it exited or
    /// kept running without that listener); panics with its output if it exited for any
    /// other reason.
    pub fn check_starting(&mut self) -> Result<(), PortClash> {
        let exited = self.exited();
        keylime_testkit::ports::check_starting(&self.name, &self.output(), exited)
    }

    /// Panics with the log if the service has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited with {status}; its output:\n{}",
                self.name,
                self.output_tail(80)
            );
        }
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; reaps the leader.
    pub fn stop(&mut self, grace: Duration) {
        let pgid = self.child.id();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() && !group_alive(pgid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(pgid, "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for GroupProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// Removes the variables a test's own environment could leak into a service.
pub fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("KEYLIME")
            || k == "TCTI"
            || k == "TPM2TOOLS_TCTI"
            || k.starts_with("PYTHON")
            || k == "VIRTUAL_ENV"
        {
            cmd.env_remove(k);
        }
    }
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of the group is still alive (`kill -0` on the group).
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .arg("-0")
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
