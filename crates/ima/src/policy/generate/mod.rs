//! Making a new runtime policy (upstream's `keylime-policy create runtime`, generator 3): a
//! base policy, a flat allowlist, an ASCII IMA measurement list and the digests of a root
//! filesystem merged into one format-v1 policy, with an exclude list, keyring and ima-buf
//! entries, ignored keyrings and IMA verification keys; every list sorted and without
//! duplicates, as upstream writes it.
//!
//! This is the runtime counterpart of `keylime_eventlog::refstate_from_log`. It reads no
//! files and no clock: the caller hands over the inputs' bytes, hashes the root filesystem
//! with the algorithm [`PolicyInputs::digest_algorithm`] picks, and supplies the timestamp.

mod digest_alg;
mod error;
mod inputs;
mod keyring;
mod measurement_list;

use std::collections::BTreeSet;

pub use digest_alg::{DigestAlg, Guess, choose};
pub use error::GenerateError;
pub use inputs::{BasePolicy, FlatAllowlist, base_policy, exclude_list, flat_allowlist};
pub use keyring::ImaKeyring;
pub use measurement_list::{Buffer, ListContents, read_list};

use super::{DigestMap, Generator, RuntimePolicy};

/// An IMA verification key file: its name (for errors) and contents.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Everything a new runtime policy is made of, read and parsed.
#[derive(Debug, Default)]
pub struct PolicyInputs {
    /// The algorithm asked for explicitly (upstream's `--algo`).
    pub algorithm: Option<DigestAlg>,
    pub base: Option<BasePolicy>,
    pub allowlist: Option<FlatAllowlist>,
    pub measurement_list: Option<ListContents>,
    pub excludes: Vec<String>,
    pub ignored_keyrings: Vec<String>,
    /// Keyring entries from the measurement list's `ima-buf` certificates.
    pub keyrings: bool,
    /// `ima-buf` entries from the measurement list's other buffers.
    pub ima_buf: bool,
    pub verification_keys: Vec<KeyFile>,
}

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

impl PolicyInputs {
    /// The algorithm files are hashed with: the explicit choice, else what the base policy,
    /// the allowlist and the measurement list imply, which must agree.
    pub fn digest_algorithm(&self) -> Result<DigestAlg, GenerateError> {
        choose(&[
            (self.algorithm.map(Guess::Known), "--algo option"),
            (self.base.as_ref().and_then(|b| b.guess), "base policy"),
            (self.allowlist.as_ref().and_then(|a| a.guess), "allowlist"),
            (
                self.measurement_list
                    .as_ref()
                    .and_then(|l| l.boot_aggregate),
                "IMA measurement list",
            ),
        ])
    }

    /// The policy: the inputs merged with `rootfs` (file digests hashed with
    /// [`PolicyInputs::digest_algorithm`]), stamped with `timestamp` (upstream writes
    /// Python's `str(datetime.now())`).
    pub fn assemble(
        self,
        rootfs: DigestMap,
        timestamp: String,
    ) -> Result<RuntimePolicy, GenerateError> {
        let mut policy = match self.base {
            Some(base) => base.policy,
            None => RuntimePolicy::empty(),
        };
        let list = self.measurement_list.unwrap_or_default();
        if let Some(allowlist) = self.allowlist {
            merge(&mut policy.digests, allowlist.digests);
        }
        merge(&mut policy.digests, list.digests);
        merge(&mut policy.digests, rootfs);
        policy.excludes.extend(self.excludes);
        policy.ima.ignored_keyrings.extend(self.ignored_keyrings);
        for buf in list.buffers {
            if buf.is_certificate {
                if self.keyrings && !policy.ima.ignored_keyrings.contains(&buf.name) {
                    policy
                        .keyrings
                        .entry(buf.name)
                        .or_default()
                        .push(buf.digest);
                }
            } else if self.ima_buf {
                policy.ima_buf.entry(buf.name).or_default().push(buf.digest);
            }
        }
        if !self.verification_keys.is_empty() {
            let mut ring = if policy.verification_keys.is_empty() {
                ImaKeyring::default()
            } else {
                ImaKeyring::parse(&policy.verification_keys)?
            };
            for file in &self.verification_keys {
                ring.add_key_file(&file.name, &file.bytes)?;
            }
            policy.verification_keys = ring.to_json()?;
        }
        sort_unique(&mut policy.digests);
        sort_unique(&mut policy.keyrings);
        sort_unique(&mut policy.ima_buf);
        sorted_unique(&mut policy.excludes);
        sorted_unique(&mut policy.ima.ignored_keyrings);
        policy.meta.generator = Generator::LegacyAllowList.code();
        policy.meta.timestamp = Some(timestamp);
        policy.validate().map_err(GenerateError::Invalid)?;
        Ok(policy)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> ListContents {
        read_list("list", text).unwrap()
    }

    #[test]
    fn inputs_merge_sorted_and_without_duplicates() {
        let z40 = "0".repeat(40);
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let inputs = PolicyInputs {
            allowlist: Some(flat_allowlist(&format!("{b}  /bin/sh\n{a}  /bin/sh\n"))),
            measurement_list: Some(list(&format!(
                "10 {z40} ima-ng sha256:{a} /bin/sh\n10 {z40} ima-ng sha256:{b} /bin/ls\n"
            ))),
            excludes: vec!["/tmp/.*".into(), "/opt/.*".into(), "/tmp/.*".into()],
            ..PolicyInputs::default()
        };
        assert_eq!(inputs.digest_algorithm().unwrap(), DigestAlg::Sha256);
        let rootfs = DigestMap::from([("/bin/ls".to_owned(), vec![b.clone()])]);
        let policy = inputs.assemble(rootfs, "now".into()).unwrap();
        assert_eq!(policy.digests["/bin/sh"], vec![a.clone(), b.clone()]);
        assert_eq!(policy.digests["/bin/ls"], vec![b.clone()]);
        assert_eq!(policy.excludes, vec!["/opt/.*", "/tmp/.*"]);
        assert_eq!(policy.meta.generator, Generator::LegacyAllowList.code());
        assert_eq!(policy.meta.timestamp.as_deref(), Some("now"));
        assert_eq!(
            legacy_allowlist(&policy.digests),
            format!("{b}  /bin/ls\n{a}  /bin/sh\n{b}  /bin/sh\n")
        );
    }

    #[test]
    fn disagreeing_inputs_name_their_sources() {
        let inputs = PolicyInputs {
            algorithm: Some(DigestAlg::Sha384),
            allowlist: Some(flat_allowlist(&format!("{}  /bin/sh\n", "a".repeat(40)))),
            ..PolicyInputs::default()
        };
        let err = inputs.digest_algorithm().unwrap_err().to_string();
        assert!(
            err.contains("allowlist") && err.ends_with("; aborting"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_key_file_is_named() {
        let inputs = PolicyInputs {
            verification_keys: vec![KeyFile {
                name: "k.pem".into(),
                bytes: b"junk".to_vec(),
            }],
            ..PolicyInputs::default()
        };
        let err = inputs.assemble(DigestMap::new(), "now".into()).unwrap_err();
        assert!(
            matches!(err, GenerateError::KeyFile { ref source_name, .. } if source_name == "k.pem"),
            "{err}"
        );
    }
}
