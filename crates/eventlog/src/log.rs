//! The parsed log model and the parser for both on-disk formats: the crypto-agile log
//! (a SHA-1 `TCG_PCClientPCREvent` header carrying the "Spec ID Event03" algorithm table,
//! then `TCG_PCR_EVENT2` records) and the legacy SHA-1-only `TCG_PCR_EVENT` log.
//!
//! The parser never allocates from a size field before checking it against the input that
//! is left, and never panics; event data is kept raw and decoded on demand
//! ([`Event::decode`]), so garbage inside one event's data does not reject the log.

use keylime_tpm::alg::HashAlg;

use crate::error::EventLogError;
use crate::event_type::EventType;
use crate::reader::{Reader, Short};

/// Signature of the crypto-agile Spec ID event.
pub const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
/// Signature of the EV_NO_ACTION event that sets PCR 0's initial locality byte.
pub const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";
/// Algorithms a Spec ID event may list (bounded: real logs list up to 5).
pub const MAX_SPEC_ALGORITHMS: u32 = 64;

/// Which of the two record layouts the log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `TCG_PCR_EVENT2` records after a Spec ID header.
    CryptoAgile,
    /// `TCG_PCR_EVENT` records with one SHA-1 digest each.
    Sha1Legacy,
}

/// One `{algorithmId, digestSize}` row of the Spec ID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecAlgorithm {
    pub alg_id: u16,
    pub digest_size: u16,
}

/// `TCG_EfiSpecIDEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdEvent {
    pub platform_class: u32,
    pub spec_version_minor: u8,
    pub spec_version_major: u8,
    pub spec_errata: u8,
    pub uintn_size: u8,
    pub algorithms: Vec<SpecAlgorithm>,
    pub vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    fn digest_size(&self, alg_id: u16) -> Option<u16> {
        self.algorithms
            .iter()
            .find(|a| a.alg_id == alg_id)
            .map(|a| a.digest_size)
    }
}

/// One digest of an event, by TPM algorithm id (unknown ids are kept, not replayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDigest {
    pub alg_id: u16,
    pub digest: Vec<u8>,
}

impl EventDigest {
    /// The bank this digest extends, if the algorithm is one we hash.
    pub fn hash_alg(&self) -> Option<HashAlg> {
        HashAlg::from_tpm_id(self.alg_id).filter(|h| h.digest_len() == self.digest.len())
    }
}

/// Whether an event's digests match its data, for the event types whose data is what was
/// measured (whole-data firmware events, boot variables, grub and systemd-boot command
/// lines on PCR 8 and 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// Every digest of a known algorithm equals the hash of the event data.
    Matches,
    /// At least one digest differs from the hash of the event data.
    Mismatch,
    /// The type's digest covers something outside the log (images, tables), or no
    /// digest is of a known algorithm: nothing to check.
    NotApplicable,
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the log, the header being 0.
    pub number: usize,
    /// Byte offset of the record in the input.
    pub offset: usize,
    /// PCR index (for confidential-VM logs, the measurement-register index).
    pub pcr: u32,
    pub event_type: EventType,
    pub digests: Vec<EventDigest>,
    /// The raw event data (decode with [`Event::decode`]).
    pub data: Vec<u8>,
    /// Byte offset of `data` in the input.
    pub data_offset: usize,
    pub digest_check: DigestCheck,
}

/// What followed the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailingKind {
    /// Only 0x00/0xFF bytes (firmware pads the log area), or a record with PCR index
    /// 0xFFFFFFFF, which firmware uses to mark the end of the log.
    Padding,
    /// Fewer bytes than an event header.
    Fragment,
}

/// Bytes after the last event that were tolerated rather than parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailing {
    pub offset: usize,
    pub len: usize,
    pub kind: TrailingKind,
}

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    pub format: LogFormat,
    /// The Spec ID event (crypto-agile logs only).
    pub spec_id: Option<SpecIdEvent>,
    /// Every record, the header included.
    pub events: Vec<Event>,
    /// Locality from an EV_NO_ACTION "StartupLocality" event (PCR 0 starts at it).
    pub startup_locality: Option<u8>,
    pub trailing: Option<Trailing>,
}

impl EventLog {
    /// Parse a binary event log (`binary_bios_measurements`, a CCEL log, ...).
    pub fn parse(bytes: &[u8]) -> Result<EventLog, EventLogError> {
        parse(bytes)
    }

    /// Events whose digests do not match their data.
    pub fn mismatched_events(&self) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(|e| e.digest_check == DigestCheck::Mismatch)
    }
}

fn truncated(s: Short) -> EventLogError {
    EventLogError::Truncated {
        offset: s.offset,
        what: s.what,
        needed: usize::try_from(s.needed).unwrap_or(usize::MAX),
        available: s.available,
    }
}

/// Parse a binary event log; see [`EventLog::parse`].
pub fn parse(bytes: &[u8]) -> Result<EventLog, EventLogError> {
    if bytes.is_empty() {
        return Err(EventLogError::Empty);
    }
    let mut r = Reader::new(bytes);
    let header = read_legacy_event(&mut r, 0)?;
    let mut log = EventLog {
        format: LogFormat::Sha1Legacy,
        spec_id: None,
        events: Vec::new(),
        startup_locality: None,
        trailing: None,
    };
    if header.event_type == EventType::EV_NO_ACTION && header.data.starts_with(SPEC_ID_SIGNATURE) {
        // TPM logs put it on PCR 0; confidential-VM (CCEL) logs on measurement register 1.
        log.spec_id = Some(parse_spec_id(&header.data, header.offset)?);
        log.format = LogFormat::CryptoAgile;
    } else if header.event_type.0 > EventType::EV_EFI_VARIABLE_AUTHORITY.0 || header.pcr > 1024 {
        // A legacy first record with an implausible type or index is not a log at all
        // (keeps random files from parsing as a one-event log).
        return Err(EventLogError::BadHeader {
            reason: format!(
                "PCR index {} / event type {:#x} is not a plausible first event",
                header.pcr, header.event_type.0
            ),
        });
    }
    note_locality(&mut log, &header);
    log.events.push(header);

    loop {
        if r.remaining() == 0 {
            break;
        }
        if let Some(t) = trailing_at(&r) {
            log.trailing = Some(t);
            break;
        }
        let number = log.events.len();
        let event = match &log.spec_id {
            Some(spec) => read_agile_event(&mut r, number, spec)?,
            None => read_legacy_event(&mut r, number)?,
        };
        note_locality(&mut log, &event);
        log.events.push(event);
    }
    Ok(log)
}

/// Is what is left tolerated trailing bytes rather than another event?
fn trailing_at(r: &Reader<'_>) -> Option<Trailing> {
    let rest = r.rest();
    let kind = if rest.starts_with(&[0xFF; 4]) || rest.iter().all(|b| *b == 0 || *b == 0xFF) {
        TrailingKind::Padding
    } else if rest.len() < 8 {
        TrailingKind::Fragment
    } else {
        return None;
    };
    Some(Trailing {
        offset: r.pos(),
        len: rest.len(),
        kind,
    })
}

fn note_locality(log: &mut EventLog, event: &Event) {
    if event.event_type == EventType::EV_NO_ACTION
        && event.pcr == 0
        && log.startup_locality.is_none()
        && event.data.len() == 17
        && event.data.starts_with(STARTUP_LOCALITY_SIGNATURE)
    {
        log.startup_locality = event.data.get(16).copied();
    }
}

/// The event data and its offset in the input.
fn event_data(
    r: &mut Reader<'_>,
    number: usize,
    start: usize,
) -> Result<(Vec<u8>, usize), EventLogError> {
    let size = r.u32("eventSize").map_err(truncated)?;
    let available = r.remaining();
    let at = r.pos();
    let data = r
        .take(u64::from(size), "event data")
        .map_err(|_| EventLogError::EventTooLarge {
            event: number,
            offset: start,
            size: u64::from(size),
            available,
        })?;
    Ok((data.to_vec(), at))
}

fn read_legacy_event(r: &mut Reader<'_>, number: usize) -> Result<Event, EventLogError> {
    let offset = r.pos();
    let pcr = r.u32("pcrIndex").map_err(truncated)?;
    let event_type = EventType(r.u32("eventType").map_err(truncated)?);
    let digest: [u8; 20] = r.array("SHA-1 digest").map_err(truncated)?;
    let data = event_data(r, number, offset)?;
    let digests = vec![EventDigest {
        alg_id: HashAlg::Sha1.tpm_id(),
        digest: digest.to_vec(),
    }];
    Ok(finish(number, offset, pcr, event_type, digests, data))
}

fn read_agile_event(
    r: &mut Reader<'_>,
    number: usize,
    spec: &SpecIdEvent,
) -> Result<Event, EventLogError> {
    let offset = r.pos();
    let pcr = r.u32("pcrIndex").map_err(truncated)?;
    let event_type = EventType(r.u32("eventType").map_err(truncated)?);
    let count = r.u32("digests.count").map_err(truncated)?;
    if count as usize > spec.algorithms.len() {
        return Err(EventLogError::DigestCount {
            event: number,
            offset,
            count,
            max: spec.algorithms.len(),
        });
    }
    let mut digests = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let alg_id = r.u16("hashAlg").map_err(truncated)?;
        let size = spec
            .digest_size(alg_id)
            .ok_or(EventLogError::UnknownAlgorithm {
                event: number,
                offset,
                alg: alg_id,
            })?;
        let digest = r.take(u64::from(size), "digest").map_err(truncated)?;
        digests.push(EventDigest {
            alg_id,
            digest: digest.to_vec(),
        });
    }
    let data = event_data(r, number, offset)?;
    Ok(finish(number, offset, pcr, event_type, digests, data))
}

fn finish(
    number: usize,
    offset: usize,
    pcr: u32,
    event_type: EventType,
    digests: Vec<EventDigest>,
    (data, data_offset): (Vec<u8>, usize),
) -> Event {
    let digest_check = crate::digest_check::check(event_type, pcr, &digests, &data);
    Event {
        number,
        offset,
        pcr,
        event_type,
        digests,
        data,
        data_offset,
        digest_check,
    }
}

fn parse_spec_id(data: &[u8], offset: usize) -> Result<SpecIdEvent, EventLogError> {
    let bad = |reason: String| EventLogError::BadSpecId { offset, reason };
    let short = |s: Short| {
        bad(format!(
            "{} truncated at byte {} of the event data",
            s.what, s.offset
        ))
    };
    let mut r = Reader::new(data);
    r.take(16, "signature").map_err(short)?;
    let platform_class = r.u32("platformClass").map_err(short)?;
    let spec_version_minor = r.u8("specVersionMinor").map_err(short)?;
    let spec_version_major = r.u8("specVersionMajor").map_err(short)?;
    let spec_errata = r.u8("specErrata").map_err(short)?;
    let uintn_size = r.u8("uintnSize").map_err(short)?;
    let n = r.u32("numberOfAlgorithms").map_err(short)?;
    if n == 0 || n > MAX_SPEC_ALGORITHMS || (n as usize) * 4 > r.remaining() {
        return Err(bad(format!(
            "numberOfAlgorithms {n} is zero, above {MAX_SPEC_ALGORITHMS} or beyond the event data"
        )));
    }
    let mut algorithms = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let alg_id = r.u16("algorithmId").map_err(short)?;
        let digest_size = r.u16("digestSize").map_err(short)?;
        if let Some(h) = HashAlg::from_tpm_id(alg_id)
            && h.digest_len() != usize::from(digest_size)
        {
            return Err(bad(format!(
                "{h} listed with digest size {digest_size} (must be {})",
                h.digest_len()
            )));
        }
        if algorithms
            .iter()
            .any(|a: &SpecAlgorithm| a.alg_id == alg_id)
        {
            return Err(bad(format!("algorithm {alg_id:#06x} listed twice")));
        }
        algorithms.push(SpecAlgorithm {
            alg_id,
            digest_size,
        });
    }
    // Some firmware (and tpm2-tools' fixture) ends the event at vendorInfoSize and puts
    // the vendor bytes outside it; keep what the event holds.
    let vendor_info = match r.u8("vendorInfoSize") {
        Ok(len) => {
            let take = usize::from(len).min(r.remaining());
            r.take(take as u64, "vendorInfo").map_err(short)?.to_vec()
        }
        Err(_) => Vec::new(),
    };
    Ok(SpecIdEvent {
        platform_class,
        spec_version_minor,
        spec_version_major,
        spec_errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}
