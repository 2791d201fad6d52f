//! The walk over the received chunk. Its integrity checks decide whether the chunk is a
//! proven chain: every line must parse (with a template upstream accepts), every template
//! hash must cover its fields, and the replay from the stored (or reset) PCR 10 value must
//! reach the quoted value somewhere along the chunk. Entry PCR and ToMToU events are raised
//! here too; they do not break the chain.
//!
//! Each entry is parsed once: while the chain is unbroken, the same parsed entry is handed
//! to the policy evaluator, whose events go to a separate sink that the caller keeps only
//! if the whole chunk turns out to be a proven chain. Once the chain breaks, evaluation
//! stops.

use keylime_tpm::HashAlg;
use serde_json::json;

use super::evaluate::Evaluator;
use super::failures::{FailureSink, ids, message, quoted_line};
use crate::entry::{Entry, Template, parse_line};
use crate::file_signature::{SIGNATURE_HEADER_LEN, SignatureHeaderError};
use crate::hex;
use crate::replay::{ChainVerifier, EntryCheck, QuotedMatch};

/// The PCR IMA extends.
pub(crate) const IMA_PCR: u32 = 10;

/// What pass 1 established.
pub(crate) struct ChainOutcome {
    /// Non-empty lines of the chunk (upstream's `log_length`).
    pub(crate) entries: u64,
    /// Entries whose template hash was checked and which were extended.
    pub(crate) extended: u64,
    /// A line failed to parse or a template hash did not cover its fields.
    pub(crate) broken: bool,
    /// Where the running value equalled the quoted PCR 10.
    pub(crate) matched: Option<QuotedMatch>,
}

/// The non-empty lines of `list` with their 1-based line numbers, split as upstream does
/// (on `\n` only).
pub(crate) fn lines(list: &str) -> impl Iterator<Item = (usize, &str)> {
    list.split('\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, l))
}

/// Checks the header of a non-empty `sig` field without decoding the signature: upstream
/// hashes a field whose header is inconsistent as if it were empty, so such an entry never
/// matches its template hash there.
fn sig_header(sig_hex: &str) -> Result<(), SignatureHeaderError> {
    let len = sig_hex.len() / 2;
    let Some(head_hex) = sig_hex.as_bytes().get(..2 * SIGNATURE_HEADER_LEN) else {
        return Err(SignatureHeaderError::TooShort { len });
    };
    let mut head = [0u8; SIGNATURE_HEADER_LEN];
    // the parser validated the hex
    let _ = hex::decode_into(head_hex, &mut head);
    let announced = usize::from(u16::from_be_bytes([head[7], head[8]]));
    let present = len - SIGNATURE_HEADER_LEN;
    if announced != present {
        return Err(SignatureHeaderError::SizeMismatch { announced, present });
    }
    Ok(())
}

/// Walks `list` with `chain` (already positioned and watching for the quote), handing each
/// entry to `eval` (events into `policy_sink`) while the chain is unbroken.
pub(crate) fn verify_chain(
    list: &str,
    chain: &mut ChainVerifier,
    report_tomtou: bool,
    sink: &mut FailureSink,
    mut eval: Option<(&mut Evaluator<'_>, &mut FailureSink)>,
) -> ChainOutcome {
    let mut out = ChainOutcome {
        entries: 0,
        extended: 0,
        broken: false,
        matched: None,
    };
    for (line_no, text) in lines(list) {
        out.entries += 1;
        let entry = match parse_line(text, line_no) {
            Ok(e) if e.template.accepted_upstream() => e,
            Ok(_) => {
                out.broken = true;
                sink.push(ids::PARSER_ENTRY, || {
                    json!({
                        "message": format!(
                            "Line was not parsable into a valid IMA entry: {}",
                            quoted_line(text)
                        ),
                        "reason": "template ima-modsig is not supported",
                    })
                });
                continue;
            }
            Err(e) => {
                out.broken = true;
                sink.push(ids::PARSER_ENTRY, || {
                    json!({
                        "message": format!(
                            "Line was not parsable into a valid IMA entry: {}",
                            quoted_line(text)
                        ),
                        "reason": e.to_string(),
                    })
                });
                continue;
            }
        };
        // evaluated first so the policy lookup's memory latency overlaps the hashing; if
        // this very entry breaks the chain, the caller drops the events anyway
        if !out.broken
            && let Some((evaluator, policy_sink)) = eval.as_mut()
        {
            evaluator.evaluate(out.entries - 1, &entry, policy_sink);
        }
        check_entry(&entry, chain, report_tomtou, sink, &mut out);
    }
    out.matched = chain.quoted_match().cloned();
    out
}

#[inline]
fn check_entry(
    entry: &Entry<'_>,
    chain: &mut ChainVerifier,
    report_tomtou: bool,
    sink: &mut FailureSink,
    out: &mut ChainOutcome,
) {
    if entry.pcr != IMA_PCR {
        sink.push(ids::IMA_PCR, || {
            json!({
                "message": "IMA PCR is not the configured one",
                "expected": IMA_PCR.to_string(),
                "got": entry.pcr.to_string(),
            })
        });
    }
    if entry.template == Template::ImaSig
        && !entry.sig_hex.is_empty()
        && !entry.is_violation()
        && let Err(e) = sig_header(entry.sig_hex)
    {
        out.broken = true;
        sink.push(ids::IMA_HASH, || {
            message(format!(
                "IMA template hash does not match the calculated hash: the signature of {} is malformed ({e})",
                entry.name
            ))
        });
    }
    out.extended += 1;
    match chain.process(entry) {
        EntryCheck::Ok => {}
        EntryCheck::Violation => {
            if report_tomtou {
                sink.push(ids::TOMTOU, || {
                    message("hash validation was skipped".into())
                });
            }
        }
        EntryCheck::Mismatch { computed } => {
            out.broken = true;
            sink.push(ids::IMA_HASH, || {
                json!({
                    "message": "IMA template hash does not match the calculated hash.",
                    "expected": entry.template_hash.to_hex(),
                    "got": computed.to_hex(),
                    "name": entry.name,
                })
            });
        }
    }
}

/// The template-hash algorithm and bank pair a chain verifier is built for.
pub(crate) fn new_chain(
    log_alg: HashAlg,
    replay: crate::replay::Replay,
) -> Result<ChainVerifier, crate::error::ImaError> {
    ChainVerifier::from_replays(log_alg, vec![replay])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_upstream() {
        let got: Vec<_> = lines("a\n\nb\r\n\nc\n").collect();
        assert_eq!(got, vec![(1, "a"), (3, "b\r"), (5, "c")]);
        assert_eq!(lines("").count(), 0);
    }

    #[test]
    fn signature_headers() {
        assert_eq!(sig_header("030204f3452d230002aabb"), Ok(()));
        assert_eq!(
            sig_header("030204f3452d230003aabb"),
            Err(SignatureHeaderError::SizeMismatch {
                announced: 3,
                present: 2
            })
        );
        assert_eq!(
            sig_header("0302"),
            Err(SignatureHeaderError::TooShort { len: 2 })
        );
        assert_eq!(sig_header("030204f3452d230000"), Ok(()));
    }
}
