//! The command line: upstream `keylime-policy`'s subcommands and flags (names, short letters
//! and defaults as its argparse definitions have them), plus our `inspect` subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where IMA publishes the running system's ASCII measurement list.
pub const IMA_MEASUREMENT_LIST: &str = "/sys/kernel/security/ima/ascii_runtime_measurements";

/// The "no measurement list" value upstream uses as the default of `-m`.
pub const EMPTY_IMA_MEASUREMENT_LIST: &str = "/dev/null";

/// Upstream's default output for `create runtime` and `sign runtime`.
pub const STDOUT: &str = "/dev/stdout";

/// Where `sign runtime` writes a generated key when `-p` is not given.
pub const DEFAULT_EC_KEY_FILE: &str = "keylime-ecdsa-key.pem";

#[derive(Debug, Parser)]
#[command(
    name = "keylime-policy",
    version,
    about = "Create, sign and inspect Keylime runtime and measured-boot policies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create a runtime or measured-boot policy.
    #[command(subcommand)]
    Create(Create),
    /// Sign a policy.
    #[command(subcommand)]
    Sign(Sign),
    /// Summarize an IMA measurement list or a UEFI event log.
    #[command(subcommand)]
    Inspect(Inspect),
}

#[derive(Debug, Subcommand)]
pub enum Create {
    /// Create a runtime (IMA) policy.
    Runtime(CreateRuntime),
    /// Create a measured-boot reference state from a UEFI event log.
    #[command(name = "measured-boot")]
    MeasuredBoot(CreateMeasuredBoot),
}

#[derive(Debug, Subcommand)]
pub enum Sign {
    /// Sign a runtime policy into a DSSE envelope.
    Runtime(SignRuntime),
}

#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// Entries per template, template-hash mismatches and the replayed PCRs of an IMA list.
    Ima(InspectFile),
    /// Events and replayed PCRs of a binary UEFI event log.
    Eventlog(InspectFile),
}

/// File-digest algorithms upstream accepts for `--algo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgoArg {
    #[value(name = "sha1")]
    Sha1,
    #[value(name = "sha256")]
    Sha256,
    #[value(name = "sha384")]
    Sha384,
    #[value(name = "sha512")]
    Sha512,
    #[value(name = "sm3_256")]
    Sm3_256,
}

#[derive(Debug, Args)]
pub struct CreateRuntime {
    /// Digest algorithm for files under --rootfs; by default the one the inputs use
    /// (base policy, allowlist, boot_aggregate), else sha256.
    #[arg(long = "algo", visible_alias = "hash-alg", value_enum)]
    pub algo: Option<AlgoArg>,

    /// Root filesystem whose files are hashed (in parallel), e.g. /.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,

    /// Comma-separated directories under --rootfs not to hash.
    #[arg(short = 's', long = "skip-path")]
    pub skip_path: Option<String>,

    /// Output file (default stdout).
    #[arg(short = 'o', long, default_value = STDOUT)]
    pub output: String,

    /// Merge the new data into this JSON runtime policy.
    #[arg(short = 'p', long = "base-policy")]
    pub base_policy: Option<PathBuf>,

    /// Create keyrings entries from ima-buf entries that hold certificates.
    #[arg(short = 'k', long = "keyrings")]
    pub keyrings: bool,

    /// Create ima-buf entries from the other ima-buf entries.
    #[arg(short = 'b', long = "ima-buf")]
    pub ima_buf: bool,

    /// Read digests from a plain-text allowlist (`<digest>  <path>` per line).
    #[arg(short = 'a', long)]
    pub allowlist: Option<PathBuf>,

    /// Add the regular expressions of this exclude list (one per line).
    #[arg(short = 'e', long = "excludelist")]
    pub excludelist: Option<PathBuf>,

    /// Take digests, keyrings and ima-buf entries from an ASCII IMA measurement list
    /// (without a value: the running system's; /dev/null: none).
    #[arg(
        short = 'm',
        long = "ima-measurement-list",
        num_args = 0..=1,
        default_missing_value = IMA_MEASUREMENT_LIST,
    )]
    pub ima_measurement_list: Option<PathBuf>,

    /// Ignore this keyring (repeatable).
    #[arg(long = "ignored-keyrings", action = clap::ArgAction::Append)]
    pub ignored_keyrings: Vec<String>,

    /// Add this IMA signature verification key (X.509 certificate in PEM or DER, or a public
    /// key PEM) to the policy's keyring (repeatable).
    #[arg(long = "add-ima-signature-verification-key", action = clap::ArgAction::Append)]
    pub verification_keys: Vec<PathBuf>,

    /// Print only the digests, in the legacy allowlist format.
    #[arg(long = "show-legacy-allowlist")]
    pub show_legacy_allowlist: bool,

    /// Log at debug level.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CreateMeasuredBoot {
    /// Binary UEFI event log (normally /sys/kernel/security/tpm0/binary_bios_measurements).
    #[arg(short = 'e', long = "eventlog-file")]
    pub eventlog_file: PathBuf,

    /// Create a reference state without Secure Boot (measured boot only).
    #[arg(short = 'i', long = "without-secureboot")]
    pub without_secureboot: bool,

    /// Output file, '-' for stdout.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
}

/// DSSE backends upstream offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Ecdsa,
    X509,
}

#[derive(Debug, Args)]
pub struct SignRuntime {
    /// Output file for the DSSE envelope (default stdout).
    #[arg(short = 'o', long, default_value = STDOUT)]
    pub output: String,

    /// The runtime policy to sign.
    #[arg(short = 'r', long = "runtime-policy")]
    pub runtime_policy: PathBuf,

    /// EC private key (PEM) to sign with; without it a P-256 key is generated.
    #[arg(short = 'k', long)]
    pub keyfile: Option<PathBuf>,

    /// Where to write the generated key (default keylime-ecdsa-key.pem).
    #[arg(short = 'p', long)]
    pub keypath: Option<PathBuf>,

    /// DSSE backend.
    #[arg(
        short = 'b',
        long,
        value_enum,
        ignore_case = true,
        default_value = "ecdsa"
    )]
    pub backend: Backend,

    /// Where to write the self-signed certificate (x509 backend).
    #[arg(short = 'c', long = "cert-outfile")]
    pub cert_outfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectFile {
    /// The file to inspect.
    pub file: PathBuf,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}
