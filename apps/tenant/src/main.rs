//! `keylime_tenant`: parses upstream's options, builds a [`keylime_tenant::Tenant`] from
//! `tenant.conf` plus the overrides, runs one command and prints its result (upstream's
//! lines, or one JSON document with `--json`). Exit status: 0 success, 1 failure, 2 usage.
//! As upstream's tenant (which logs to stdout), what it prints along the way and a failure's
//! message go to stdout; usage errors go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use keylime_api::version::ApiVersion;
use keylime_tenant::report::{self, Rendered};
use keylime_tenant::{
    AddRequest, PayloadSource, PolicyKind, PolicyOptions, Tenant, TenantError, TenantSettings,
};

const DEFAULT_AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
const COMMANDS: [&str; 24] = [
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
    "addruntimepolicy",
    "showruntimepolicy",
    "deleteruntimepolicy",
    "updateruntimepolicy",
    "listruntimepolicy",
    "addmbpolicy",
    "showmbpolicy",
    "deletembpolicy",
    "updatembpolicy",
    "listmbpolicy",
    "addallowlist",
    "showallowlist",
    "deleteallowlist",
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
    /// regdelete, bulkinfo, addruntimepolicy, showruntimepolicy, deleteruntimepolicy,
    /// updateruntimepolicy, listruntimepolicy, addmbpolicy, showmbpolicy, deletembpolicy,
    /// updatembpolicy, listmbpolicy (deprecated: addallowlist, showallowlist,
    /// deleteallowlist)
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
    /// Runtime policy file (v1 JSON, or a DSSE envelope signed with --runtime-policy-sig-key).
    #[arg(long = "runtime-policy")]
    runtime_policy: Option<PathBuf>,
    /// Name of the runtime policy to store or use at the verifier.
    #[arg(long = "runtime-policy-name")]
    runtime_policy_name: Option<String>,
    /// SHA-256 checksum (hex) the --runtime-policy file must have.
    #[arg(long = "runtime-policy-checksum")]
    runtime_policy_checksum: Option<String>,
    /// EC public key (PEM) that the signed --runtime-policy must verify with.
    #[arg(long = "runtime-policy-sig-key", alias = "runtime-policy-key")]
    runtime_policy_sig_key: Option<PathBuf>,
    /// URL of a remote runtime policy (not yet supported).
    #[arg(long = "runtime-policy-url")]
    runtime_policy_url: Option<String>,
    /// DEPRECATED: legacy allowlist file, converted to a runtime policy.
    #[arg(long = "allowlist")]
    allowlist: Option<PathBuf>,
    /// DEPRECATED: name of the allowlist (use --runtime-policy-name).
    #[arg(long = "allowlist-name")]
    allowlist_name: Option<String>,
    /// DEPRECATED: URL of a remote allowlist (not supported).
    #[arg(long = "allowlist-url")]
    allowlist_url: Option<String>,
    /// DEPRECATED: legacy IMA excludelist for --allowlist.
    #[arg(long = "exclude", alias = "excludelist")]
    exclude: Option<PathBuf>,
    /// Measured-boot policy (reference state) file; "default" = tenant.conf mb_refstate.
    /// (As upstream, the last of --mb-policy and --mb_refstate wins.)
    #[arg(
        long = "mb-policy",
        alias = "mb_refstate",
        overrides_with = "mb_policy"
    )]
    mb_policy: Option<String>,
    /// Name of the measured-boot policy to store or use at the verifier.
    #[arg(long = "mb-policy-name")]
    mb_policy_name: Option<String>,
    /// DEPRECATED (not supported): IMA signature verification keys; put them into the
    /// runtime policy.
    #[arg(
        long = "signature-verification-key",
        alias = "sign_verification_key",
        hide = true
    )]
    signature_verification_key: Vec<String>,
    #[arg(long = "signature-verification-key-sig", hide = true)]
    signature_verification_key_sig: Vec<String>,
    #[arg(long = "signature-verification-key-sig-key", hide = true)]
    signature_verification_key_sig_key: Vec<String>,
    #[arg(long = "signature-verification-key-url", hide = true)]
    signature_verification_key_url: Vec<String>,
    #[arg(long = "signature-verification-key-sig-url", hide = true)]
    signature_verification_key_sig_url: Vec<String>,
    #[arg(long = "signature-verification-key-sig-url-key", hide = true)]
    signature_verification_key_sig_url_key: Vec<String>,
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
        println!("{msg}");
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

/// The policy options of `add`/`update` and the policy commands, with upstream's usage rules.
fn policy_options(args: &Args) -> Result<PolicyOptions, RunError> {
    let unsupported = |what: &str| RunError::Failed(TenantError::Unsupported(what.into()));
    if args.runtime_policy_url.is_some() {
        if args.runtime_policy.is_some() {
            return Err(RunError::Usage(
                "--runtime-policy and --runtime-policy-url cannot be specified at the same time"
                    .into(),
            ));
        }
        return Err(unsupported(
            "--runtime-policy-url (download the policy and pass it with --runtime-policy and --runtime-policy-checksum)",
        ));
    }
    if args.allowlist_url.is_some() {
        return Err(unsupported("--allowlist-url"));
    }
    let key_options = [
        &args.signature_verification_key,
        &args.signature_verification_key_sig,
        &args.signature_verification_key_sig_key,
        &args.signature_verification_key_url,
        &args.signature_verification_key_sig_url,
        &args.signature_verification_key_sig_url_key,
    ];
    if key_options.iter().any(|v| !v.is_empty()) {
        return Err(unsupported(
            "--signature-verification-key and its companions (deprecated: put the IMA verification keys into the runtime policy)",
        ));
    }
    let runtime_policy_name = match (&args.runtime_policy_name, &args.allowlist_name) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(name)) => {
            tracing::warn!("--allowlist-name is deprecated. Use --runtime-policy-name instead.");
            Some(name.clone())
        }
        (None, None) => None,
    };
    let opts = PolicyOptions {
        tpm_policy: args.tpm_policy.clone(),
        runtime_policy: args.runtime_policy.clone(),
        runtime_policy_checksum: args.runtime_policy_checksum.clone(),
        runtime_policy_sig_key: args.runtime_policy_sig_key.clone(),
        runtime_policy_name,
        allowlist: args.allowlist.clone(),
        exclude: args.exclude.clone(),
        mb_policy: args.mb_policy.as_ref().map(PathBuf::from),
        mb_policy_name: args.mb_policy_name.clone(),
    };
    opts.check_combination()?;
    Ok(opts)
}

/// `--mb-policy default` names tenant.conf's `mb_refstate`.
fn resolve_default_mb_policy(
    opts: &mut PolicyOptions,
    cfg: &keylime_config::TenantConfig,
) -> Result<(), RunError> {
    if opts.mb_policy.as_deref() == Some(std::path::Path::new("default")) {
        let refstate = cfg.mb_refstate.trim();
        if refstate.is_empty() {
            return Err(RunError::Failed(TenantError::Policy(
                "--mb-policy default: tenant.conf sets no mb_refstate".into(),
            )));
        }
        opts.mb_policy = Some(PathBuf::from(refstate));
    }
    Ok(())
}

/// The policy commands (verifier `/allowlists` and `/mbpolicies`); `None` for others.
async fn run_policy_command(
    tenant: &Tenant,
    args: &Args,
    opts: &PolicyOptions,
) -> Option<Result<Rendered, TenantError>> {
    use PolicyKind::{MeasuredBoot, Runtime};
    let command = args.command.as_str();
    if let Some(current) = command
        .strip_suffix("allowlist")
        .map(|verb| format!("{verb}runtimepolicy"))
    {
        tracing::warn!("-c {command} is deprecated. Use -c {current} instead.");
    }
    // show/delete prefer the deprecated name, as upstream.
    let runtime_name = args
        .allowlist_name
        .as_deref()
        .or(args.runtime_policy_name.as_deref())
        .unwrap_or("");
    let mb_name = args.mb_policy_name.as_deref().unwrap_or("");
    let rendered = match command {
        "addruntimepolicy" | "addallowlist" => tenant
            .add_runtime_policy(opts)
            .await
            .map(|r| report::policy_change(&r)),
        "updateruntimepolicy" => tenant
            .update_runtime_policy(opts)
            .await
            .map(|r| report::policy_change(&r)),
        "deleteruntimepolicy" | "deleteallowlist" => tenant
            .delete_policy(Runtime, runtime_name)
            .await
            .map(|r| report::policy_change(&r)),
        "showruntimepolicy" | "showallowlist" => tenant
            .show_policy(Runtime, runtime_name)
            .await
            .map(|r| report::policy_show(&r)),
        "listruntimepolicy" => tenant
            .list_policies(Runtime)
            .await
            .map(|r| report::policy_list(&r)),
        "addmbpolicy" => tenant
            .add_mb_policy(opts)
            .await
            .map(|r| report::policy_change(&r)),
        "updatembpolicy" => tenant
            .update_mb_policy(opts)
            .await
            .map(|r| report::policy_change(&r)),
        "deletembpolicy" => tenant
            .delete_policy(MeasuredBoot, mb_name)
            .await
            .map(|r| report::policy_change(&r)),
        "showmbpolicy" => tenant
            .show_policy(MeasuredBoot, mb_name)
            .await
            .map(|r| report::policy_show(&r)),
        "listmbpolicy" => tenant
            .list_policies(MeasuredBoot)
            .await
            .map(|r| report::policy_list(&r)),
        _ => return None,
    };
    Some(rendered)
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
    let mut policies = policy_options(args)?;
    if args.push_model {
        return Err(RunError::Failed(TenantError::Unsupported(
            "--push-model (push attestation)".into(),
        )));
    }

    let cfg = keylime_config::TenantConfig::load()
        .map_err(|e| RunError::Failed(TenantError::Config(format!("tenant.conf: {e}"))))?;
    resolve_default_mb_policy(&mut policies, &cfg)?;
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
    let mut tenant = Tenant::new(settings).map_err(RunError::Failed)?;
    if !args.json {
        tenant = tenant.with_console(Arc::new(|line: &str| println!("{line}")));
    }
    let v = tenant.verifier_name().to_string();

    let add_request = || AddRequest {
        agent_id: agent_id.clone(),
        agent_ip: args.targethost.clone(),
        agent_port: args.targetport,
        cv_agent_ip: args.cv_targethost.clone(),
        policies: policies.clone(),
        payload: payload.clone(),
        verify: args.verify,
        agent_api_version: api_version,
        push_model: args.push_model,
    };
    if let Some(out) = run_policy_command(&tenant, args, &policies).await {
        return Ok(out?);
    }
    let out = match args.command.as_str() {
        "add" => report::add(&tenant.add(&add_request()).await?),
        "update" => {
            // The delete's outcome was printed before the add began, as upstream.
            let (deleted, added) = tenant.update(&add_request()).await?;
            let d = report::delete(&agent_id, deleted, &v);
            let a = report::add(&added);
            Rendered {
                lines: a.lines,
                json: report::object([("add", a.json), ("delete", d.json)]),
            }
        }
        "delete" => report::delete(&agent_id, tenant.delete(&agent_id).await?, &v),
        "status" => report::status(&tenant.status(&agent_id).await?),
        "cvstatus" => report::cvstatus(&tenant.cvstatus(&agent_id).await?),
        "regstatus" => report::regstatus(&tenant.regstatus(&agent_id).await?),
        "cvlist" => report::cvlist(&tenant.cvlist().await?),
        "reglist" => report::reglist(&tenant.reglist().await?),
        "bulkinfo" => report::bulkinfo(&tenant.bulkinfo().await?),
        "reactivate" => {
            tenant.reactivate(&agent_id).await?;
            report::reactivate(&agent_id)
        }
        "regdelete" => report::regdelete(&agent_id, tenant.regdelete(&agent_id).await?),
        other => return Err(RunError::Usage(format!("invalid command {other:?}"))),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let argv = std::iter::once("keylime_tenant")
            .chain(args.iter().copied())
            .map(String::from);
        Args::try_parse_from(normalise_args(argv)).expect("arguments parse")
    }

    fn options(args: &[&str]) -> Result<PolicyOptions, String> {
        policy_options(&parse(args)).map_err(|e| match e {
            RunError::Usage(m) => format!("usage: {m}"),
            RunError::Failed(e) => format!("failed: {e}"),
        })
    }

    #[test]
    fn policy_flags_and_upstream_aliases() {
        let o = options(&[
            "-c",
            "add",
            "--runtime-policy",
            "p.json",
            "--runtime-policy-key",
            "k.pem",
            "--runtime-policy-checksum",
            "ab",
            "--mb_refstate",
            "mb.json",
            "--mb-policy-name",
            "mb",
            "--tpm_policy",
            "{}",
        ])
        .unwrap();
        assert_eq!(
            o,
            PolicyOptions {
                tpm_policy: Some("{}".into()),
                runtime_policy: Some("p.json".into()),
                runtime_policy_checksum: Some("ab".into()),
                runtime_policy_sig_key: Some("k.pem".into()),
                mb_policy: Some("mb.json".into()),
                mb_policy_name: Some("mb".into()),
                ..PolicyOptions::default()
            }
        );
        // The deprecated name is used when the current one is absent, never over it.
        let o = options(&[
            "--allowlist",
            "a.txt",
            "--excludelist",
            "e.txt",
            "--allowlist-name",
            "old",
        ])
        .unwrap();
        assert_eq!(o.runtime_policy_name.as_deref(), Some("old"));
        assert_eq!(o.exclude, Some(PathBuf::from("e.txt")));
        let o = options(&["--allowlist-name", "old", "--runtime-policy-name", "new"]).unwrap();
        assert_eq!(o.runtime_policy_name.as_deref(), Some("new"));
        let o = options(&["--mb-policy", "a", "--mb_refstate", "b"]).unwrap();
        assert_eq!(o.mb_policy, Some(PathBuf::from("b")));
    }

    #[test]
    fn policy_flag_rules() {
        for (args, want) in [
            (
                &["--exclude", "e"][..],
                "usage: --exclude cannot be used without an --allowlist",
            ),
            (
                &["--runtime-policy-checksum", "ab"],
                "usage: --runtime-policy-checksum must have --runtime-policy",
            ),
            (
                &["--runtime-policy", "p", "--runtime-policy-url", "u"],
                "usage: --runtime-policy and --runtime-policy-url cannot be specified at the same time",
            ),
            (
                &["--runtime-policy-url", "u"],
                "failed: --runtime-policy-url",
            ),
            (&["--allowlist-url", "u"], "failed: --allowlist-url"),
            (
                &["--sign_verification_key", "k"],
                "failed: --signature-verification-key",
            ),
        ] {
            let err = options(args).unwrap_err();
            assert!(err.starts_with(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn default_mb_policy_comes_from_tenant_conf() {
        let dir = tempfile::tempdir().unwrap();
        let sources = keylime_config::Sources::isolated(dir.path())
            .with_env("KEYLIME_TENANT_MB_REFSTATE", "/etc/keylime/ref.json");
        let cfg = keylime_config::TenantConfig::load_from(&sources).unwrap();
        let mut o = options(&["--mb-policy", "default"]).unwrap();
        assert!(resolve_default_mb_policy(&mut o, &cfg).is_ok());
        assert_eq!(o.mb_policy, Some(PathBuf::from("/etc/keylime/ref.json")));

        let empty =
            keylime_config::TenantConfig::load_from(&keylime_config::Sources::isolated(dir.path()))
                .unwrap();
        let mut o = options(&["--mb-policy", "default"]).unwrap();
        assert!(resolve_default_mb_policy(&mut o, &empty).is_err());
        let mut o = options(&["--mb-policy", "mine.json"]).unwrap();
        assert!(resolve_default_mb_policy(&mut o, &empty).is_ok());
        assert_eq!(o.mb_policy, Some(PathBuf::from("mine.json")));
    }

    #[test]
    fn every_command_is_known() {
        for c in COMMANDS {
            assert_eq!(parse(&["-c", c]).command, c);
        }
    }
}
