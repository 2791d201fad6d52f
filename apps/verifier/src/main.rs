//! `keylime_verifier`: loads upstream-format configuration and runs the verifier until
//! SIGTERM/SIGINT. All behaviour lives in the library.

use clap::Parser;

/// Keylime verifier (pull mode). Configuration is read from /etc/keylime/verifier.conf (and
/// `verifier.conf.d/`, `KEYLIME_VERIFIER_CONFIG`, `KEYLIME_VERIFIER_*` variables) as upstream.
#[derive(Debug, Parser)]
#[command(name = "keylime_verifier", version, about)]
struct Args {
    /// Print the REST API's OpenAPI description (JSON) and exit.
    #[arg(long)]
    print_openapi: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", keylime_verifier::openapi::description_json());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = keylime_verifier::VerifierSettings::from_environment()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(keylime_verifier::run_until_signal(settings))
}
