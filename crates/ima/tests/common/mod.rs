//! Test helpers: a measurement-list writer that builds template data and template hashes
//! itself (from the PROTOCOL.md §8.1 field table, not through the crate) and tracks PCR 10
//! in the sha1 and sha256 banks, plus policy and check-input builders.
#![allow(dead_code)]

use std::collections::BTreeMap;

use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{HashAlg, ImaCheckInput, PreparedRuntimePolicy};
use sha1::Digest as _;

pub fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha1(b: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(b).to_vec()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(b).to_vec()
}

fn u32le(n: usize) -> [u8; 4] {
    (n as u32).to_le_bytes()
}

pub fn d_ng(alg: &str, digest: &[u8]) -> Vec<u8> {
    let mut v = u32le(alg.len() + 2 + digest.len()).to_vec();
    v.extend_from_slice(alg.as_bytes());
    v.extend_from_slice(b":\0");
    v.extend_from_slice(digest);
    v
}

pub fn n_ng(name: &str) -> Vec<u8> {
    let mut v = u32le(name.len() + 1).to_vec();
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v
}

pub fn field(b: &[u8]) -> Vec<u8> {
    let mut v = u32le(b.len()).to_vec();
    v.extend_from_slice(b);
    v
}

/// A file digest for `path` (distinct per path).
pub fn file_digest(path: &str) -> Vec<u8> {
    sha256(path.as_bytes())
}

/// Writes a measurement list and the PCR 10 values it produces.
#[derive(Clone)]
pub struct LogBuilder {
    pub text: String,
    pub entries: u64,
    pcr_sha1: Vec<u8>,
    pcr_sha256: Vec<u8>,
}

impl Default for LogBuilder {
    fn default() -> Self {
        LogBuilder {
            text: String::new(),
            entries: 0,
            pcr_sha1: vec![0; 20],
            pcr_sha256: vec![0; 32],
        }
    }
}

impl LogBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a line with the given template data; column 2 is sha1(data).
    pub fn push(&mut self, pcr: u32, template: &str, fields: &str, data: &[u8]) {
        let th = sha1(data);
        self.text
            .push_str(&format!("{pcr} {} {template} {fields}\n", hexs(&th)));
        self.pcr_sha1 = sha1(&[self.pcr_sha1.as_slice(), &th].concat());
        self.pcr_sha256 = sha256(&[self.pcr_sha256.as_slice(), &sha256(data)].concat());
        self.entries += 1;
    }

    pub fn ima_ng(&mut self, path: &str, alg: &str, digest: &[u8]) {
        let data = [d_ng(alg, digest), n_ng(path)].concat();
        self.push(
            10,
            "ima-ng",
            &format!("{alg}:{} {path}", hexs(digest)),
            &data,
        );
    }

    /// An ima-ng entry for `path` with [`file_digest`].
    pub fn file(&mut self, path: &str) {
        self.ima_ng(path, "sha256", &file_digest(path));
    }

    pub fn ima_sig(&mut self, path: &str, alg: &str, digest: &[u8], sig: &[u8]) {
        let data = [d_ng(alg, digest), n_ng(path), field(sig)].concat();
        let fields = format!("{alg}:{} {path} {}", hexs(digest), hexs(sig));
        self.push(10, "ima-sig", &fields, &data);
    }

    pub fn ima_buf(&mut self, name: &str, buf: &[u8]) {
        let digest = sha256(buf);
        let data = [d_ng("sha256", &digest), n_ng(name), field(buf)].concat();
        let fields = format!("sha256:{} {name} {}", hexs(&digest), hexs(buf));
        self.push(10, "ima-buf", &fields, &data);
    }

    /// A ToMToU violation: all-zero column 2, extended as all-0xFF.
    pub fn violation(&mut self, path: &str) {
        self.text.push_str(&format!(
            "10 {} ima-ng sha256:{} {path}\n",
            "00".repeat(20),
            "00".repeat(32)
        ));
        self.pcr_sha1 = sha1(&[self.pcr_sha1.as_slice(), &[0xff; 20]].concat());
        self.pcr_sha256 = sha256(&[self.pcr_sha256.as_slice(), &[0xff; 32]].concat());
        self.entries += 1;
    }

    pub fn pcr(&self, bank: HashAlg) -> Vec<u8> {
        match bank {
            HashAlg::Sha1 => self.pcr_sha1.clone(),
            HashAlg::Sha256 => self.pcr_sha256.clone(),
            other => panic!("bank {other} not tracked"),
        }
    }
}

/// A generator-3 policy listing `files` with their [`file_digest`].
pub fn policy_for(files: impl IntoIterator<Item = String>) -> RuntimePolicy {
    let mut p = RuntimePolicy::empty();
    p.meta.generator = 3;
    for f in files {
        let d = hexs(&file_digest(&f));
        p.digests.insert(f, vec![d]);
    }
    p
}

pub fn prepare(p: &RuntimePolicy) -> PreparedRuntimePolicy {
    PreparedRuntimePolicy::prepare(p).expect("policy prepares")
}

pub static NO_PCRS: BTreeMap<u8, Vec<u8>> = BTreeMap::new();

/// A check input for `list` quoted with `pcr10` in `bank`.
pub fn input<'a>(
    list: &'a str,
    first_entry: u64,
    bank: HashAlg,
    pcr10: &'a [u8],
    policy: Option<&'a PreparedRuntimePolicy>,
) -> ImaCheckInput<'a> {
    ImaCheckInput {
        list,
        first_entry,
        bank,
        quoted_pcr10: pcr10,
        quoted_pcrs: &NO_PCRS,
        extra_boot_aggregates: &[],
        policy,
        ignore_tomtou_errors: false,
    }
}

/// The failure ids of a verdict.
pub fn ids(v: &keylime_ima::ImaVerdict) -> Vec<&str> {
    v.failures.iter().map(|f| f.id.as_str()).collect()
}
