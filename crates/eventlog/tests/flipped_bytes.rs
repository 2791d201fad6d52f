//! A real secure-boot log with one byte flipped at a time, each flip classified by the
//! parsed structure of the intact log (which event, which field) and its outcome checked:
//! a flip in a field something measures must fail parsing, change the replayed PCRs, or
//! fail the event's digest check; the measured-boot verdict must then name exactly the
//! policy PCRs whose replay no longer matches the quote. Flips in fields nothing measures
//! (event types, `EV_NO_ACTION` records, data whose digest covers something outside the
//! log, the Spec ID's descriptive fields) are counted and shown to leave the replay as it
//! was whenever the verdict passes.

use std::collections::{BTreeMap, BTreeSet};

use keylime_eventlog::{
    DigestCheck, EXAMPLE_POLICY_PCRS, EventLog, EventType, HashAlg, MbVerdict, PcrBanks,
    PreparedMbPolicy, check, refstate_from_log, replay,
};

const LOG: &str = "eventlog/keylime-tests/mb_log_secureboot.bin";
const FLIP: u8 = 0xA5;
/// Every byte of the record structure is flipped; of event data (most of the log), every
/// `DATA_STRIDE`-th byte, which still reaches every event with data.
const DATA_STRIDE: usize = 17;

/// What a byte of the intact log is, as far as measurement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    /// `pcrIndex` of an event that is extended: the measurement lands elsewhere.
    Pcr,
    /// A digest of an event that is extended: it feeds the replayed PCR.
    Digest,
    /// Data whose hash is the event's digest (its digest check matched).
    DigestedData,
    /// Record framing: digest count, algorithm ids, event sizes, the Spec ID signature,
    /// algorithm table and its length.
    Framing,
    /// Nothing measures it; the reason.
    Unmeasured(&'static str),
}

/// What a flip did to the log.
#[derive(Debug, Default)]
struct Outcome {
    parse_error: bool,
    /// Banks and PCRs whose replay differs from the intact log's.
    replay_changed: BTreeSet<(HashAlg, u32)>,
    /// Events whose digest check newly fails.
    new_mismatches: BTreeSet<usize>,
}

impl Outcome {
    fn detected(&self) -> bool {
        self.parse_error || !self.replay_changed.is_empty() || !self.new_mismatches.is_empty()
    }
}

struct Fixture {
    bytes: Vec<u8>,
    log: EventLog,
    banks: PcrBanks,
    quoted: BTreeMap<u8, Vec<u8>>,
    policy: PreparedMbPolicy,
    fields: Vec<Field>,
}

fn fixture() -> Fixture {
    let bytes = std::fs::read(keylime_testkit::testdata(LOG)).expect("read the test log");
    let log = EventLog::parse(&bytes).expect("the intact log parses");
    assert_eq!(
        log.mismatched_events().count(),
        0,
        "the intact log is consistent"
    );
    let banks = replay(&log);
    let quoted = banks[&HashAlg::Sha256]
        .iter()
        .map(|(pcr, v)| (u8::try_from(*pcr).expect("TPM PCR"), v.clone()))
        .collect();
    let refstate = refstate_from_log(&bytes, true).expect("reference state");
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("policy");
    let fields = classify(&bytes, &log);
    Fixture {
        bytes,
        log,
        banks,
        quoted,
        policy,
        fields,
    }
}

/// The field of every byte of `bytes`, from the parsed `log`.
fn classify(bytes: &[u8], log: &EventLog) -> Vec<Field> {
    let mut fields = vec![Field::Unmeasured("trailing bytes after the last event"); bytes.len()];
    let mut mark = |from: usize, len: usize, field: Field| {
        fields[from..from + len].fill(field);
    };
    let spec = log.spec_id.as_ref().expect("a crypto-agile log");
    for e in &log.events {
        let at = e.offset;
        let extended = e.event_type != EventType::EV_NO_ACTION;
        let or_unmeasured = |f: Field| {
            if extended {
                f
            } else {
                Field::Unmeasured("EV_NO_ACTION records are not extended")
            }
        };
        mark(at + 4, 4, Field::Unmeasured("the event type is not hashed"));
        if e.number == 0 {
            // TCG_PCR_EVENT: pcrIndex, eventType, SHA-1 digest, eventSize, Spec ID data.
            mark(at, 4, Field::Unmeasured("the header is not extended"));
            mark(at + 8, 20, Field::Unmeasured("the header is not extended"));
            mark(at + 28, 4, Field::Framing);
            let d = e.data_offset;
            let table = 4 * spec.algorithms.len();
            mark(d, 16, Field::Framing); // signature: crypto-agile or legacy
            mark(
                d + 16,
                8,
                Field::Unmeasured("Spec ID platform class and versions"),
            );
            mark(d + 24, 4 + table, Field::Framing);
            let vendor = e.data.len() - (28 + table);
            mark(
                d + 28 + table,
                vendor,
                Field::Unmeasured("Spec ID vendor info"),
            );
            continue;
        }
        mark(at, 4, or_unmeasured(Field::Pcr));
        mark(at + 8, 4, Field::Framing);
        let mut p = at + 12;
        for d in &e.digests {
            mark(p, 2, Field::Framing);
            mark(p + 2, d.digest.len(), or_unmeasured(Field::Digest));
            p += 2 + d.digest.len();
        }
        mark(p, 4, Field::Framing);
        assert_eq!(p + 4, e.data_offset, "event {} layout", e.number);
        match e.digest_check {
            DigestCheck::Matches => {
                let (from, to) = digested_span(e);
                mark(
                    e.data_offset,
                    e.data.len(),
                    Field::Unmeasured("data around what the digest covers"),
                );
                mark(e.data_offset + from, to - from, Field::DigestedData);
            }
            _ if !extended => mark(
                e.data_offset,
                e.data.len(),
                Field::Unmeasured("EV_NO_ACTION data"),
            ),
            _ => mark(
                e.data_offset,
                e.data.len(),
                Field::Unmeasured("the digest covers something outside the log"),
            ),
        }
    }
    fields
}

/// The part of an event's data its SHA-256 digest is the hash of: the whole data, or (as
/// firmware and boot loaders measure) a boot variable's value, a command line without its
/// prefix, the data without trailing NULs.
fn digested_span(e: &keylime_eventlog::Event) -> (usize, usize) {
    let digest = e
        .digests
        .iter()
        .find(|d| d.hash_alg() == Some(HashAlg::Sha256))
        .map(|d| d.digest.as_slice())
        .expect("a SHA-256 digest");
    let data = &e.data;
    let trimmed = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    (0..=data.len())
        .flat_map(|from| [(from, data.len()), (from, trimmed.max(from))])
        .find(|(from, to)| HashAlg::Sha256.digest(&data[*from..*to]) == digest)
        .unwrap_or_else(|| {
            panic!(
                "event {}: no part of the data hashes to its digest",
                e.number
            )
        })
}

fn outcome(f: &Fixture, flipped: &[u8]) -> Outcome {
    let Ok(log) = EventLog::parse(flipped) else {
        return Outcome {
            parse_error: true,
            ..Outcome::default()
        };
    };
    let banks = replay(&log);
    let mut replay_changed = BTreeSet::new();
    for (alg, pcrs) in f.banks.iter().chain(&banks) {
        for pcr in pcrs.keys() {
            let before = f.banks.get(alg).and_then(|b| b.get(pcr));
            let after = banks.get(alg).and_then(|b| b.get(pcr));
            if before != after {
                replay_changed.insert((*alg, *pcr));
            }
        }
    }
    let new_mismatches = log
        .mismatched_events()
        .map(|e| e.number)
        .filter(|n| {
            f.log
                .events
                .get(*n)
                .is_none_or(|e| e.digest_check != DigestCheck::Mismatch)
        })
        .collect();
    Outcome {
        parse_error: false,
        replay_changed,
        new_mismatches,
    }
}

fn ids(v: &MbVerdict) -> Vec<String> {
    v.failures.iter().map(|f| f.event_id()).collect()
}

/// What the verdict must say given the outcome: a parser failure, or exactly the policy
/// PCRs whose SHA-256 replay now differs from the quote.
fn check_verdict(at: usize, field: Field, o: &Outcome, v: &MbVerdict) {
    if o.parse_error {
        assert_eq!(
            ids(v),
            ["measured_boot.parser.tpm2_eventlog.error"],
            "byte {at} ({field:?})"
        );
        return;
    }
    let want: BTreeSet<String> = o
        .replay_changed
        .iter()
        .filter(|(alg, pcr)| {
            *alg == HashAlg::Sha256 && EXAMPLE_POLICY_PCRS.iter().any(|p| u32::from(*p) == *pcr)
        })
        .map(|(_, pcr)| format!("measured_boot.invalid_pcr_{pcr}"))
        .collect();
    let got: BTreeSet<String> = ids(v)
        .into_iter()
        .filter(|id| id.contains("invalid_pcr_"))
        .collect();
    assert_eq!(got, want, "byte {at} ({field:?}): {:?}", v.failures);
    if want.is_empty() {
        assert!(v.evaluated, "byte {at} ({field:?}): policy evaluated");
    }
}

#[test]
fn every_flipped_byte_is_caught_or_lies_in_a_field_nothing_measures() {
    let f = fixture();
    let mut measured = BTreeMap::<Field, usize>::new();
    let mut unmeasured = BTreeMap::<&str, (usize, usize)>::new();
    let mut caught_by_policy_only = 0;
    for at in 0..f.bytes.len() {
        let field = f.fields[at];
        let data = f
            .log
            .events
            .iter()
            .any(|e| (e.data_offset..e.data_offset + e.data.len()).contains(&at));
        if data && at % DATA_STRIDE != 0 {
            continue;
        }
        let mut flipped = f.bytes.clone();
        flipped[at] ^= FLIP;
        let o = outcome(&f, &flipped);
        let v = check(&flipped, HashAlg::Sha256, &f.quoted, &f.policy);
        check_verdict(at, field, &o, &v);
        match field {
            Field::Unmeasured(why) => {
                let entry = unmeasured.entry(why).or_default();
                entry.0 += 1;
                if !o.detected() {
                    entry.1 += 1;
                    caught_by_policy_only += usize::from(!v.failures.is_empty());
                }
            }
            Field::Pcr | Field::Digest => {
                assert!(
                    o.parse_error || !o.replay_changed.is_empty(),
                    "byte {at} ({field:?}) changed no replayed PCR"
                );
                *measured.entry(field).or_default() += 1;
            }
            Field::DigestedData => {
                assert!(
                    o.new_mismatches.len() == 1 && o.replay_changed.is_empty(),
                    "byte {at} (data): {o:?}"
                );
                *measured.entry(field).or_default() += 1;
            }
            Field::Framing => {
                assert!(o.detected(), "byte {at} (framing) went unnoticed");
                *measured.entry(field).or_default() += 1;
            }
        }
    }
    eprintln!(
        "flipped {} of {} bytes",
        measured.values().sum::<usize>() + unmeasured.values().map(|u| u.0).sum::<usize>(),
        f.bytes.len()
    );
    eprintln!("measured fields, every flip caught: {measured:?}");
    eprintln!(
        "unmeasured fields (flips, of which left parse, replay and digests alone): {unmeasured:?}"
    );
    eprintln!("of those unnoticed flips, the example policy still refused {caught_by_policy_only}");
    for field in [
        Field::Pcr,
        Field::Digest,
        Field::DigestedData,
        Field::Framing,
    ] {
        assert!(
            measured.get(&field).is_some_and(|n| *n > 0),
            "no {field:?} byte flipped"
        );
    }
}

/// The first event of `ty` on `pcr` in the intact log.
fn first_event(f: &Fixture, pcr: u32, ty: EventType) -> &keylime_eventlog::Event {
    f.log
        .events
        .iter()
        .find(|e| e.pcr == pcr && e.event_type == ty)
        .unwrap_or_else(|| panic!("no {ty} on PCR {pcr}"))
}

#[test]
fn a_flipped_boot_application_digest_is_an_invalid_pcr_4() {
    let f = fixture();
    let e = first_event(&f, 4, EventType::EV_EFI_BOOT_SERVICES_APPLICATION);
    let sha256 = e
        .digests
        .iter()
        .position(|d| d.hash_alg() == Some(HashAlg::Sha256))
        .expect("a SHA-256 digest");
    // pcrIndex, eventType, count, then (algId, digest) pairs
    let at = e.offset
        + 12
        + (0..sha256)
            .map(|i| 2 + e.digests[i].digest.len())
            .sum::<usize>()
        + 2;
    let mut flipped = f.bytes.clone();
    flipped[at + 7] ^= FLIP;
    let v = check(&flipped, HashAlg::Sha256, &f.quoted, &f.policy);
    assert_eq!(ids(&v), ["measured_boot.invalid_pcr_4"]);
    assert_eq!(v.failures[0].context["got"], hex::encode(&f.quoted[&4]));
    assert!(
        !v.evaluated,
        "the policy is not evaluated on a log the quote contradicts"
    );
}

#[test]
fn a_flipped_secure_boot_variable_fails_its_digest_check_and_the_policy() {
    let f = fixture();
    let e = first_event(&f, 7, EventType::EV_EFI_VARIABLE_DRIVER_CONFIG);
    assert_eq!(e.digest_check, DigestCheck::Matches);
    let mut flipped = f.bytes.clone();
    flipped[e.data_offset + e.data.len() - 1] ^= FLIP;
    let parsed = EventLog::parse(&flipped).expect("still parses");
    assert_eq!(
        parsed
            .mismatched_events()
            .map(|m| m.number)
            .collect::<Vec<_>>(),
        [e.number]
    );
    assert_eq!(
        replay(&parsed),
        f.banks,
        "the PCRs are those the quote shows"
    );
    let v = check(&flipped, HashAlg::Sha256, &f.quoted, &f.policy);
    assert_eq!(ids(&v), ["measured_boot.policy_example"]);
    let reason = v.failures[0].context["reason"].as_str().unwrap();
    assert!(reason.contains("do not match its data"), "{reason}");
}
