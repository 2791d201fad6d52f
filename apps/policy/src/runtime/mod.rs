//! `keylime-policy create runtime`: a format-v1 runtime policy (generator 3) merged from a
//! base policy, a flat allowlist, an IMA measurement list and a root filesystem tree, plus an
//! exclude list, keyring and ima-buf entries, ignored keyrings and IMA verification keys;
//! every digest list sorted and without duplicates, as upstream writes it.

pub mod digest_alg;
pub mod inputs;
pub mod measurement_list;
pub mod rootfs;
pub mod verification_keys;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use keylime_ima::policy::{DigestMap, Generator, RuntimePolicy};

use crate::cli::{CreateRuntime, EMPTY_IMA_MEASUREMENT_LIST};
use crate::output::{read_input, read_text};
use digest_alg::{DigestAlg, Guess};
use measurement_list::ListContents;
use verification_keys::ImaKeyring;

fn merge(into: &mut DigestMap, from: DigestMap) {
    for (name, list) in from {
        into.entry(name).or_default().extend(list);
    }
}

fn sort_unique(map: &mut DigestMap) {
    for list in map.values_mut() {
        list.sort();
        list.dedup();
    }
}

fn sorted_unique(list: &mut Vec<String>) {
    *list = std::mem::take(list)
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
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
    measurement_list::read_list(path, &text)
}

/// Builds the policy `args` describe.
pub fn create_runtime(args: &CreateRuntime) -> anyhow::Result<RuntimePolicy> {
    let (mut policy, base_guess) = match &args.base_policy {
        Some(path) => inputs::base_policy(path, &read_input(path, "base policy")?)?,
        None => (RuntimePolicy::empty(), None),
    };
    if args.algo.is_some() && args.rootfs.is_none() {
        tracing::warn!("--algo only applies to files hashed under --rootfs");
    }
    let (allowlist, allowlist_guess) = match &args.allowlist {
        Some(path) => inputs::flat_allowlist(&read_text(path, "allowlist")?),
        None => (DigestMap::new(), None),
    };
    let list = match &args.ima_measurement_list {
        Some(path) => read_measurement_list(path)?,
        None => ListContents::default(),
    };
    let algo = digest_alg::choose(&[
        (
            args.algo.map(|a| Guess::Known(DigestAlg::from(a))),
            "--algo option",
        ),
        (base_guess, "base policy"),
        (allowlist_guess, "allowlist"),
        (list.boot_aggregate, "IMA measurement list"),
    ])?;
    tracing::debug!(algorithm = %algo, "using digest algorithm");

    merge(&mut policy.digests, allowlist);
    merge(&mut policy.digests, list.digests);
    if let Some(rootfs) = &args.rootfs {
        let digests = rootfs::rootfs_digests(rootfs, args.skip_path.as_deref(), algo)?;
        merge(&mut policy.digests, digests);
    }

    if let Some(path) = &args.excludelist {
        let rules = inputs::exclude_list(path, &read_text(path, "exclude list")?)?;
        policy.excludes.extend(rules);
    }

    policy
        .ima
        .ignored_keyrings
        .extend(args.ignored_keyrings.iter().cloned());
    for buf in &list.buffers {
        if buf.is_certificate {
            if args.keyrings && !policy.ima.ignored_keyrings.contains(&buf.name) {
                let list = policy.keyrings.entry(buf.name.clone()).or_default();
                list.push(buf.digest.clone());
            }
        } else if args.ima_buf {
            let list = policy.ima_buf.entry(buf.name.clone()).or_default();
            list.push(buf.digest.clone());
        }
    }

    if !args.verification_keys.is_empty() {
        let mut ring = if policy.verification_keys.is_empty() {
            ImaKeyring::default()
        } else {
            ImaKeyring::parse(&policy.verification_keys)?
        };
        for path in &args.verification_keys {
            ring.add_file(path, &read_input(path, "IMA verification key")?)?;
        }
        policy.verification_keys = ring.to_json()?;
    }

    sort_unique(&mut policy.digests);
    sort_unique(&mut policy.keyrings);
    sort_unique(&mut policy.ima_buf);
    sorted_unique(&mut policy.excludes);
    sorted_unique(&mut policy.ima.ignored_keyrings);
    policy.meta.generator = Generator::LegacyAllowList.code();
    policy.meta.timestamp = Some(timestamp());
    policy
        .validate()
        .context("the resulting policy is not a valid runtime policy")?;
    Ok(policy)
}

/// The digests in the legacy allowlist format (`<digest>  <path>`, boot_aggregate first).
pub fn legacy_allowlist(digests: &DigestMap) -> String {
    const BOOT_AGGREGATE: &str = "boot_aggregate";
    let mut out = String::new();
    let boot = digests.get_key_value(BOOT_AGGREGATE);
    for (name, list) in boot
        .into_iter()
        .chain(digests.iter().filter(|(n, _)| *n != BOOT_AGGREGATE))
    {
        for d in list {
            out.push_str(&format!("{d}  {name}\n"));
        }
    }
    out
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
