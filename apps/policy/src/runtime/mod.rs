//! `keylime-policy create runtime`: reads the inputs the options name, hashes the root
//! filesystem, and hands both to `keylime_ima::policy::generate`, which makes the format-v1
//! runtime policy (generator 3); writes the policy or its legacy allowlist.

pub mod rootfs;

use std::path::Path;

use keylime_ima::policy::RuntimePolicy;
use keylime_ima::policy::generate::{
    DigestAlg, KeyFile, ListContents, PolicyInputs, base_policy, exclude_list, flat_allowlist,
    legacy_allowlist, read_list,
};

use crate::cli::{AlgoArg, CreateRuntime, EMPTY_IMA_MEASUREMENT_LIST};
use crate::output::{read_input, read_text};

impl From<AlgoArg> for DigestAlg {
    fn from(a: AlgoArg) -> Self {
        match a {
            AlgoArg::Sha1 => DigestAlg::Sha1,
            AlgoArg::Sha256 => DigestAlg::Sha256,
            AlgoArg::Sha384 => DigestAlg::Sha384,
            AlgoArg::Sha512 => DigestAlg::Sha512,
            AlgoArg::Sm3_256 => DigestAlg::Sm3_256,
        }
    }
}

/// `meta.timestamp` as Python's `str(datetime.now())` prints it (UTC here).
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

fn read_measurement_list(path: &Path) -> anyhow::Result<ListContents> {
    if path == Path::new(EMPTY_IMA_MEASUREMENT_LIST) {
        return Ok(ListContents::default());
    }
    let bytes = read_input(path, "IMA measurement list")?;
    if bytes.contains(&0) {
        anyhow::bail!(
            "the IMA measurement list {} is binary; give the ASCII list \
             (ascii_runtime_measurements)",
            path.display()
        );
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the IMA measurement list {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(read_list(&name(path), &text)?)
}

/// Reads every input `args` names.
fn read_inputs(args: &CreateRuntime) -> anyhow::Result<PolicyInputs> {
    let base = match &args.base_policy {
        Some(path) => Some(base_policy(&name(path), &read_input(path, "base policy")?)?),
        None => None,
    };
    let allowlist = match &args.allowlist {
        Some(path) => Some(flat_allowlist(&read_text(path, "allowlist")?)),
        None => None,
    };
    let measurement_list = match &args.ima_measurement_list {
        Some(path) => Some(read_measurement_list(path)?),
        None => None,
    };
    let excludes = match &args.excludelist {
        Some(path) => exclude_list(&name(path), &read_text(path, "exclude list")?)?,
        None => Vec::new(),
    };
    let mut verification_keys = Vec::new();
    for path in &args.verification_keys {
        verification_keys.push(KeyFile {
            name: name(path),
            bytes: read_input(path, "IMA verification key")?,
        });
    }
    Ok(PolicyInputs {
        algorithm: args.algo.map(DigestAlg::from),
        base,
        allowlist,
        measurement_list,
        excludes,
        ignored_keyrings: args.ignored_keyrings.clone(),
        keyrings: args.keyrings,
        ima_buf: args.ima_buf,
        verification_keys,
    })
}

/// Builds the policy `args` describe.
pub fn create_runtime(args: &CreateRuntime) -> anyhow::Result<RuntimePolicy> {
    if args.algo.is_some() && args.rootfs.is_none() {
        tracing::warn!("--algo only applies to files hashed under --rootfs");
    }
    let inputs = read_inputs(args)?;
    let algo = inputs.digest_algorithm()?;
    tracing::debug!(algorithm = %algo, "using digest algorithm");
    let rootfs = match &args.rootfs {
        Some(rootfs) => rootfs::rootfs_digests(rootfs, args.skip_path.as_deref(), algo)?,
        None => Default::default(),
    };
    Ok(inputs.assemble(rootfs, timestamp())?)
}

/// Runs `create runtime`: builds the policy and writes it (or its legacy allowlist).
pub fn run(args: &CreateRuntime) -> anyhow::Result<()> {
    let policy = create_runtime(args)?;
    let text = if args.show_legacy_allowlist {
        legacy_allowlist(&policy.digests)
    } else {
        keylime_api::pyjson::try_dumps(&policy)?
    };
    crate::output::write_output(&args.output, &text, "runtime policy")
}
