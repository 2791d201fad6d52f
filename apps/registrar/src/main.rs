//! `keylime_registrar`: loads upstream-format configuration and runs the registrar until
//! SIGTERM/SIGINT. All behaviour lives in the library.

use clap::Parser;

/// Keylime registrar. Configuration is read from /etc/keylime/registrar.conf (and
/// `registrar.conf.d/`, `KEYLIME_REGISTRAR_CONFIG`, `KEYLIME_REGISTRAR_*` variables) as upstream.
#[derive(Debug, Parser)]
#[command(name = "keylime_registrar", version, about)]
struct Args {
    /// Print the REST API's OpenAPI description (JSON) and exit.
    #[arg(long)]
    print_openapi: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", keylime_registrar::openapi::description_json());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = keylime_registrar::RegistrarSettings::from_environment()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(keylime_registrar::run_until_signal(settings))
}
