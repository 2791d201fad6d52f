//! DSSE-signed runtime policies at a verifier that requires them
//! (`require_allow_list_signatures = True`): a policy signed by our `keylime-policy sign
//! runtime` (ECDSA backend) and added by upstream's tenant (`-c addruntimepolicy
//! --runtime-policy-sig-key`), then the verifier's answers to the same envelope with the
//! wrong key and to an unsigned policy, sent as upstream's tenant sends them. The outcomes
//! are collected so a test can compare both verifiers.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::config_files::{ConfigOptions, ConfigSet};
use crate::ima::ImaPlayer;
use crate::process::scrub_env;
use crate::services::{Implementation, admin_client, start_verifier};
use crate::step;
use crate::tenant::upstream_tenant;
use crate::upstream::upstream;

/// What one verifier answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicyOutcomes {
    /// Upstream's tenant adding the envelope with the signer's public key: exit status.
    pub tenant_right_key_exit: Option<i32>,
    /// `GET /allowlists/{name}` afterwards.
    pub stored_status: u16,
    /// Upstream's tenant adding the envelope with another public key: exit status (the
    /// tenant verifies the envelope itself before sending it).
    pub tenant_wrong_key_exit: Option<i32>,
    /// Upstream's tenant adding the unsigned policy (no key): exit status.
    pub tenant_unsigned_exit: Option<i32>,
    /// `POST /allowlists/{name}` of the envelope with the other public key.
    pub wrong_key_status: u16,
    /// `POST /allowlists/{name}` of the unsigned policy, no key.
    pub unsigned_status: u16,
    /// `POST /allowlists/{name}` of the unsigned policy with the signer's public key.
    pub unsigned_with_key_status: u16,
}

/// `keylime-policy sign runtime -r policy -p new_key -o out` (ours, ECDSA backend):
/// a fresh P-256 key is written to `new_key`.
fn sign(policy: &Path, new_key: &Path, out: &Path) {
    let program = keylime_e2e::bin("keylime-policy");
    let mut cmd = Command::new(&program);
    cmd.args(["sign", "runtime", "-b", "ecdsa", "-r"])
        .arg(policy)
        .arg("-p")
        .arg(new_key)
        .arg("-o")
        .arg(out);
    scrub_env(&mut cmd);
    let run = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        run.status.success(),
        "keylime-policy sign runtime: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The SubjectPublicKeyInfo PEM of the EC private key `key`, written to `out` (derived
/// with the `cryptography` package of upstream's virtualenv, the library upstream loads
/// it with).
fn public_key_pem(key: &Path, out: &Path) -> PathBuf {
    let python = upstream().bin("python3");
    let run = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\n\
             from cryptography.hazmat.primitives import serialization as s\n\
             k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n\
             open(sys.argv[2], 'wb').write(k.public_key().public_bytes(\
             s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))\n",
        )
        .arg(key)
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        run.status.success(),
        "deriving the public key: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.to_path_buf()
}

/// `POST /v2.1/allowlists/{name}` with the body upstream's tenant sends; the status.
async fn post_policy(config: &ConfigSet, name: &str, policy: &[u8], key: Option<&[u8]>) -> u16 {
    let body = json!({
        "tpm_policy": "{\"mask\": \"0x400\"}",
        "runtime_policy": B64.encode(policy),
        "runtime_policy_key": key.map(|k| B64.encode(k)).unwrap_or_default(),
    });
    let url = format!(
        "https://127.0.0.1:{}/v2.1/allowlists/{name}",
        config.verifier_port
    );
    let resp = admin_client(config)
        .post(&url)
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    eprintln!("POST {url} -> {status} {text}");
    status
}

/// Runs the scenario against the verifier of `services`.
pub async fn signed_runtime_policy(
    pairing: &str,
    services: Implementation,
) -> SignedPolicyOutcomes {
    let work = tempfile::tempdir().expect("temporary directory");
    let store = work.path().join("tpm_cert_store");
    std::fs::create_dir_all(&store).expect("cert store");
    let opts = ConfigOptions {
        require_allow_list_signatures: true,
        ..ConfigOptions::default()
    };
    let mut config = ConfigSet::write(&work.path().join("deploy"), &store, &opts);
    let verifier = start_verifier(services, &mut config).await;

    step(
        pairing,
        "a runtime policy signed by our keylime-policy sign runtime (ecdsa)",
    );
    let p = |n: &str| work.path().join(n);
    let ima = ImaPlayer::new(&p("unused-ima-log"), "unused");
    std::fs::write(p("policy.json"), ima.policy_allowing_first(10).to_string())
        .expect("writing the policy");
    sign(&p("policy.json"), &p("signer.pem"), &p("signed.json"));
    sign(&p("policy.json"), &p("other.pem"), &p("other-signed.json"));
    let right = public_key_pem(&p("signer.pem"), &p("signer.pub"));
    let wrong = public_key_pem(&p("other.pem"), &p("other.pub"));
    let arg = |path: &Path| path.to_str().unwrap().to_string();

    step(
        pairing,
        "upstream tenant: -c addruntimepolicy --runtime-policy-sig-key (right key)",
    );
    let add = |name: &'static str, policy: PathBuf, key: Option<PathBuf>| {
        let config = config.clone();
        async move {
            let mut args = vec![
                "-c".to_string(),
                "addruntimepolicy".into(),
                "--runtime-policy-name".into(),
                name.into(),
                "--runtime-policy".into(),
                arg(&policy),
            ];
            if let Some(k) = key {
                args.extend(["--runtime-policy-sig-key".into(), arg(&k)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            upstream_tenant(&config, &args).await
        }
    };
    let ok = add("signed", p("signed.json"), Some(right.clone())).await;
    assert!(
        ok.success(),
        "{}\nverifier:\n{}",
        ok.output(),
        verifier.output_tail(40)
    );
    let url = format!(
        "https://127.0.0.1:{}/v2.1/allowlists/signed",
        config.verifier_port
    );
    let (stored_status, _) = crate::services::admin_get(&admin_client(&config), &url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    step(
        pairing,
        "upstream tenant: the same envelope with another key",
    );
    let bad = add("wrong-key", p("signed.json"), Some(wrong.clone())).await;
    assert!(
        bad.stdout.contains("failed DSSE signature verification")
            || bad.stderr.contains("failed DSSE signature verification"),
        "{}",
        bad.output()
    );

    step(pairing, "upstream tenant: the unsigned policy");
    let unsigned = add("unsigned", p("policy.json"), None).await;

    step(
        pairing,
        "the verifier's own answers: wrong key, unsigned, unsigned with a key",
    );
    let envelope = std::fs::read(p("signed.json")).expect("envelope");
    let plain = std::fs::read(p("policy.json")).expect("policy");
    let wrong_pem = std::fs::read(&wrong).expect("other key");
    let right_pem = std::fs::read(&right).expect("signer key");
    let outcomes = SignedPolicyOutcomes {
        tenant_right_key_exit: ok.code,
        stored_status,
        tenant_wrong_key_exit: bad.code,
        tenant_unsigned_exit: unsigned.code,
        wrong_key_status: post_policy(&config, "direct-wrong", &envelope, Some(&wrong_pem)).await,
        unsigned_status: post_policy(&config, "direct-unsigned", &plain, None).await,
        unsigned_with_key_status: post_policy(
            &config,
            "direct-unsigned-key",
            &plain,
            Some(&right_pem),
        )
        .await,
    };
    eprintln!(
        "[{pairing}] {services} verifier: {outcomes:?}\nunsigned via tenant:\n{}",
        unsigned.output()
    );
    outcomes
}
