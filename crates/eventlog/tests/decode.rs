//! Decoded views of real events: Secure Boot databases, image loads, grub strings.

use keylime_eventlog::{EventData, EventLog, EventType, Guid, SignatureKind};

fn log(rel: &str) -> EventLog {
    EventLog::parse(&std::fs::read(keylime_testkit::testdata(rel)).expect("read")).expect("parse")
}

fn variables(log: &EventLog) -> Vec<keylime_eventlog::EfiVariable> {
    log.events
        .iter()
        .filter_map(|e| match e.decode() {
            Ok(EventData::Variable(v)) => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn secure_boot_databases_decode_to_certificates_and_hashes() {
    let log = log("eventlog/keylime/binary_bios_measurements-secureboot");
    let vars = variables(&log);
    let sb = vars
        .iter()
        .find_map(|v| v.secure_boot())
        .expect("SecureBoot variable");
    assert!(sb);
    let db = vars.iter().find(|v| v.name == "db").expect("db");
    assert_eq!(db.vendor, Guid::IMAGE_SECURITY_DATABASE);
    assert_eq!(
        db.vendor.to_string(),
        "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
    );
    assert!(db.is_signature_database());
    let lists = db.signature_lists().expect("db lists");
    let certs: Vec<&[u8]> = lists
        .iter()
        .filter(|l| l.kind() == SignatureKind::X509)
        .flat_map(|l| l.signatures.iter().map(|s| s.data.as_slice()))
        .collect();
    assert!(!certs.is_empty());
    for c in certs {
        assert_eq!(
            c.first(),
            Some(&0x30),
            "DER certificate starts with a SEQUENCE"
        );
    }
    let dbx = vars.iter().find(|v| v.name == "dbx").expect("dbx");
    let hashes: usize = dbx
        .signature_lists()
        .expect("dbx lists")
        .iter()
        .filter(|l| l.kind() == SignatureKind::Sha256)
        .map(|l| {
            assert!(l.signatures.iter().all(|s| s.data.len() == 32));
            l.signatures.len()
        })
        .sum();
    assert!(hashes > 0, "dbx holds SHA-256 hashes");
    for name in ["PK", "KEK"] {
        let v = vars.iter().find(|v| v.name == name).expect(name);
        assert!(v.signature_lists().is_ok(), "{name} lists decode");
    }
}

#[test]
fn boot_applications_grub_strings_and_crtm_version() {
    let log = log("eventlog/keylime/binary_bios_measurements-secureboot");
    let mut paths = Vec::new();
    let mut texts = Vec::new();
    for e in &log.events {
        match e.decode().expect("decodes") {
            EventData::ImageLoad(img)
                if e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION =>
            {
                assert!(img.length_in_memory > 0);
                paths.push(img.file_path());
            }
            EventData::Text(t) => texts.push((e.event_type, t)),
            _ => {}
        }
    }
    assert!(
        paths
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("shim")),
        "{paths:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(ty, t)| *ty == EventType::EV_IPL && t.starts_with("grub_cmd"))
    );
    assert!(
        texts
            .iter()
            .any(|(ty, t)| *ty == EventType::EV_S_CRTM_VERSION && t.contains("edk2"))
    );
}
