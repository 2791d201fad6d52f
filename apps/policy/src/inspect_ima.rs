//! `keylime-policy inspect ima FILE [--json]`: entries per template, violations, template
//! hashes that do not cover their fields, and every PCR the list extends replayed in the
//! sha1, sha256, sha384 and sha512 banks. ASCII and binary lists are told apart by content
//! (the binary list's little-endian PCR index holds NUL bytes); a binary list may end with a
//! few bytes too short to be a record (the kernel's files don't, copies often do), which are
//! reported, not rejected.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use keylime_ima::{
    BinaryEntry, ChainVerifier, EntryCheck, HashAlg, ImaError, ParseErrorKind, TemplateRecord,
    parse_binary_log, parse_log,
};
use serde::Serialize;

/// Banks replayed for every list.
const BANKS: [HashAlg; 4] = [
    HashAlg::Sha1,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

/// PCR index, template digest and name length: a shorter tail cannot start a binary record.
const BINARY_RECORD_HEADER: usize = 4 + 20 + 4;

/// One entry whose logged template hash differs from the hash of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// 1-based position in the list.
    pub entry: usize,
    /// 1-based line (ASCII) or byte offset of the record (binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    pub pcr: u32,
    pub template: String,
    pub name: String,
    pub logged: String,
    pub computed: String,
}

/// The summary of one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImaReport {
    /// `ascii` or `binary`.
    pub format: &'static str,
    pub entries: usize,
    pub templates: BTreeMap<String, usize>,
    pub violations: usize,
    /// Algorithm of the logged template hashes (from their length), `null` for an empty list.
    pub template_hash_alg: Option<String>,
    pub mismatches: Vec<Mismatch>,
    /// bank → PCR index → replayed value (hex).
    pub pcrs: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_bytes: Option<usize>,
}

fn log_alg_for_len(len: usize) -> anyhow::Result<HashAlg> {
    Ok(match len {
        20 => HashAlg::Sha1,
        32 => HashAlg::Sha256,
        48 => HashAlg::Sha384,
        64 => HashAlg::Sha512,
        n => anyhow::bail!("a {n}-byte template hash matches no supported algorithm"),
    })
}

struct Inspector {
    report: ImaReport,
    log_alg: Option<HashAlg>,
    chains: BTreeMap<u32, ChainVerifier>,
}

/// Where a record came from, for mismatch reports.
struct Origin<'a> {
    line: Option<usize>,
    offset: Option<usize>,
    pcr: u32,
    template: &'a str,
    name: String,
}

impl Inspector {
    fn new(format: &'static str) -> Self {
        Inspector {
            report: ImaReport {
                format,
                entries: 0,
                templates: BTreeMap::new(),
                violations: 0,
                template_hash_alg: None,
                mismatches: Vec::new(),
                pcrs: BTreeMap::new(),
                trailing_bytes: None,
            },
            log_alg: None,
            chains: BTreeMap::new(),
        }
    }

    fn add<R: TemplateRecord>(&mut self, rec: &R, origin: Origin<'_>) -> anyhow::Result<()> {
        let log_alg = match self.log_alg {
            Some(a) => a,
            None => {
                let a = log_alg_for_len(rec.logged_template_hash().len())?;
                self.report.template_hash_alg = Some(a.to_string());
                *self.log_alg.insert(a)
            }
        };
        self.report.entries += 1;
        *self
            .report
            .templates
            .entry(origin.template.to_owned())
            .or_default() += 1;
        let chain = match self.chains.entry(origin.pcr) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(ChainVerifier::new(log_alg, &BANKS)?)
            }
        };
        match chain.process(rec) {
            EntryCheck::Ok => {}
            EntryCheck::Violation => self.report.violations += 1,
            EntryCheck::Mismatch { computed } => self.report.mismatches.push(Mismatch {
                entry: self.report.entries,
                line: origin.line,
                offset: origin.offset,
                pcr: origin.pcr,
                template: origin.template.to_owned(),
                name: origin.name,
                logged: rec.logged_template_hash().to_hex(),
                computed: computed.to_hex(),
            }),
        }
        Ok(())
    }

    fn finish(mut self) -> ImaReport {
        for bank in BANKS {
            let values = self
                .chains
                .iter()
                .filter_map(|(pcr, c)| Some((pcr.to_string(), c.value(bank)?.to_hex())))
                .collect();
            self.report.pcrs.insert(bank.to_string(), values);
        }
        self.report
    }
}

fn inspect_ascii(path: &Path, text: &str) -> anyhow::Result<ImaReport> {
    let mut ins = Inspector::new("ascii");
    for entry in parse_log(text) {
        let e = entry.map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        let origin = Origin {
            line: Some(e.line),
            offset: None,
            pcr: e.pcr,
            template: e.template.name(),
            name: e.name.to_owned(),
        };
        ins.add(&e, origin)
            .map_err(|err| anyhow::anyhow!("{} line {}: {err}", path.display(), e.line))?;
    }
    Ok(ins.finish())
}

/// The name field of a binary record's template data, when it can be read (best effort,
/// for mismatch reports only).
fn binary_name(e: &BinaryEntry<'_>) -> String {
    let d = e.stored_data;
    let u32_at = |o: usize| -> Option<usize> {
        let b = d.get(o..o + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let name = if e.template_name == b"ima" {
        u32_at(20).and_then(|n| d.get(24..24 + n))
    } else {
        u32_at(0).and_then(|dlen| {
            let nlen = u32_at(4 + dlen)?;
            d.get(8 + dlen..8 + dlen + nlen)
        })
    };
    name.map(|n| String::from_utf8_lossy(n).trim_end_matches('\0').to_owned())
        .unwrap_or_default()
}

fn inspect_binary(path: &Path, data: &[u8]) -> anyhow::Result<ImaReport> {
    let mut ins = Inspector::new("binary");
    for rec in parse_binary_log(data) {
        let e = match rec {
            Ok(e) => e,
            Err(ImaError::Binary {
                offset,
                kind: ParseErrorKind::Truncated { .. },
                ..
            }) if data.len() - offset.min(data.len()) < BINARY_RECORD_HEADER => {
                ins.report.trailing_bytes = Some(data.len() - offset);
                tracing::warn!(
                    list = %path.display(),
                    bytes = data.len() - offset,
                    "trailing bytes after the last record"
                );
                break;
            }
            Err(err) => anyhow::bail!("{}: {err}", path.display()),
        };
        let template = String::from_utf8_lossy(e.template_name).into_owned();
        let origin = Origin {
            line: None,
            offset: Some(e.offset),
            pcr: e.pcr,
            template: &template,
            name: binary_name(&e),
        };
        ins.add(&e, origin)
            .map_err(|err| anyhow::anyhow!("{} record {}: {err}", path.display(), e.record))?;
    }
    Ok(ins.finish())
}

/// Summarizes the list in `data` (read from `path`, named in errors).
pub fn inspect(path: &Path, data: &[u8]) -> anyhow::Result<ImaReport> {
    if data.contains(&0) {
        return inspect_binary(path, data);
    }
    let text = std::str::from_utf8(data).map_err(|e| {
        anyhow::anyhow!(
            "{} is neither a binary IMA list nor UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.valid_up_to()
        )
    })?;
    inspect_ascii(path, text)
}

/// The report as text.
pub fn render_text(r: &ImaReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "format: {}", r.format);
    let _ = writeln!(s, "entries: {} (violations: {})", r.entries, r.violations);
    for (t, n) in &r.templates {
        let _ = writeln!(s, "  {t}: {n}");
    }
    let alg = r.template_hash_alg.as_deref().unwrap_or("-");
    let _ = writeln!(
        s,
        "template-hash mismatches ({alg}): {}",
        r.mismatches.len()
    );
    for m in &r.mismatches {
        let at = match (m.line, m.offset) {
            (Some(l), _) => format!("line {l}"),
            (_, Some(o)) => format!("byte {o}"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  entry {} ({at}, {}): {} logged {} computed {}",
            m.entry, m.template, m.name, m.logged, m.computed
        );
    }
    let pcrs: std::collections::BTreeSet<&String> =
        r.pcrs.values().flat_map(|m| m.keys()).collect();
    for pcr in pcrs {
        let _ = writeln!(s, "PCR {pcr}:");
        for (bank, values) in &r.pcrs {
            if let Some(v) = values.get(pcr) {
                let _ = writeln!(s, "  {bank:<6} {v}");
            }
        }
    }
    if let Some(n) = r.trailing_bytes {
        let _ = writeln!(s, "trailing bytes: {n}");
    }
    s
}

/// Runs `inspect ima`.
pub fn run(file: &Path, json: bool) -> anyhow::Result<()> {
    let data = crate::output::read_input(file, "IMA measurement list")?;
    let report = inspect(file, &data)?;
    let text = if json {
        serde_json::to_string(&report)?
    } else {
        render_text(&report)
    };
    crate::output::write_output("-", &text, "report")
}
