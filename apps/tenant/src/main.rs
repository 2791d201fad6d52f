//! `keylime_tenant`: parses upstream's options, builds a [`keylime_tenant::Tenant`] from
//! `tenant.conf` plus the overrides, runs one command and prints its result (upstream's
//! lines, or one JSON document with `--json`). Exit status: 0 success, 1 failure, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use keylime_api::version::ApiVersion;
use keylime_tenant::report::{self, Rendered};
use keylime_tenant::{AddRequest, PayloadSource, Tenant, TenantError, TenantSettings};

const DEFAULT_AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
const COMMANDS: [&str; 11] = [
    "add",
    "delete",
    "update",
    "status",
    "cvstatus",
    "regstatus",
    "cvlist",
    "reglist",
    "reactivate",
    "regdelete",
    "bulkinfo",
];

/// Upstream's two-letter short options, which clap cannot declare as shorts.
const LONG_FOR: [(&str, &str); 5] = [
    ("-tp", "--targetport"),
    ("-vp", "--cvport"),
    ("-rp", "--registrarport"),
    ("-vi", "--cvid"),
    ("-nvc", "--no-verifier-check"),
];

#[derive(Debug, Parser)]
#[command(
    name = "keylime_tenant",
    about = "Keylime tenant: enrol agents with the verifier and read their status",
    after_help = "Two-letter options as upstream: -tp (--targetport), -vp (--cvport), -rp (--registrarport), -vi (--cvid), -nvc (--no-verifier-check)."
)]
struct Args {
    /// add, delete, update, status, cvstatus, regstatus, cvlist, reglist, reactivate,
    /// regdelete, bulkinfo
    #[arg(short = 'c', long = "command", default_value = "add")]
    command: String,
    /// Agent id (default: d432fbb3-d2f1-4a97-9ef7-75bd81c00000, as upstream).
    #[arg(short = 'u', long = "uuid")]
    uuid: Option<String>,
    /// Agent contact address (default: from the registrar).
    #[arg(short = 't', long = "targethost")]
    targethost: Option<String>,
    /// Agent contact port (default: from the registrar). Short: -tp.
    #[arg(long = "targetport")]
    targetport: Option<u16>,
    /// Agent address the verifier should use, if different from -t.
    #[arg(long = "cv_targethost")]
    cv_targethost: Option<String>,
    /// Verifier address (tenant.conf verifier_ip).
    #[arg(short = 'v', long = "cv")]
    cv: Option<String>,
    /// Verifier port (tenant.conf verifier_port). Short: -vp.
    #[arg(long = "cvport")]
    cvport: Option<u16>,
    /// Verifier id for cvlist/bulkinfo. Short: -vi.
    #[arg(long = "cvid")]
    cvid: Option<String>,
    /// Accepted for compatibility (delete/reactivate always check the verifier). Short: -nvc.
    #[arg(long = "no-verifier-check")]
    no_verifier_check: bool,
    /// Registrar address (tenant.conf registrar_ip).
    #[arg(short = 'r', long = "registrarhost")]
    registrarhost: Option<String>,
    /// Registrar TLS port (tenant.conf registrar_port). Short: -rp.
    #[arg(long = "registrarport")]
    registrarport: Option<u16>,
    /// Deliver this file to the agent, encrypted with a fresh bootstrap key.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Deliver a ZIP of this certificate directory (must hold RevocationNotifier-cert.crt;
    /// RevocationNotifier-private.pem becomes the verifier's revocation key).
    #[arg(long = "cert")]
    cert: Option<PathBuf>,
    /// Key file with K, U and V (three base64 lines) for -p.
    #[arg(short = 'k', long = "key")]
    key: Option<PathBuf>,
    /// Already encrypted payload to deliver with the keys of -k.
    #[arg(short = 'p', long = "payload")]
    payload: Option<PathBuf>,
    /// Also put the files of this directory into the --cert package.
    #[arg(long = "include")]
    include: Option<PathBuf>,
    /// PCR policy as JSON, e.g. {"15": "0000…"}.
    #[arg(long = "tpm_policy")]
    tpm_policy: Option<String>,
    /// After add, wait until the agent proves it derived the bootstrap key.
    #[arg(long = "verify")]
    verify: bool,
    /// Agent API version to use instead of negotiating (e.g. 2.6).
    #[arg(long = "agent-api-version")]
    agent_api_version: Option<String>,
    /// Deprecated alias of --agent-api-version.
    #[arg(long = "supported-version")]
    supported_version: Option<String>,
    /// Push-model agents (not yet supported).
    #[arg(long = "push-model")]
    push_model: bool,
    /// Print exactly one JSON document on stdout.
    #[arg(long = "json")]
    json: bool,
}

/// Rewrite upstream's two-letter short options into their long forms.
fn normalise_args(raw: impl IntoIterator<Item = String>) -> Vec<String> {
    raw.into_iter()
        .map(|a| {
            for (short, long) in LONG_FOR {
                if a == short {
                    return long.to_string();
                }
                if let Some(rest) = a.strip_prefix(short).and_then(|r| r.strip_prefix('=')) {
                    return format!("{long}={rest}");
                }
            }
            a
        })
        .collect()
}

fn main() -> ExitCode {
    let argv = normalise_args(std::env::args());
    let json_mode = argv.iter().any(|a| a == "--json");
    let args = match Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            return usage_error(json_mode, "", &first_line(&e.to_string()));
        }
    };
    init_logging();
    if !COMMANDS.contains(&args.command.as_str()) {
        return usage_error(
            args.json,
            &args.command,
            &format!(
                "invalid command {:?}: valid commands are {}",
                args.command,
                COMMANDS.join(", ")
            ),
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return failure(
                args.json,
                &args.command,
                &format!("starting the runtime: {e}"),
            );
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(out) => {
            if args.json {
                println!("{}", report::json_success(&args.command, out.json));
            } else {
                for line in out.lines {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(RunError::Usage(msg)) => usage_error(args.json, &args.command, &msg),
        Err(RunError::Failed(e)) => failure(args.json, &args.command, &e.to_string()),
    }
}

enum RunError {
    Usage(String),
    Failed(TenantError),
}

impl From<TenantError> for RunError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Argument(m) => RunError::Usage(m),
            other => RunError::Failed(other),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

fn usage_error(json: bool, command: &str, msg: &str) -> ExitCode {
    if json {
        println!("{}", report::json_failure(command, msg));
    } else {
        let bin = Args::command().get_name().to_string();
        eprintln!("{bin}: error: {msg}");
    }
    ExitCode::from(2)
}

fn failure(json: bool, command: &str, msg: &str) -> ExitCode {
    if json {
        println!("{}", report::json_failure(command, msg));
    } else {
        eprintln!("Error: {msg}");
    }
    ExitCode::FAILURE
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn payload_source(args: &Args) -> Result<PayloadSource, RunError> {
    let chosen = [args.file.is_some(), args.key.is_some(), args.cert.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen > 1 {
        return Err(RunError::Usage(
            "You must specify one of -k, -f, or --cert to specify the key/contents to be securely delivered to the agent".into(),
        ));
    }
    if args.include.is_some() && args.cert.is_none() {
        return Err(RunError::Usage(
            "--include option is only valid when used with --cert".into(),
        ));
    }
    if args.payload.is_some() && args.key.is_none() {
        return Err(RunError::Usage(
            "-p/--payload needs the keys of -k/--key".into(),
        ));
    }
    Ok(if let Some(f) = &args.file {
        PayloadSource::File(f.clone())
    } else if let Some(k) = &args.key {
        PayloadSource::KeyFile {
            keyfile: k.clone(),
            payload: args.payload.clone(),
        }
    } else if let Some(dir) = &args.cert {
        PayloadSource::CertDir {
            dir: dir.clone(),
            include: args.include.clone(),
        }
    } else {
        PayloadSource::None
    })
}

async fn run(args: &Args) -> Result<Rendered, RunError> {
    let agent_id = match &args.uuid {
        Some(id) if valid_agent_id(id) => id.clone(),
        Some(id) => {
            return Err(RunError::Usage(format!(
                "the agent id {id:?} uses invalid characters (allowed: letters, digits, _ . -)"
            )));
        }
        None => {
            tracing::warn!("Using default UUID {DEFAULT_AGENT_ID}");
            DEFAULT_AGENT_ID.to_string()
        }
    };
    let api_version = match args
        .agent_api_version
        .as_deref()
        .or(args.supported_version.as_deref())
    {
        Some(v) => Some(
            v.parse::<ApiVersion>()
                .map_err(|e| RunError::Usage(e.to_string()))?,
        ),
        None => None,
    };
    let payload = payload_source(args)?;
    if args.push_model {
        return Err(RunError::Failed(TenantError::Unsupported(
            "--push-model (push attestation)".into(),
        )));
    }

    let cfg = keylime_config::TenantConfig::load()
        .map_err(|e| RunError::Failed(TenantError::Config(format!("tenant.conf: {e}"))))?;
    let mut settings = TenantSettings::from_config(&cfg).map_err(RunError::Failed)?;
    if let Some(h) = &args.cv {
        settings.verifier.host = h.clone();
    }
    if let Some(p) = args.cvport {
        settings.verifier.port = p;
    }
    if let Some(h) = &args.registrarhost {
        settings.registrar.host = h.clone();
    }
    if let Some(p) = args.registrarport {
        settings.registrar.port = p;
    }
    settings.verifier_id = args.cvid.clone();
    let tenant = Tenant::new(settings).map_err(RunError::Failed)?;
    let v = tenant.verifier_name().to_string();
    let r = tenant.registrar_name().to_string();

    let add_request = || AddRequest {
        agent_id: agent_id.clone(),
        agent_ip: args.targethost.clone(),
        agent_port: args.targetport,
        cv_agent_ip: args.cv_targethost.clone(),
        tpm_policy: args.tpm_policy.clone(),
        payload: payload.clone(),
        verify: args.verify,
        agent_api_version: api_version,
        push_model: args.push_model,
    };
    let out = match args.command.as_str() {
        "add" => report::add(&tenant.add(&add_request()).await?, &v),
        "update" => {
            let (deleted, added) = tenant.update(&add_request()).await?;
            let mut d = report::delete(&agent_id, deleted);
            let a = report::add(&added, &v);
            d.lines.extend(a.lines);
            Rendered {
                lines: d.lines,
                json: serde_json::json!({"delete": d.json, "add": a.json}),
            }
        }
        "delete" => report::delete(&agent_id, tenant.delete(&agent_id).await?),
        "status" => report::status(&tenant.status(&agent_id).await?, &v, &r),
        "cvstatus" => report::cvstatus(&tenant.cvstatus(&agent_id).await?, &v),
        "regstatus" => report::regstatus(&tenant.regstatus(&agent_id).await?, &r),
        "cvlist" => report::list(&tenant.cvlist().await?, &v),
        "reglist" => report::list(&tenant.reglist().await?, &r),
        "bulkinfo" => report::bulkinfo(&tenant.bulkinfo().await?),
        "reactivate" => {
            tenant.reactivate(&agent_id).await?;
            report::done(format!("Agent {agent_id} re-activated"), &agent_id)
        }
        "regdelete" => {
            tenant.regdelete(&agent_id).await?;
            report::done(format!("Agent {agent_id} deleted from {r}"), &agent_id)
        }
        other => return Err(RunError::Usage(format!("invalid command {other:?}"))),
    };
    Ok(out)
}
