//! Pairing 4: configuration. Upstream Keylime 7.14.3's verifier and registrar and ours start
//! from the same upstream-format files (`verifier.conf`, `registrar.conf`, `tenant.conf`,
//! `ca.conf`, `logging.conf`: every option of upstream's 2.6 templates, comments, quoted
//! values, Python list literals), the two sets differing only in ports and paths. Both
//! implementations' verifiers take the CA subject and lifetime from `ca.conf` (non-default
//! values here), serve on the configured ports, and each tenant, configured by the other
//! set's `tenant.conf`, lists the other implementation's agents.

use keylime_e2e::cert_store_from_localca;
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::services::{Implementation, start_servers};
use keylime_interop::step;
use keylime_interop::tenant::{our_tenant, upstream_tenant};
use keylime_interop::transcript::Masks;
use keylime_testkit::swtpm::Swtpm;
use x509_parser::prelude::{FromDer, X509Certificate};

const PAIRING: &str = "pairing 4: one upstream-format configuration, both implementations";
const FILES: [&str; 5] = [
    "verifier.conf",
    "registrar.conf",
    "tenant.conf",
    "ca.conf",
    "logging.conf",
];

/// Subject attributes (OID, value), sorted, and validity in days of a PEM certificate.
fn ca_facts(path: &std::path::Path) -> (Vec<(String, String)>, i64) {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let der = keylime_pki::load_certs(path)
        .unwrap_or_else(|e| panic!("{}: {e} ({} bytes)", path.display(), pem.len()));
    let (_, cert) = X509Certificate::from_der(der[0].as_ref()).expect("CA certificate parses");
    let mut subject: Vec<(String, String)> = cert
        .subject()
        .iter_attributes()
        .map(|a| {
            (
                a.attr_type().to_id_string(),
                a.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    subject.sort();
    let v = cert.validity();
    let days = (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400;
    (subject, days)
}

fn masked(set: &ConfigSet, name: &str) -> String {
    let text = std::fs::read_to_string(set.file(name)).unwrap();
    let masks = Masks::default()
        .with_text("dir", &set.dir.display().to_string())
        .with_port("verifier_port", set.verifier_port)
        .with_port("registrar_port", set.registrar_port)
        .with_port("registrar_tls_port", set.registrar_tls_port)
        .with_port("zmq_port", set.zmq_port);
    masks.apply(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_implementations_start_from_the_same_files() {
    let tpm = Swtpm::start_with_ek_certs();
    let work = tempfile::tempdir().unwrap();
    let store = cert_store_from_localca(
        tpm.localca_dir().unwrap(),
        &work.path().join("tpm_cert_store"),
    );
    let opts = ConfigOptions {
        ca_name: "Interop Shared Configuration CA".into(),
        ca_lifetime_days: 1234,
        ..ConfigOptions::default()
    };
    let mut up = ConfigSet::write(&work.path().join("upstream"), &store, &opts);
    let mut ours = ConfigSet::write(&work.path().join("ours"), &store, &opts);

    step(
        PAIRING,
        "the two sets of files differ only in ports and paths",
    );
    for name in FILES {
        assert_eq!(masked(&up, name), masked(&ours, name), "{name}");
    }

    step(
        PAIRING,
        "upstream's verifier and registrar start from one set, ours from the other",
    );
    let (_uv, _ur) =
        start_servers(Implementation::Upstream, Implementation::Upstream, &mut up).await;
    let (_ov, _or) = start_servers(Implementation::Ours, Implementation::Ours, &mut ours).await;

    step(
        PAIRING,
        "both verifiers generated cv_ca with ca.conf's subject and lifetime",
    );
    let (up_subject, up_days) = ca_facts(&up.cv_ca().join("cacert.crt"));
    let (our_subject, our_days) = ca_facts(&ours.cv_ca().join("cacert.crt"));
    assert!(
        up_subject
            .iter()
            .any(|(oid, v)| oid == "2.5.4.3" && v == "Interop Shared Configuration CA"),
        "upstream CA subject: {up_subject:?}"
    );
    assert_eq!(our_subject, up_subject, "CA subject attributes");
    assert!(
        (1233..=1235).contains(&up_days),
        "upstream CA lifetime {up_days} days"
    );
    assert!(
        (1233..=1235).contains(&our_days),
        "our CA lifetime {our_days} days"
    );

    step(
        PAIRING,
        "each tenant, configured by either set's tenant.conf, lists either side",
    );
    for (set, servers) in [(&ours, "our"), (&up, "upstream")] {
        for (command, from) in [("cvlist", "Verifier"), ("reglist", "Registrar")] {
            let run = upstream_tenant(set, &["-c", command]).await;
            assert!(
                run.success(),
                "upstream tenant {command}, {servers} servers:\n{}",
                run.output()
            );
            let list = run.json_after(&format!("Agent list from {from}"));
            assert_eq!(
                list,
                Some(serde_json::json!({"uuids": []})),
                "{}",
                run.output()
            );
            let (ok, doc) = our_tenant(set, &["-c", command]).await;
            assert!(ok, "our tenant {command}, {servers} servers: {doc}");
        }
    }
}
