//! swtpm's own EK certificates: `swtpm_setup --create-ek-cert` with a
//! swtpm-localca configured in a temp dir, EK certs read back from NV with
//! tpm2-tools, verified against the localca's CA certificates.
//! Needs swtpm, swtpm_setup, swtpm_localca and tpm2_nvread; fails if missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keylime_pki::{CertOrigin, EkCertStore, PkiError};

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is required for this test but is not installed");
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the swtpm child when the test ends, whatever happens.
struct Swtpm(Child);
impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn manufacture(dir: &Path) -> PathBuf {
    let ca_dir = dir.join("localca");
    let state = dir.join("state");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let localca_conf = dir.join("swtpm-localca.conf");
    std::fs::write(
        &localca_conf,
        format!(
            "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
            ca = ca_dir.display()
        ),
    )
    .unwrap();
    let localca_opts = dir.join("swtpm-localca.options");
    std::fs::write(
        &localca_opts,
        "--platform-manufacturer Keylime\n--platform-version 2.1\n--platform-model test\n",
    )
    .unwrap();
    let setup_conf = dir.join("swtpm_setup.conf");
    std::fs::write(
        &setup_conf,
        format!(
            "create_certs_tool = {}\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha256\n",
            tool("swtpm_localca").display(),
            localca_conf.display(),
            localca_opts.display()
        ),
    )
    .unwrap();
    run(Command::new(tool("swtpm_setup"))
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(&state)
        .arg("--create-ek-cert")
        .arg("--config")
        .arg(&setup_conf)
        .arg("--overwrite"));
    ca_dir
}

fn read_nv_certs(dir: &Path) -> Vec<(u32, Vec<u8>)> {
    let sock = dir.join("tpm.sock");
    let ctrl = dir.join("tpm.sock.ctrl");
    let child = Command::new(tool("swtpm"))
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", dir.join("state").display()))
        .arg("--server")
        .arg(format!("type=unixio,path={}", sock.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", ctrl.display()))
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting swtpm");
    let _guard = Swtpm(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(sock.exists() && ctrl.exists()) {
        assert!(
            Instant::now() < deadline,
            "swtpm did not create its sockets"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut certs = Vec::new();
    // RSA 2048 EK cert and ECC (P-384 for swtpm 0.7) EK cert indices.
    for index in [0x01c0_0002u32, 0x01c0_0016] {
        let out = dir.join(format!("{index:08x}.der"));
        run(Command::new(tool("tpm2_nvread"))
            .arg("-T")
            .arg(format!("swtpm:path={}", sock.display()))
            .arg(format!("{index:#x}"))
            .arg("-o")
            .arg(&out)
            .stderr(Stdio::null()));
        certs.push((index, std::fs::read(&out).unwrap()));
    }
    certs
}

#[test]
fn swtpm_localca_ek_certs_verify_against_localca() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = manufacture(tmp.path());
    let certs = read_nv_certs(tmp.path());

    // Store = the localca's root and its intermediate ("issuercert").
    let store_dir = tmp.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    for f in ["swtpm-localca-rootca-cert.pem", "issuercert.pem"] {
        std::fs::copy(ca_dir.join(f), store_dir.join(f)).unwrap();
    }
    // A non-certificate file must be skipped, not fail the load.
    std::fs::write(store_dir.join("README"), "not a certificate").unwrap();
    let store = EkCertStore::load(&store_dir).unwrap();
    assert_eq!(store.len(), 2);

    for (index, der) in &certs {
        let v = store
            .verify(der)
            .unwrap_or_else(|e| panic!("EK cert at NV {index:#x}: {e}"));
        assert_eq!(v.anchor, "issuercert.pem", "NV {index:#x}");
        assert!(v.reaches_root, "NV {index:#x}: {v:?}");
        assert_eq!(
            v.chain.last().unwrap().origin,
            CertOrigin::Store("swtpm-localca-rootca-cert.pem".into())
        );
        // The SPKI extraction works on these certs too (registrar compares it to ek_tpm).
        let spki = keylime_pki::ek_cert_public_key_spki(der).unwrap();
        assert!(spki.len() > 64);
    }

    // Only the root in the store, intermediate passed in as an NV chain cert would be.
    let root_only = tmp.path().join("root-only");
    std::fs::create_dir(&root_only).unwrap();
    std::fs::copy(
        ca_dir.join("swtpm-localca-rootca-cert.pem"),
        root_only.join("root.pem"),
    )
    .unwrap();
    let store = EkCertStore::load(&root_only).unwrap();
    let (_, rsa_ek) = &certs[0];
    assert!(matches!(
        store.verify(rsa_ek).unwrap_err(),
        PkiError::UnknownIssuer { .. }
    ));
    let inter =
        keylime_pki::pem_or_der_to_der_list(&std::fs::read(ca_dir.join("issuercert.pem")).unwrap())
            .unwrap();
    let opts = keylime_pki::EkVerifyOptions {
        intermediates: inter,
        ..Default::default()
    };
    let v = store.verify_with(rsa_ek, &opts).unwrap();
    assert_eq!(v.chain[1].origin, CertOrigin::Intermediate(0));

    // The real vendor store does not know swtpm's CA.
    let vendor = EkCertStore::load(&keylime_testkit::testdata("certs/tpm_cert_store")).unwrap();
    assert!(matches!(
        vendor.verify(rsa_ek).unwrap_err(),
        PkiError::UnknownIssuer { .. }
    ));
}
