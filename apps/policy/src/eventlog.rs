//! `keylime-policy create measured-boot` (the reference state an event log implies, for
//! upstream's `example` measured-boot policy) and `keylime-policy inspect eventlog` (events
//! and replayed PCRs). The event-log work is `keylime-eventlog`'s; this module reads the file
//! and writes the result.

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::cli::CreateMeasuredBoot;
use crate::output::{read_input, write_output};

/// Upstream's key order for a reference state.
const REFSTATE_KEYS: [&str; 10] = [
    "has_secureboot",
    "scrtm_and_bios",
    "pk",
    "kek",
    "db",
    "dbx",
    "vendor_db",
    "mokdig",
    "mokxdig",
    "kernels",
];

/// A JSON object written with `order`'s keys first, the rest after.
struct Ordered<'a> {
    map: &'a serde_json::Map<String, Value>,
    order: &'a [&'a str],
}

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.map.len()))?;
        for k in self.order {
            if let Some(v) = self.map.get(*k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.map {
            if !self.order.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Runs `create measured-boot`.
pub fn create_measured_boot(args: &CreateMeasuredBoot) -> anyhow::Result<()> {
    let path = &args.eventlog_file;
    let log = read_input(path, "event log")?;
    let refstate = keylime_eventlog::refstate_from_log(&log, !args.without_secureboot)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let text = match refstate.as_object() {
        Some(map) => keylime_api::pyjson::try_dumps(&Ordered {
            map,
            order: &REFSTATE_KEYS,
        })?,
        None => keylime_api::pyjson::try_dumps(&refstate)?,
    };
    write_output(&args.output, &text, "measured-boot reference state")
}

/// Runs `inspect eventlog`.
pub fn inspect(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let log = read_input(file, "event log")?;
    let text = if json {
        keylime_eventlog::inspect_json(&log).map(|v| v.to_string())
    } else {
        keylime_eventlog::inspect_text(&log)
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    write_output("-", &text, "report")
}
