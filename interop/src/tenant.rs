//! Running the tenants. Upstream's `keylime_tenant` prints its results through Python
//! logging (`logging.conf` sends them to stdout as `time - logger - LEVEL - message`), some
//! messages spanning several lines (`Agent Info from …:` then a JSON document); [`TenantRun`]
//! splits that output back into log records. Ours prints the same messages without the
//! logging prefix, or one document with `--json`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::config_files::ConfigSet;
use crate::process::scrub_env;
use crate::services::Implementation;

/// Longest a single tenant command may run (`add --verify` retries for a while).
pub const TENANT_TIMEOUT: Duration = Duration::from_secs(180);

/// One log record the upstream tenant printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Logger name, e.g. `keylime.tenant`.
    pub logger: String,
    /// `INFO`, `WARNING`, `ERROR`, …
    pub level: String,
    /// The message, continuation lines included (joined with `\n`).
    pub message: String,
}

/// What one upstream tenant command did.
#[derive(Debug, Clone)]
pub struct TenantRun {
    /// The arguments after the program name.
    pub args: Vec<String>,
    /// Exit status code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl TenantRun {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Everything it printed, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "$ keylime_tenant {}\n(exit {:?})\n--- stdout\n{}--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// The log records on stdout, in order. A line that does not start a record continues
    /// the previous one when that ends with `:` (a multi-line message such as `Agent Info
    /// from …:` and its document, printed with or without the log prefix); any other such
    /// line (bare `print` output, or our tenant's lines) is a record of logger `print`.
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        for line in self.stdout.lines() {
            match parse_record_start(line) {
                Some(r) => out.push(r),
                None => match out.last_mut() {
                    Some(last) if last.message.trim_end().ends_with(':') => {
                        last.message.push('\n');
                        last.message.push_str(line);
                    }
                    _ => out.push(Record {
                        logger: "print".into(),
                        level: "PRINT".into(),
                        message: line.to_string(),
                    }),
                },
            }
        }
        out
    }

    /// Messages of the `keylime.tenant` logger at `level`.
    pub fn tenant_messages(&self, level: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.logger == "keylime.tenant" && r.level == level)
            .map(|r| r.message)
            .collect()
    }

    /// Whether some `keylime.tenant` INFO message contains `needle`.
    pub fn says(&self, needle: &str) -> bool {
        self.tenant_messages("INFO")
            .iter()
            .any(|m| m.contains(needle))
    }

    /// Panics with the whole output unless some INFO message contains `needle`.
    pub fn assert_says(&self, needle: &str) {
        assert!(
            self.says(needle),
            "the tenant did not print {needle:?}:\n{}",
            self.output()
        );
    }

    /// The JSON document printed after `<prefix> …:` (e.g. `Agent Info from Verifier`).
    pub fn json_after(&self, prefix: &str) -> Option<Value> {
        self.tenant_messages("INFO").iter().find_map(|m| {
            if !m.starts_with(prefix) {
                return None;
            }
            let (_, body) = m.split_once('\n')?;
            serde_json::from_str(body.trim()).ok()
        })
    }

    /// The agent's verifier status from `Agent Info from Verifier (…):` output.
    pub fn verifier_status(&self, agent_id: &str) -> Option<Value> {
        self.json_after("Agent Info from Verifier")?
            .get(agent_id)
            .cloned()
    }
}

/// `2026-11-28 15:34:19.418 - keylime.tenant - INFO - message`.
fn parse_record_start(line: &str) -> Option<Record> {
    let mut parts = line.splitn(4, " - ");
    let time = parts.next()?;
    let logger = parts.next()?;
    let level = parts.next()?;
    let message = parts.next().unwrap_or("");
    let looks_like_time = time.len() == 23
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b' '
        && time.as_bytes()[19] == b'.';
    let known_level = matches!(level, "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL");
    (looks_like_time && known_level).then(|| Record {
        logger: logger.to_string(),
        level: level.to_string(),
        message: message.to_string(),
    })
}

/// Runs the `keylime_tenant` of `which` with the deployment's configuration.
pub async fn run_tenant(which: Implementation, config: &ConfigSet, args: &[&str]) -> TenantRun {
    let program = which.program("tenant");
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args)
        .current_dir(&config.dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    scrub_env(cmd.as_std_mut());
    cmd.env("PYTHONUNBUFFERED", "1");
    for (k, v) in config.env() {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(TENANT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!("{which} tenant {args:?} still running after {TENANT_TIMEOUT:?}")
        })
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    TenantRun {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs upstream's `keylime_tenant` with the deployment's configuration.
pub async fn upstream_tenant(config: &ConfigSet, args: &[&str]) -> TenantRun {
    run_tenant(Implementation::Upstream, config, args).await
}

/// Runs our `keylime_tenant … --json`: exit success and its one JSON document.
pub async fn our_tenant(config: &ConfigSet, args: &[&str]) -> (bool, Value) {
    let args = [args, &["--json"]].concat();
    let run = run_tenant(Implementation::Ours, config, &args).await;
    let doc = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "our tenant {args:?} printed no JSON document ({e}):\n{}",
            run.output()
        )
    });
    (run.success(), doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stdout: &str) -> TenantRun {
        TenantRun {
            args: vec![],
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn multi_line_messages_are_one_record() {
        let r = run(
            "2026-11-28 15:34:20.615 - keylime.tenant - INFO - Agent Info from Verifier (127.0.0.1:1):\n\
             {\"a\": {\"operational_state\": \"Start\"}}\n\
             2026-11-28 15:34:20.616 - keylime.tenant - INFO - done\n",
        );
        let recs = r.records();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            r.verifier_status("a").unwrap()["operational_state"],
            "Start"
        );
        assert!(r.says("done"));
        assert!(!r.says("absent"));
    }

    #[test]
    fn print_output_after_a_record_is_its_own_record() {
        // Upstream: a one-line record, then `print` output. Ours: the same messages without
        // the prefix, a multi-line one among them.
        let r = run(
            "2026-11-28 15:34:20.615 - keylime.ca-util - INFO - Creating cert package\n\
             {'code': 200}\n",
        );
        let recs = r.records();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[1].message, "{'code': 200}");
        let ours = run("Agent Info from Verifier (x):\n{\"a\": {}}\nAgent a re-activated\n");
        let recs = ours.records();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(
            recs[0].message,
            "Agent Info from Verifier (x):\n{\"a\": {}}"
        );
    }

    #[test]
    fn print_output_before_logging_is_kept() {
        let r = run("{'code': 200}\n2026-11-28 15:34:20.615 - keylime.tpm - ERROR - x - y\n");
        let recs = r.records();
        assert_eq!(recs[0].logger, "print");
        assert_eq!(recs[1].message, "x - y");
        assert_eq!(recs[1].level, "ERROR");
    }

    #[test]
    fn malformed_lines_do_not_panic() {
        for s in [
            "",
            " - - - ",
            "2026 - a - INFO - b",
            "\u{0}\u{ff} - x",
            "é - é - INFO - é",
        ] {
            let _ = run(s).records();
        }
    }
}
