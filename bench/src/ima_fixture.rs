//! A deterministic IMA workload: an `ima-ng` ASCII measurement list of N entries (a
//! `boot_aggregate` first, then files with sha256 digests), the runtime policy (format v1)
//! that accepts it with M paths (every logged path plus fillers), and the PCR 10 values a
//! quote over the whole list would carry in the sha1 and sha256 banks.
//!
//! Template data and hashes are computed here directly from the byte layout of PROTOCOL.md
//! §8.1 (not through `keylime_ima`), so a replay through `keylime_ima` is an independent
//! check of the fixture. Nothing here reads a clock or a random source: the same spec gives
//! the same bytes.

use std::fmt::Write as _;

use keylime_ima::policy::{DigestMap, ImaSection, PolicyMeta, RuntimePolicy};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// Name of the first entry, the aggregate of the boot PCRs.
pub const BOOT_AGGREGATE: &str = "boot_aggregate";

/// `excludes` of the generated policy: typical volatile trees, none of which matches a
/// logged path (so every entry takes the digest lookup).
pub const EXCLUDES: &[&str] = &[
    "/tmp/.*",
    "/var/tmp/.*",
    "/var/log/.*",
    "/run/.*",
    "/proc/.*",
];

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaFixtureSpec {
    /// Entries in the list, the `boot_aggregate` included (at least 1).
    pub entries: usize,
    /// Paths in the policy's `digests` (raised to cover every logged path and
    /// `boot_aggregate` if smaller).
    pub policy_paths: usize,
}

impl Default for ImaFixtureSpec {
    fn default() -> Self {
        ImaFixtureSpec {
            entries: 100_000,
            policy_paths: 100_000,
        }
    }
}

/// The generated list, policy and expected PCR 10 values.
#[derive(Debug, Clone)]
pub struct ImaFixture {
    /// ASCII `ascii_runtime_measurements` text, one `\n`-terminated line per entry.
    pub log: String,
    /// The runtime policy accepting every entry.
    pub policy: RuntimePolicy,
    /// The sha256 digest logged for `boot_aggregate` (H over ten zero sha256 PCRs 0–9).
    pub boot_aggregate: [u8; 32],
    /// PCR 10 after the whole list, sha1 bank.
    pub pcr10_sha1: [u8; 20],
    /// PCR 10 after the whole list, sha256 bank.
    pub pcr10_sha256: [u8; 32],
}

/// Path of the `i`-th logged file (1-based; entry 0 is the boot aggregate). Spread over
/// directories like a distribution's file tree.
pub fn logged_path(i: usize) -> String {
    const TREES: &[&str] = &[
        "/usr/bin",
        "/usr/lib64",
        "/usr/libexec",
        "/usr/lib/python3.12/site-packages",
        "/usr/share/locale",
        "/etc",
        "/usr/lib/modules/6.8.0/kernel/drivers",
        "/usr/sbin",
    ];
    let tree = TREES[i % TREES.len()];
    format!("{tree}/pkg{:04}/file{i:06}", (i / 64) % 10_000)
}

/// Path of the `j`-th filler policy entry (never logged).
pub fn filler_path(j: usize) -> String {
    format!("/usr/share/doc/pkg{:04}/unlogged{j:06}", (j / 32) % 10_000)
}

/// The deterministic sha256 "file content digest" of the `i`-th logged file.
pub fn file_digest(i: usize) -> [u8; 32] {
    Sha256::digest(format!("keylime-bench file content {i}").as_bytes()).into()
}

/// Appends the ima-ng template data (`d-ng ‖ n-ng`, PROTOCOL.md §8.1) of a sha256 digest
/// and a name to `out`.
pub fn ima_ng_template_data(digest: &[u8; 32], name: &str, out: &mut Vec<u8>) {
    const ALG: &[u8] = b"sha256:\0";
    out.extend_from_slice(&len_le(ALG.len() + digest.len()));
    out.extend_from_slice(ALG);
    out.extend_from_slice(digest);
    out.extend_from_slice(&len_le(name.len() + 1));
    out.extend_from_slice(name.as_bytes());
    out.push(0);
}

fn len_le(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// The boot aggregate logged by the fixture: sha256 over ten all-zero sha256 PCRs.
pub fn boot_aggregate() -> [u8; 32] {
    let mut h = Sha256::new();
    for _ in 0..10 {
        h.update([0u8; 32]);
    }
    h.finalize().into()
}

/// Generates the fixture for `spec`.
pub fn generate(spec: ImaFixtureSpec) -> ImaFixture {
    let entries = spec.entries.max(1);
    let aggregate = boot_aggregate();
    let mut log = String::with_capacity(entries * 140);
    let mut digests = DigestMap::new();
    let mut pcr_sha1 = [0u8; 20];
    let mut pcr_sha256 = [0u8; 32];
    let mut data = Vec::with_capacity(512);

    for i in 0..entries {
        let (name, digest) = if i == 0 {
            (BOOT_AGGREGATE.to_string(), aggregate)
        } else {
            (logged_path(i), file_digest(i))
        };
        data.clear();
        ima_ng_template_data(&digest, &name, &mut data);
        let th_sha1: [u8; 20] = Sha1::digest(&data).into();
        let th_sha256: [u8; 32] = Sha256::digest(&data).into();
        pcr_sha1 = Sha1::new()
            .chain_update(pcr_sha1)
            .chain_update(th_sha1)
            .finalize()
            .into();
        pcr_sha256 = Sha256::new()
            .chain_update(pcr_sha256)
            .chain_update(th_sha256)
            .finalize()
            .into();
        let digest_hex = hex::encode(digest);
        // writing into a String cannot fail
        let _ = writeln!(
            log,
            "10 {} ima-ng sha256:{digest_hex} {name}",
            hex::encode(th_sha1)
        );
        digests.insert(name, vec![digest_hex]);
    }

    let mut j = 0;
    while digests.len() < spec.policy_paths {
        let filler = filler_path(j);
        let d = Sha256::digest(filler.as_bytes());
        digests.insert(filler, vec![hex::encode(d)]);
        j += 1;
    }

    let policy = RuntimePolicy {
        meta: PolicyMeta {
            version: 1,
            generator: 3,
            timestamp: Some("2026-01-01 00:00:00".into()),
        },
        release: 0,
        digests,
        excludes: EXCLUDES.iter().map(|s| (*s).to_string()).collect(),
        keyrings: DigestMap::new(),
        ima: ImaSection::default(),
        ima_buf: DigestMap::new(),
        verification_keys: String::new(),
    };

    ImaFixture {
        log,
        policy,
        boot_aggregate: aggregate,
        pcr10_sha1: pcr_sha1,
        pcr10_sha256: pcr_sha256,
    }
}

impl ImaFixture {
    /// Entries in the list.
    pub fn entries(&self) -> usize {
        self.log.lines().count()
    }

    /// The expected-values document written beside the fixture: entry and path counts and
    /// PCR 10 per bank in hex.
    pub fn expected_json(&self) -> serde_json::Value {
        serde_json::json!({
            "entries": self.entries(),
            "policy_paths": self.policy.digests.len(),
            "boot_aggregate": hex::encode(self.boot_aggregate),
            "pcr10": {
                "sha1": hex::encode(self.pcr10_sha1),
                "sha256": hex::encode(self.pcr10_sha256),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keylime_ima::{ChainVerifier, EntryCheck, HashAlg, parse_log};

    fn replay(fixture: &ImaFixture) -> ChainVerifier {
        let mut v = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha1, HashAlg::Sha256])
            .expect("sha1 and sha256 are supported");
        for e in parse_log(&fixture.log) {
            let e = e.expect("generated line parses");
            assert_eq!(v.process(&e), EntryCheck::Ok, "line {}", e.line);
        }
        v
    }

    #[test]
    fn pcr10_values_equal_a_keylime_ima_replay() {
        let f = generate(ImaFixtureSpec {
            entries: 500,
            policy_paths: 800,
        });
        let v = replay(&f);
        assert_eq!(v.next_entry(), 500);
        assert_eq!(
            v.value(HashAlg::Sha1).expect("sha1 bank").as_slice(),
            &f.pcr10_sha1
        );
        assert_eq!(
            v.value(HashAlg::Sha256).expect("sha256 bank").as_slice(),
            &f.pcr10_sha256
        );
    }

    #[test]
    fn policy_covers_every_logged_path_and_fillers() {
        let f = generate(ImaFixtureSpec {
            entries: 300,
            policy_paths: 1000,
        });
        assert_eq!(f.policy.digests.len(), 1000);
        for e in parse_log(&f.log) {
            let e = e.expect("generated line parses");
            let allowed = f.policy.digests.get(e.name).expect("path in policy");
            assert_eq!(allowed, &vec![e.digest.digest.to_hex()]);
        }
        let first = parse_log(&f.log)
            .next()
            .expect("one entry")
            .expect("parses");
        assert_eq!(first.name, BOOT_AGGREGATE);
        assert_eq!(first.digest.digest.as_slice(), &f.boot_aggregate);
    }

    #[test]
    fn policy_passes_upstream_schema_rules_and_round_trips() {
        let f = generate(ImaFixtureSpec {
            entries: 50,
            policy_paths: 10,
        });
        // fewer policy paths than logged paths: raised to cover the log
        assert_eq!(f.policy.digests.len(), 50);
        let json = f.policy.to_json();
        let back = RuntimePolicy::from_json(json.as_bytes(), usize::MAX).expect("valid policy");
        assert_eq!(back, f.policy);
        assert!(back.has_runtime_policy());
    }

    #[test]
    fn generation_is_deterministic_and_paths_unique() {
        let spec = ImaFixtureSpec {
            entries: 2000,
            policy_paths: 2500,
        };
        let a = generate(spec);
        let b = generate(spec);
        assert_eq!(a.log, b.log);
        assert_eq!(a.pcr10_sha256, b.pcr10_sha256);
        assert_eq!(a.entries(), 2000);
        let paths: std::collections::BTreeSet<_> =
            parse_log(&a.log).map(|e| e.expect("parses").name).collect();
        assert_eq!(paths.len(), 2000, "logged paths are distinct");
    }

    #[test]
    fn the_ima_check_accepts_the_whole_list_against_the_policy() {
        use keylime_ima::{ImaCheckInput, ImaState, PreparedRuntimePolicy, check};
        let f = generate(ImaFixtureSpec {
            entries: 400,
            policy_paths: 600,
        });
        let prepared = PreparedRuntimePolicy::prepare(&f.policy).expect("policy prepares");
        let quoted = std::collections::BTreeMap::new();
        let mut input = ImaCheckInput {
            list: &f.log,
            first_entry: 0,
            bank: HashAlg::Sha256,
            quoted_pcr10: &f.pcr10_sha256,
            quoted_pcrs: &quoted,
            extra_boot_aggregates: &[],
            policy: Some(&prepared),
            ignore_tomtou_errors: false,
        };
        let verdict = check(&input, &ImaState::default());
        assert!(verdict.passed(), "{:?}", verdict.failures);
        assert_eq!(verdict.next_state.next_entry, 400);
        assert_eq!(verdict.evaluated_entries, 400);

        // the sha1 bank verifies too; a value that is not on the chain does not
        input.bank = HashAlg::Sha1;
        input.quoted_pcr10 = &f.pcr10_sha1;
        assert!(check(&input, &ImaState::default()).passed());
        input.quoted_pcr10 = &f.pcr10_sha256[..20];
        assert!(!check(&input, &ImaState::default()).passed());
    }

    #[test]
    fn a_changed_line_breaks_the_replay() {
        let f = generate(ImaFixtureSpec {
            entries: 3,
            policy_paths: 3,
        });
        let tampered = f.log.replacen("file000002", "file000009", 1);
        let mut v = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha256]).expect("banks");
        let checks: Vec<_> = parse_log(&tampered)
            .map(|e| v.process(&e.expect("parses")))
            .collect();
        assert!(matches!(checks[2], EntryCheck::Mismatch { .. }));
        assert_ne!(
            v.value(HashAlg::Sha256).expect("bank").as_slice(),
            &f.pcr10_sha256
        );
    }
}
