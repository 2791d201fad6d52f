//! `keylime-policy inspect eventlog`: a log as JSON in the field names `tpm2_eventlog`
//! prints (`EventNum`, `PCRIndex`, `EventType`, `Digests[{AlgorithmId, Digest}]`,
//! `EventSize`, `Event`), the replayed PCRs of every bank, and a YAML-like text form.
//!
//! Deviations from tpm2-tools, all in the direction of saying more: an event type without
//! a TCG name prints as its number, an unknown digest algorithm as its id, and `warnings`
//! lists events whose digest does not match their data or whose data does not decode.

use serde_json::{Map, Value, json};

use crate::efi::SignatureList;
use crate::error::EventLogError;
use crate::log::{DigestCheck, Event, EventLog};
use crate::replay::replay;
use crate::view::{Body, GptView, ImageView, VarData, VariableView};

/// The log as JSON: `{"pcrs": {bank: {"0": "0x..", ..}}, "events": [...], "warnings": [...]}`.
pub fn inspect_json(log: &[u8]) -> Result<Value, EventLogError> {
    let parsed = EventLog::parse(log)?;
    let mut warnings = Vec::new();
    let events: Vec<Value> = parsed
        .events
        .iter()
        .map(|e| event_json(&parsed, e, &mut warnings))
        .collect();
    let pcrs: Map<String, Value> = replay(&parsed)
        .into_iter()
        .map(|(alg, values)| {
            let values: Map<String, Value> = values
                .into_iter()
                .map(|(pcr, v)| {
                    (
                        pcr.to_string(),
                        Value::String(format!("0x{}", hex::encode(v))),
                    )
                })
                .collect();
            (alg.name().to_string(), Value::Object(values))
        })
        .collect();
    Ok(json!({ "events": events, "pcrs": pcrs, "warnings": warnings }))
}

/// The same content as [`inspect_json`], as indented `key: value` text.
pub fn inspect_text(log: &[u8]) -> Result<String, EventLogError> {
    let value = inspect_json(log)?;
    let mut out = String::new();
    write_text(&mut out, &value, 0);
    Ok(out)
}

fn event_type_name(e: &Event) -> String {
    e.event_type
        .name()
        .map_or_else(|| format!("{:#010x}", e.event_type.0), str::to_string)
}

fn event_json(log: &EventLog, e: &Event, warnings: &mut Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("EventNum".into(), json!(e.number));
    m.insert("PCRIndex".into(), json!(e.pcr));
    m.insert("EventType".into(), json!(event_type_name(e)));
    let body = e.view();
    if let (Body::SpecId, Some(spec)) = (&body, &log.spec_id) {
        let digest = e.digests.first().map(|d| hex::encode(&d.digest));
        m.insert("Digest".into(), json!(digest.unwrap_or_default()));
        m.insert("EventSize".into(), json!(e.data.len()));
        let algorithms: Vec<Value> = spec
            .algorithms
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // tpm2-tools prints each as `- Algorithm[i]:` followed by the fields, which
                // reads back as a null `Algorithm[i]` key beside them.
                let mut m = Map::new();
                m.insert(format!("Algorithm[{i}]"), Value::Null);
                m.insert("algorithmId".into(), json!(alg_name(a.alg_id)));
                m.insert("digestSize".into(), json!(a.digest_size));
                Value::Object(m)
            })
            .collect();
        let mut id = json!({
            "Signature": "Spec ID Event03",
            "platformClass": spec.platform_class,
            "specVersionMinor": spec.spec_version_minor,
            "specVersionMajor": spec.spec_version_major,
            "specErrata": spec.spec_errata,
            "uintnSize": spec.uintn_size,
            "numberOfAlgorithms": spec.algorithms.len(),
            "Algorithms": algorithms,
            "vendorInfoSize": spec.vendor_info.len(),
        });
        if !spec.vendor_info.is_empty() {
            id["vendorInfo"] = json!(hex::encode(&spec.vendor_info));
        }
        m.insert("SpecID".into(), json!([id]));
        return Value::Object(m);
    }
    m.insert("DigestCount".into(), json!(e.digests.len()));
    let digests: Vec<Value> = e
        .digests
        .iter()
        .map(|d| json!({ "AlgorithmId": alg_name(d.alg_id), "Digest": hex::encode(&d.digest) }))
        .collect();
    m.insert("Digests".into(), Value::Array(digests));
    m.insert("EventSize".into(), json!(e.data.len()));
    if e.digest_check == DigestCheck::Mismatch {
        warnings.push(json!(format!(
            "Event {}'s digest does not match its payload",
            e.number
        )));
    }
    if let Some(event) = body_json(&body, e, warnings) {
        m.insert("Event".into(), event);
    }
    Value::Object(m)
}

fn alg_name(id: u16) -> String {
    crate::HashAlg::from_tpm_id(id).map_or_else(|| format!("{id:#06x}"), |h| h.name().to_string())
}

fn body_json(body: &Body<'_>, e: &Event, warnings: &mut Vec<Value>) -> Option<Value> {
    Some(match body {
        Body::Empty | Body::SpecId => return None,
        Body::StartupLocality(l) => json!({ "StartupLocality": l }),
        Body::Hex(b) => json!(hex::encode(b)),
        Body::Text(s) => json!(s),
        Body::Ipl(s) => json!({ "String": s }),
        Body::Blob { base, length } => json!({ "BlobBase": base, "BlobLength": length }),
        Body::Blob2 {
            description,
            base,
            length,
        } => json!({
            "BlobDescriptionSize": description.len(),
            "BlobDescription": hex::encode(description),
            "BlobBase": base,
            "BlobLength": length,
        }),
        Body::Image(img) => image_json(img),
        Body::Variable(var) => variable_json(var, e, warnings),
        Body::Gpt(gpt) => gpt_json(gpt),
        Body::Malformed(why) => {
            warnings.push(json!(format!("Event {}: {why}", e.number)));
            json!(hex::encode(&e.data))
        }
    })
}

fn image_json(img: &ImageView) -> Value {
    json!({
        "ImageLocationInMemory": img.location,
        "ImageLengthInMemory": img.length,
        "ImageLinkTimeAddress": img.link_time_address,
        "LengthOfDevicePath": img.path_length,
        "DevicePath": img.device_path,
    })
}

fn signature_list_json(list: &SignatureList) -> Value {
    let sig_size = list.signatures.first().map_or(16, |s| 16 + s.data.len());
    let keys: Vec<Value> = list
        .signatures
        .iter()
        .map(|s| json!({ "SignatureOwner": s.owner.to_string(), "SignatureData": hex::encode(&s.data) }))
        .collect();
    json!({
        "SignatureType": list.signature_type.to_string(),
        "SignatureListSize": 28 + list.header.len() + sig_size * list.signatures.len(),
        "SignatureHeaderSize": list.header.len(),
        "SignatureSize": sig_size,
        "Keys": keys,
    })
}

fn variable_json(var: &VariableView<'_>, e: &Event, warnings: &mut Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("VariableName".into(), json!(var.guid.to_string()));
    m.insert("UnicodeNameLength".into(), json!(var.name_length));
    m.insert("VariableDataLength".into(), json!(var.data_length));
    m.insert("UnicodeName".into(), json!(var.name));
    let data = match &var.data {
        VarData::Absent => None,
        VarData::Hex(b) => Some(json!(hex::encode(b))),
        VarData::Enabled(on) => Some(json!({ "Enabled": if *on { "Yes" } else { "No" } })),
        VarData::SignatureLists(None) => Some(Value::Null),
        VarData::SignatureLists(Some(lists)) => {
            Some(Value::Array(lists.iter().map(signature_list_json).collect()))
        }
        VarData::Signatures(sigs) => Some(Value::Array(
            sigs.iter()
                .map(|s| json!({ "SignatureOwner": s.owner.to_string(), "SignatureData": hex::encode(&s.data) }))
                .collect(),
        )),
        VarData::Text(s) => Some(json!({ "String": s })),
        VarData::BootOrder(order) => Some(Value::Array(
            order.iter().map(|n| json!(format!("Boot{n:04x}"))).collect(),
        )),
        VarData::BootOption {
            enabled,
            file_path_list_length,
            description,
            device_path,
        } => Some(json!({
            "Enabled": if *enabled { "Yes" } else { "No" },
            "FilePathListLength": file_path_list_length,
            "Description": description,
            "DevicePath": device_path,
        })),
        VarData::Malformed(why) => {
            warnings.push(json!(format!("Event {}: {why}", e.number)));
            Some(Value::Null)
        }
    };
    if let Some(data) = data {
        m.insert("VariableData".into(), data);
    }
    Value::Object(m)
}

fn gpt_json(g: &GptView) -> Value {
    let partitions: Vec<Value> = g
        .partitions
        .iter()
        .map(|p| {
            json!({
                "PartitionTypeGUID": p.type_guid.to_string(),
                "UniquePartitionGUID": p.unique_guid.to_string(),
                "StartingLBA": p.starting_lba,
                "EndingLBA": p.ending_lba,
                "Attributes": p.attributes,
                "PartitionName": p.name,
            })
        })
        .collect();
    json!({
        "Header": {
            "Signature": g.signature,
            "Revision": g.revision,
            "HeaderSize": g.header_size,
            "HeaderCRC32": g.header_crc32,
            "MyLBA": g.my_lba,
            "AlternateLBA": g.alternate_lba,
            "FirstUsableLBA": g.first_usable_lba,
            "LastUsableLBA": g.last_usable_lba,
            "DiskGUID": g.disk_guid.to_string(),
            "PartitionEntryLBA": g.partition_entry_lba,
            "NumberOfPartitionEntry": g.number_of_partition_entries,
            "SizeOfPartitionEntry": g.size_of_partition_entry,
            "PartitionEntryArrayCRC32": g.partition_entry_array_crc32,
        },
        "NumberOfPartitions": g.partitions.len(),
        "Partitions": partitions,
    })
}

/// Field order of the text form: tpm2-tools' order, then anything else by name (numbers,
/// such as PCR indexes, numerically).
const FIELD_ORDER: &[&str] = &[
    "warnings",
    "events",
    "EventNum",
    "PCRIndex",
    "EventType",
    "DigestCount",
    "Digests",
    "AlgorithmId",
    "Digest",
    "EventSize",
    "SpecID",
    "Event",
    "VariableName",
    "UnicodeNameLength",
    "VariableDataLength",
    "UnicodeName",
    "VariableData",
    "SignatureType",
    "SignatureListSize",
    "SignatureHeaderSize",
    "SignatureSize",
    "Keys",
    "SignatureOwner",
    "SignatureData",
    "ImageLocationInMemory",
    "ImageLengthInMemory",
    "ImageLinkTimeAddress",
    "LengthOfDevicePath",
    "DevicePath",
    "Signature",
    "Header",
];

fn field_rank(key: &str) -> (usize, u64, &str) {
    let rank = FIELD_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(FIELD_ORDER.len());
    (rank, key.parse().unwrap_or(u64::MAX), key)
}

/// YAML-like rendering: `key: value`, `- ` for list items, two spaces per level.
fn write_text(out: &mut String, v: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(m) => {
            let mut fields: Vec<(&String, &Value)> = m.iter().collect();
            fields.sort_by_key(|(k, _)| field_rank(k));
            for (k, v) in fields {
                if is_scalar(v) {
                    out.push_str(&format!("{pad}{k}: {}\n", scalar(v)));
                } else {
                    out.push_str(&format!("{pad}{k}:\n"));
                    write_text(out, v, indent + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_scalar(item) {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                } else {
                    // The item's first line goes on the `- ` line, the rest aligned below.
                    let mut inner = String::new();
                    write_text(&mut inner, item, indent + 1);
                    let first_pad = "  ".repeat(indent + 1);
                    let inner = inner.strip_prefix(&first_pad).unwrap_or(&inner);
                    out.push_str(&format!("{pad}- {inner}"));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn is_scalar(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.chars().all(|c| !c.is_control() && c != '"' && c != '\\')
                && !s.starts_with(' ')
                && !s.ends_with(' ') =>
        {
            s.clone()
        }
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}
