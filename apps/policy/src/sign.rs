//! `keylime-policy sign runtime`: wraps a validated runtime policy in a DSSE envelope signed
//! with an EC key (loaded with `-k`, or generated as P-256 and written to `-p`), with the
//! `ecdsa` backend (keyid: SHA-256 of the public key PEM) or the `x509` backend (a fresh
//! self-signed certificate written to `-c`; keyid: the base64 certificate PEM). The payload
//! is the policy file's bytes as given.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use keylime_ima::policy::{
    DEFAULT_MAX_POLICY_LEN, DsseKey, EcdsaSigningKey, KEYLIME_PAYLOAD_TYPE, RuntimePolicy,
    sign_ecdsa, sign_with_keyid,
};
use rand::RngCore;

use crate::cli::{Backend, DEFAULT_EC_KEY_FILE, SignRuntime};
use crate::output::{read_input, read_text, write_output};

/// Writes a new file readable by its owner only; an existing file is never replaced.
fn write_new_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "refusing to overwrite the existing key file {}; sign with it using --keyfile \
                 or choose another --keypath",
                path.display()
            ),
            _ => anyhow::anyhow!("cannot create the key file {}: {e}", path.display()),
        })?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write the key file {}", path.display()))
}

fn load_or_generate_key(args: &SignRuntime) -> anyhow::Result<EcdsaSigningKey> {
    if let Some(path) = &args.keyfile {
        let pem = read_text(path, "private key")?;
        return EcdsaSigningKey::from_pem(&pem)
            .with_context(|| format!("cannot use the private key {}", path.display()));
    }
    let path = args
        .keypath
        .clone()
        .unwrap_or_else(|| DEFAULT_EC_KEY_FILE.into());
    let key = EcdsaSigningKey::P256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng));
    write_new_private(&path, &key.to_sec1_pem())?;
    tracing::info!(key = %path.display(), "generated a P-256 signing key");
    Ok(key)
}

/// A self-signed certificate for `key` shaped like upstream's (CN and SAN `dsse_lib`, not a
/// CA, valid from yesterday for 30 days), as PEM.
pub fn self_signed_certificate(key: &EcdsaSigningKey) -> anyhow::Result<String> {
    let alg = match key {
        EcdsaSigningKey::P256(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
        EcdsaSigningKey::P384(_) => &rcgen::PKCS_ECDSA_P384_SHA384,
        EcdsaSigningKey::P521(_) => {
            anyhow::bail!("the x509 backend supports P-256 and P-384 keys, not P-521")
        }
    };
    let der = key.to_pkcs8_der()?;
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der.as_slice().into(), alg)
        .context("cannot load the key for the certificate")?;
    let mut params = rcgen::CertificateParams::new(vec!["dsse_lib".to_owned()])?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "dsse_lib");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&key_pair)
        .context("cannot create the certificate")?;
    Ok(cert.pem())
}

/// Runs `sign runtime`.
pub fn run(args: &SignRuntime) -> anyhow::Result<()> {
    if args.keyfile.is_some() && args.keypath.is_some() {
        anyhow::bail!("only one of --keyfile and --keypath may be given");
    }
    if args.backend == Backend::X509 && args.cert_outfile.is_none() {
        anyhow::bail!("the x509 backend needs --cert-outfile for the certificate");
    }
    let path = &args.runtime_policy;
    let payload = read_input(path, "runtime policy")?;
    RuntimePolicy::from_json(&payload, DEFAULT_MAX_POLICY_LEN).with_context(|| {
        format!(
            "unable to validate the runtime policy {}; please provide a valid runtime policy",
            path.display()
        )
    })?;
    let key = load_or_generate_key(args)?;
    let envelope = match (args.backend, &args.cert_outfile) {
        (Backend::X509, Some(cert_path)) => {
            let cert = self_signed_certificate(&key)?;
            std::fs::write(cert_path, &cert).with_context(|| {
                format!("cannot write the certificate to {}", cert_path.display())
            })?;
            let keyid = DsseKey::from_x509_pem(&cert)?.keyid().to_owned();
            sign_with_keyid(&payload, KEYLIME_PAYLOAD_TYPE, &key, &keyid)?
        }
        _ => sign_ecdsa(&payload, KEYLIME_PAYLOAD_TYPE, &key)?,
    };
    write_output(
        &args.output,
        &keylime_api::pyjson::try_dumps(&envelope)?,
        "signed policy",
    )
}
