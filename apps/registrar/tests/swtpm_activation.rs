//! The registrar's credential blob checked by a real TPM: EK and AK are created in swtpm
//! with tpm2-tools, registered, the blob is activated with `tpm2_activatecredential`, and
//! the resulting tag must be accepted. Fails loudly when swtpm or tpm2-tools is missing.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use keylime_testkit::Swtpm;
use serde_json::json;

fn tpm2(tpm: &Swtpm, dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env("TPM2TOOLS_TCTI", tpm.tcti_string())
        .output()
        .unwrap_or_else(|e| panic!("{} must be installed: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn activate_with_swtpm(ek_alg: &str) {
    let state = tempfile::tempdir().unwrap();
    let work = state.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let tpm = Swtpm::start();
    tpm2(
        &tpm,
        &work,
        &[
            "tpm2_createek",
            "-c",
            "ek.ctx",
            "-G",
            ek_alg,
            "-u",
            "ek.pub",
        ],
    );
    tpm2(
        &tpm,
        &work,
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ],
    );
    // swtpm has no resource manager: drop the transient objects tpm2-tools left loaded.
    tpm2(&tpm, &work, &["tpm2_flushcontext", "-t"]);
    let ek_pub = std::fs::read(work.join("ek.pub")).unwrap();
    let ak_pub = std::fs::read(work.join("ak.pub")).unwrap();

    let reg = start(settings(state.path(), None, false)).await;
    let id = format!("swtpm-{ek_alg}");
    let body = json!({"ek_tpm": STANDARD.encode(&ek_pub), "aik_tpm": STANDARD.encode(&ak_pub),
        "ekcert": "", "iak_cert": null, "idevid_cert": null, "ip": "127.0.0.1", "port": 9002});
    let (status, resp) = json_of(
        http_client()
            .post(http_url(&reg, &format!("/v2.6/agents/{id}")))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let blob = STANDARD
        .decode(resp["results"]["blob"].as_str().unwrap())
        .unwrap();
    let (cred, secret) = split_blob(resp["results"]["blob"].as_str().unwrap());
    if ek_alg == "rsa" {
        assert_eq!((cred.len(), secret.len(), blob.len()), (68, 256, 336));
    } else {
        assert_eq!((cred.len(), secret.len()), (68, 68));
    }
    std::fs::write(work.join("blob.bin"), &blob).unwrap();

    tpm2(
        &tpm,
        &work,
        &[
            "tpm2_startauthsession",
            "--policy-session",
            "-S",
            "session.ctx",
        ],
    );
    tpm2(
        &tpm,
        &work,
        &["tpm2_policysecret", "-S", "session.ctx", "-c", "e"],
    );
    tpm2(
        &tpm,
        &work,
        &[
            "tpm2_activatecredential",
            "-c",
            "ak.ctx",
            "-C",
            "ek.ctx",
            "-i",
            "blob.bin",
            "-o",
            "cred.out",
            "-P",
            "session:session.ctx",
        ],
    );
    tpm2(&tpm, &work, &["tpm2_flushcontext", "session.ctx"]);
    let credential = std::fs::read(work.join("cred.out")).unwrap();
    assert_eq!(credential.len(), 32);
    assert!(credential.iter().all(u8::is_ascii_alphanumeric));

    let tag = keylime_api::activation_auth_tag(&credential, &id);
    let (status, resp) = json_of(
        http_client()
            .put(http_url(&reg, &format!("/v2.6/agents/{id}")))
            .json(&json!({ "auth_tag": tag }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    reg.shutdown().await;
}

#[tokio::test]
async fn rsa_ek_blob_activates_in_swtpm() {
    activate_with_swtpm("rsa").await;
}

#[tokio::test]
async fn ecc_ek_blob_activates_in_swtpm() {
    activate_with_swtpm("ecc").await;
}
