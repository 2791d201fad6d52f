//! The policy's `verification-keys`: a JSON text `{"pubkeys": [b64 DER SPKI…], "keyids":
//! [int…]}` listing the keys that verify IMA file signatures (upstream `ImaKeyring`). Keys
//! come from X.509 certificates (PEM or DER; the keyid is the last four bytes of the subject
//! key identifier) or public keys (PEM or DER; the keyid is the last four bytes of SHA-1 over
//! the key's bit string, the kernel's keyidv2).

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

/// An ordered set of IMA verification keys, one per keyid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImaKeyring {
    keys: Vec<(u32, Vec<u8>)>,
}

#[derive(Deserialize)]
struct KeyringJson {
    pubkeys: Vec<String>,
    #[serde(default)]
    keyids: Vec<u32>,
}

#[derive(Serialize)]
struct KeyringOut<'a> {
    pubkeys: Vec<String>,
    keyids: &'a [u32],
}

fn keyid_from_spki(spki: &SubjectPublicKeyInfo<'_>) -> anyhow::Result<u32> {
    let alg = spki.algorithm.algorithm.to_id_string();
    if alg != OID_RSA && alg != OID_EC {
        anyhow::bail!("unsupported key type (algorithm {alg}); RSA and EC keys are supported");
    }
    let digest = sha1::Sha1::digest(&spki.subject_public_key.data);
    Ok(u32::from_be_bytes([
        digest[16], digest[17], digest[18], digest[19],
    ]))
}

fn from_certificate(cert: &X509Certificate<'_>) -> anyhow::Result<(u32, Vec<u8>)> {
    let spki = &cert.tbs_certificate.subject_pki;
    let from_skid = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) if id.0.len() >= 4 => {
                let t = &id.0[id.0.len() - 4..];
                Some(u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
            }
            _ => None,
        });
    let keyid = match from_skid {
        Some(k) => {
            keyid_from_spki(spki)?;
            k
        }
        None => keyid_from_spki(spki)?,
    };
    Ok((keyid, spki.raw.to_vec()))
}

fn from_spki_der(der: &[u8]) -> anyhow::Result<(u32, Vec<u8>)> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| anyhow::anyhow!("not a DER public key: {e}"))?;
    Ok((keyid_from_spki(&spki)?, spki.raw.to_vec()))
}

/// The key in a certificate or public-key file.
fn key_from_file_bytes(bytes: &[u8]) -> anyhow::Result<(u32, Vec<u8>)> {
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(bytes) {
        return from_certificate(&cert);
    }
    if let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(bytes) {
        match pem.label.as_str() {
            "CERTIFICATE" => {
                let cert = pem
                    .parse_x509()
                    .map_err(|e| anyhow::anyhow!("invalid PEM certificate: {e}"))?;
                return from_certificate(&cert);
            }
            "PUBLIC KEY" => return from_spki_der(&pem.contents),
            other => anyhow::bail!("a PEM {other} is not a certificate or public key"),
        }
    }
    from_spki_der(bytes)
}

impl ImaKeyring {
    /// Parses a policy's `verification-keys` text (possibly JSON-encoded twice, as upstream's
    /// database stores it).
    pub fn parse(text: &str) -> anyhow::Result<ImaKeyring> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).context("verification-keys is not JSON")?;
        if let serde_json::Value::String(inner) = &value {
            value = serde_json::from_str(inner).context("verification-keys is not JSON")?;
        }
        let json: KeyringJson =
            serde_json::from_value(value).context("verification-keys is not an IMA keyring")?;
        let mut ring = ImaKeyring::default();
        for (i, b64) in json.pubkeys.iter().enumerate() {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .with_context(|| format!("verification-keys pubkeys[{i}] is not base64"))?;
            let (computed, der) =
                from_spki_der(&der).with_context(|| format!("verification-keys pubkeys[{i}]"))?;
            ring.add(json.keyids.get(i).copied().unwrap_or(computed), der);
        }
        Ok(ring)
    }

    /// Adds (or replaces) the key with `keyid`.
    pub fn add(&mut self, keyid: u32, spki_der: Vec<u8>) {
        match self.keys.iter_mut().find(|(k, _)| *k == keyid) {
            Some(slot) => slot.1 = spki_der,
            None => self.keys.push((keyid, spki_der)),
        }
    }

    /// Adds the key of a certificate or public-key file.
    pub fn add_file(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let (keyid, der) = key_from_file_bytes(bytes)
            .with_context(|| format!("{} does not hold a supported key", path.display()))?;
        tracing::debug!(keyid = format_args!("{keyid:08x}"), file = %path.display(), "IMA key added");
        self.add(keyid, der);
        Ok(())
    }

    /// The JSON text upstream writes.
    pub fn to_json(&self) -> anyhow::Result<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let keyids: Vec<u32> = self.keys.iter().map(|(k, _)| *k).collect();
        let out = KeyringOut {
            pubkeys: self.keys.iter().map(|(_, d)| b64.encode(d)).collect(),
            keyids: &keyids,
        };
        Ok(keylime_api::pyjson::try_dumps(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused() {
        assert!(ImaKeyring::parse("invalid").is_err());
        assert!(ImaKeyring::parse(r#"{"pubkeys": ["***"]}"#).is_err());
        assert!(ImaKeyring::parse(r#"{"pubkeys": ["AAAA"]}"#).is_err());
        let mut ring = ImaKeyring::default();
        assert!(ring.add_file(Path::new("x"), b"not a key").is_err());
        assert_eq!(ImaKeyring::parse(r#"{"pubkeys": []}"#).unwrap(), ring);
    }
}
