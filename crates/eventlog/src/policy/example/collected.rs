//! What the `example` policy's walk over the events carries to its final checks
//! ([`Collected`], with the rules that may match only [`Once`]), and the event tests the
//! rule modules share.

use std::collections::HashSet;

use crate::log::{DigestCheck, Event};
use crate::policy::refstate::Digest;
use crate::policy::violation::Violation;

/// Rules upstream wraps in a `OnceTest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Once {
    NoAction,
    Microcode,
    HandoffTables,
    HandoffTables2,
    Pk,
    Kek,
    Db,
    VendorDb,
    Dbx,
    AuthorityDb,
    AuthorityVendorDb,
    SbatLevel,
    Shim,
    MokListTrusted,
    MokListRt,
    IplMokListTrusted,
    Gpt,
}

/// What the walk over the events collected for the final checks.
#[derive(Default)]
pub(super) struct Collected<'l> {
    pub(super) done: HashSet<Once>,
    pub(super) config_flags: usize,
    pub(super) s_crtms: Vec<&'l Event>,
    pub(super) firmware_blobs: Vec<&'l Event>,
    pub(super) boot_apps: Vec<&'l Event>,
    pub(super) initrds: Vec<&'l Event>,
    pub(super) vmlinuz: Vec<&'l Event>,
    pub(super) cmdlines: Vec<(&'l Event, String)>,
}

impl Collected<'_> {
    pub(super) fn once(&mut self, rule: Once) -> Result<(), Violation> {
        if self.done.insert(rule) {
            Ok(())
        } else {
            Err(Violation::new(
                "appears more than once, and the policy allows it only once",
            ))
        }
    }
}

/// The data of `e` is what was measured (or at least not contradicted by its digests).
pub(super) fn measured_data(e: &Event) -> Result<(), Violation> {
    if e.digest_check == DigestCheck::Mismatch {
        return Err(Violation::new(
            "has digests that do not match its data, so the data is not what was measured",
        ));
    }
    Ok(())
}

/// One of the event's digests is the approved one (by algorithm name, hex).
pub(super) fn digest_matches(e: &Event, approved: &Digest) -> bool {
    e.digests.iter().any(|d| {
        d.hash_alg()
            .and_then(|alg| approved.get(alg.name()))
            .is_some_and(|want| *want == hex::encode(&d.digest))
    })
}
