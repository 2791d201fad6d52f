//! A runtime policy as delivered: plain JSON, or a DSSE envelope (`payload`, `payloadType`,
//! `signatures`) whose base64 payload is the policy; and the envelope's ECDSA signatures
//! (PROTOCOL.md §8.2, secure-systems-lab DSSE v1 as upstream `keylime/dsse/` implements it).
//!
//! Wire facts that make our envelopes and upstream's interchangeable:
//! * the signed message is the pre-authentication encoding
//!   `"DSSEv1" SP len(type) SP type SP len(payload) SP payload` ([`pae`]);
//! * signatures are ECDSA over SHA-256 of that message *whatever the curve*, DER-encoded, then
//!   base64;
//! * `keyid` is the lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo PEM (LF line
//!   ends, 64-column lines) for a bare key, or the base64 of the certificate PEM for the x509
//!   backend; verification does not require it to match (upstream does not either);
//! * `payload` and `sig` are decoded as upstream's `b64dec` does: hex if the text is hex,
//!   otherwise standard base64, otherwise URL-safe base64.
//!
//! No I/O: keys come in as PEM text, envelopes as parsed values.

use base64::Engine as _;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p521::elliptic_curve::sec1::ToEncodedPoint as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PolicyError, RuntimePolicy};

/// `payloadType` of a signed Keylime runtime policy.
pub const KEYLIME_PAYLOAD_TYPE: &str = "application/vnd.keylime+json";

fn dsse_err(msg: impl Into<String>) -> PolicyError {
    PolicyError::Dsse(msg.into())
}

/// One DSSE signature entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseSignature {
    /// Empty when the envelope has none (then it is not written either).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// Base64 signature over the DSSE pre-authentication encoding.
    pub sig: String,
}

/// A DSSE envelope as upstream's `keylime-policy sign` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseEnvelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<DsseSignature>,
}

impl DsseEnvelope {
    /// The decoded payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, PolicyError> {
        decode_b64(&self.payload).ok_or_else(|| dsse_err("payload is neither hex nor base64"))
    }

    /// Serializes as upstream does (`payload`, `payloadType`, `signatures`).
    pub fn to_json(&self) -> String {
        // strings and a list of string pairs always serialize
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Upstream's `b64dec`: hex first (non-empty result only), then strict standard base64, then
/// strict URL-safe base64.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    if let Ok(bytes) = hex_decode(text)
        && !bytes.is_empty()
    {
        return Some(bytes);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .ok()
}

fn hex_decode(text: &str) -> Result<Vec<u8>, ()> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(());
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(()),
    };
    b.chunks_exact(2)
        .map(|p| Ok((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// The DSSE v1 pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// SHA-256 of `message`, left-padded with zeros to the curve's field size: ECDSA's
/// "hash as an integer" for a hash shorter than the group order, which the RustCrypto
/// prehash API takes at field width (P-521 refuses a 32-byte prehash otherwise).
fn prehash(message: &[u8], field_len: usize) -> Vec<u8> {
    let digest = Sha256::digest(message);
    let mut out = vec![0u8; field_len.saturating_sub(digest.len())];
    out.extend_from_slice(&digest);
    out
}

fn pem_lf_keyid(spki_pem: &str) -> String {
    hex_lower(&Sha256::digest(spki_pem.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// DER content octets of the named-curve OIDs (SEC 2).
const OID_P256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: [u8; 5] = [0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: [u8; 5] = [0x2b, 0x81, 0x04, 0x00, 0x23];

/// One DER tag-length-value (definite lengths up to 64 KiB, plenty for EC keys).
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// An ECDSA private key that signs policies (upstream generates P-256; it loads any NIST curve).
#[derive(Clone)]
pub enum EcdsaSigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    /// Kept as the secret scalar: p521's signing-key wrapper is rebuilt per signature.
    P521(p521::SecretKey),
}

impl std::fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaSigningKey({})", self.curve())
    }
}

impl EcdsaSigningKey {
    /// Loads a PEM private key: SEC1 (`EC PRIVATE KEY`, what upstream writes) or PKCS#8
    /// (`PRIVATE KEY`) on P-256, P-384 or P-521. RSA and other key types are refused.
    pub fn from_pem(text: &str) -> Result<Self, PolicyError> {
        if let Ok(k) = p256::SecretKey::from_sec1_pem(text) {
            return Ok(EcdsaSigningKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_pem(text) {
            return Ok(EcdsaSigningKey::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_sec1_pem(text) {
            return Ok(EcdsaSigningKey::P521(k));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(text) {
            return Ok(EcdsaSigningKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(text) {
            return Ok(EcdsaSigningKey::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_pkcs8_pem(text) {
            return Ok(EcdsaSigningKey::P521(k));
        }
        Err(dsse_err(
            "the private key is not a PEM EC key on P-256, P-384 or P-521 \
             (only elliptic curve keys are supported)",
        ))
    }

    /// The curve's name (`P-256`, `P-384`, `P-521`).
    pub fn curve(&self) -> &'static str {
        match self {
            EcdsaSigningKey::P256(_) => "P-256",
            EcdsaSigningKey::P384(_) => "P-384",
            EcdsaSigningKey::P521(_) => "P-521",
        }
    }

    /// The key as SEC1 PEM (`EC PRIVATE KEY`, LF line ends, named-curve parameters and
    /// public key included), the form upstream writes and OpenSSL reads.
    pub fn to_sec1_pem(&self) -> String {
        let (private, public, curve_oid): (Vec<u8>, Vec<u8>, &[u8]) = match self {
            EcdsaSigningKey::P256(k) => (
                k.to_bytes().to_vec(),
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                &OID_P256,
            ),
            EcdsaSigningKey::P384(k) => (
                k.to_bytes().to_vec(),
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                &OID_P384,
            ),
            EcdsaSigningKey::P521(k) => (
                k.to_bytes().to_vec(),
                k.public_key().to_encoded_point(false).as_bytes().to_vec(),
                &OID_P521,
            ),
        };
        let mut bits = vec![0u8];
        bits.extend_from_slice(&public);
        let mut body = der_tlv(0x02, &[1]);
        body.extend(der_tlv(0x04, &private));
        body.extend(der_tlv(0xa0, &der_tlv(0x06, curve_oid)));
        body.extend(der_tlv(0xa1, &der_tlv(0x03, &bits)));
        let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        pem::encode_config(&pem::Pem::new("EC PRIVATE KEY", der_tlv(0x30, &body)), lf)
    }

    /// The key as PKCS#8 DER (for certificate builders).
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, PolicyError> {
        let doc = match self {
            EcdsaSigningKey::P256(k) => p256::SecretKey::from(k).to_pkcs8_der(),
            EcdsaSigningKey::P384(k) => p384::SecretKey::from(k).to_pkcs8_der(),
            EcdsaSigningKey::P521(k) => k.to_pkcs8_der(),
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|e| dsse_err(format!("cannot encode the private key: {e}")))
    }

    /// The public half, with upstream's ECDSA-backend keyid.
    pub fn public_key(&self) -> DsseKey {
        let verifying = match self {
            EcdsaSigningKey::P256(k) => EcdsaVerifyingKey::P256(*k.verifying_key()),
            EcdsaSigningKey::P384(k) => EcdsaVerifyingKey::P384(*k.verifying_key()),
            EcdsaSigningKey::P521(k) => EcdsaVerifyingKey::P521(k.public_key()),
        };
        DsseKey::from_verifying(verifying)
    }

    /// A DER ECDSA signature over SHA-256(`message`).
    fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, PolicyError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let fail = |e: p256::ecdsa::Error| dsse_err(format!("ECDSA signing failed: {e}"));
        Ok(match self {
            EcdsaSigningKey::P256(k) => {
                let s: p256::ecdsa::Signature =
                    k.sign_prehash(&prehash(message, 32)).map_err(fail)?;
                s.to_der().as_bytes().to_vec()
            }
            EcdsaSigningKey::P384(k) => {
                let s: p384::ecdsa::Signature =
                    k.sign_prehash(&prehash(message, 48)).map_err(fail)?;
                s.to_der().as_bytes().to_vec()
            }
            EcdsaSigningKey::P521(k) => {
                let k = p521::ecdsa::SigningKey::from_bytes(&k.to_bytes()).map_err(fail)?;
                let s: p521::ecdsa::Signature =
                    k.sign_prehash(&prehash(message, 66)).map_err(fail)?;
                s.to_der().as_bytes().to_vec()
            }
        })
    }
}

/// Signs `payload` into a one-signature envelope whose keyid is the ECDSA backend's (SHA-256
/// of the public key PEM), as `keylime-policy sign runtime -b ecdsa` does.
pub fn sign_ecdsa(
    payload: &[u8],
    payload_type: &str,
    key: &EcdsaSigningKey,
) -> Result<DsseEnvelope, PolicyError> {
    let keyid = key.public_key().keyid;
    sign_with_keyid(payload, payload_type, key, &keyid)
}

/// Signs `payload` with an explicit keyid (the x509 backend's is the base64 certificate PEM,
/// see [`DsseKey::from_x509_pem`]); an empty keyid is left out of the envelope.
pub fn sign_with_keyid(
    payload: &[u8],
    payload_type: &str,
    key: &EcdsaSigningKey,
    keyid: &str,
) -> Result<DsseEnvelope, PolicyError> {
    let sig = key.sign_der(&pae(payload_type, payload))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(DsseEnvelope {
        payload: b64.encode(payload),
        payload_type: payload_type.to_owned(),
        signatures: vec![DsseSignature {
            keyid: keyid.to_owned(),
            sig: b64.encode(sig),
        }],
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EcdsaVerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    /// p521's verifying key type is neither `Copy` nor `Eq`; it is rebuilt per verification.
    P521(p521::PublicKey),
}

impl EcdsaVerifyingKey {
    fn from_spki_der(der: &[u8]) -> Result<Self, PolicyError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(EcdsaVerifyingKey::P256(k.into()));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(EcdsaVerifyingKey::P384(k.into()));
        }
        if let Ok(k) = p521::PublicKey::from_public_key_der(der) {
            return Ok(EcdsaVerifyingKey::P521(k));
        }
        Err(dsse_err(
            "the public key is not an EC key on P-256, P-384 or P-521",
        ))
    }

    fn spki_pem(&self) -> Result<String, PolicyError> {
        let lf = p256::pkcs8::LineEnding::LF;
        let pem = match self {
            EcdsaVerifyingKey::P256(k) => p256::PublicKey::from(k).to_public_key_pem(lf),
            EcdsaVerifyingKey::P384(k) => p384::PublicKey::from(k).to_public_key_pem(lf),
            EcdsaVerifyingKey::P521(k) => k.to_public_key_pem(lf),
        };
        pem.map_err(|e| dsse_err(format!("cannot encode the public key: {e}")))
    }

    /// Verifies a DER ECDSA signature over SHA-256(`message`).
    fn verify_der(&self, message: &[u8], der: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match self {
            EcdsaVerifyingKey::P256(k) => p256::ecdsa::Signature::from_der(der)
                .is_ok_and(|s| k.verify_prehash(&prehash(message, 32), &s).is_ok()),
            EcdsaVerifyingKey::P384(k) => p384::ecdsa::Signature::from_der(der)
                .is_ok_and(|s| k.verify_prehash(&prehash(message, 48), &s).is_ok()),
            EcdsaVerifyingKey::P521(k) => {
                let Ok(v) = p521::ecdsa::VerifyingKey::from_affine(*k.as_affine()) else {
                    return false;
                };
                p521::ecdsa::Signature::from_der(der)
                    .is_ok_and(|s| v.verify_prehash(&prehash(message, 66), &s).is_ok())
            }
        }
    }
}

/// A public key that verifies envelopes: a PEM public key (upstream's ECDSA backend and the
/// verifier's `runtime_policy_key`) or an X.509 certificate (the x509 backend).
#[derive(Clone, PartialEq, Eq)]
pub struct DsseKey {
    key: EcdsaVerifyingKey,
    keyid: String,
}

impl std::fmt::Debug for DsseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DsseKey")
            .field("keyid", &self.keyid)
            .finish()
    }
}

impl DsseKey {
    fn from_verifying(key: EcdsaVerifyingKey) -> DsseKey {
        // encoding a valid curve point cannot fail; an empty keyid would only be cosmetic
        let keyid = key.spki_pem().map(|p| pem_lf_keyid(&p)).unwrap_or_default();
        DsseKey { key, keyid }
    }

    /// A `PUBLIC KEY` (SubjectPublicKeyInfo) PEM on P-256, P-384 or P-521; keyid as upstream's
    /// ECDSA backend computes it.
    pub fn from_public_key_pem(text: &str) -> Result<Self, PolicyError> {
        let block = pem::parse_many(text.as_bytes())
            .map_err(|e| dsse_err(format!("public key is not PEM: {e}")))?
            .into_iter()
            .find(|p| p.tag() == "PUBLIC KEY")
            .ok_or_else(|| dsse_err("no PUBLIC KEY block in the PEM text"))?;
        EcdsaVerifyingKey::from_spki_der(block.contents()).map(Self::from_verifying)
    }

    /// The first `CERTIFICATE` in a PEM text; keyid as upstream's x509 backend computes it
    /// (base64 of the certificate PEM). Validity dates and issuer are not checked: upstream's
    /// x509 backend trusts the certificate as a key container.
    pub fn from_x509_pem(text: &str) -> Result<Self, PolicyError> {
        let block = pem::parse_many(text.as_bytes())
            .map_err(|e| dsse_err(format!("certificate is not PEM: {e}")))?
            .into_iter()
            .find(|p| p.tag() == "CERTIFICATE")
            .ok_or_else(|| dsse_err("no CERTIFICATE block in the PEM text"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
            .map_err(|e| dsse_err(format!("certificate is not valid DER X.509: {e}")))?;
        let key = EcdsaVerifyingKey::from_spki_der(cert.tbs_certificate.subject_pki.raw)?;
        let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        let cert_pem = pem::encode_config(&pem::Pem::new("CERTIFICATE", block.contents()), lf);
        Ok(DsseKey {
            key,
            keyid: base64::engine::general_purpose::STANDARD.encode(cert_pem),
        })
    }

    /// A public key or certificate PEM, whichever the text holds.
    pub fn from_pem(text: &str) -> Result<Self, PolicyError> {
        if text.contains("-----BEGIN CERTIFICATE-----") {
            Self::from_x509_pem(text)
        } else {
            Self::from_public_key_pem(text)
        }
    }

    /// The certificates carried in the envelope's keyids (x509 backend), which upstream's
    /// verifier uses when it was given no key. Signatures whose keyid is not a certificate
    /// are skipped; no certificate at all is an error.
    pub fn from_envelope_certificates(envelope: &DsseEnvelope) -> Result<Vec<Self>, PolicyError> {
        let keys: Vec<DsseKey> = envelope
            .signatures
            .iter()
            .filter_map(|s| {
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(&s.keyid)
                    .ok()?;
                Self::from_x509_pem(std::str::from_utf8(&pem).ok()?).ok()
            })
            .collect();
        if keys.is_empty() {
            return Err(dsse_err(
                "no signature carries an X.509 certificate as keyid",
            ));
        }
        Ok(keys)
    }

    /// The keyid an envelope signed with this key carries.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }
}

/// Checks that some signature of `envelope` verifies under some key of `keys` (as upstream,
/// keyids are not required to match) and returns the payload bytes.
pub fn verify(envelope: &DsseEnvelope, keys: &[DsseKey]) -> Result<Vec<u8>, PolicyError> {
    if keys.is_empty() {
        return Err(dsse_err("no key to verify the signatures with"));
    }
    if envelope.signatures.is_empty() {
        return Err(dsse_err("the envelope has no signatures"));
    }
    let payload = envelope.payload_bytes()?;
    let message = pae(&envelope.payload_type, &payload);
    for sig in &envelope.signatures {
        let Some(der) = decode_b64(&sig.sig) else {
            continue;
        };
        if keys.iter().any(|k| k.key.verify_der(&message, &der)) {
            return Ok(payload);
        }
    }
    Err(dsse_err(format!(
        "no valid signature found: none of {} signature(s) verifies with the {} given key(s)",
        envelope.signatures.len(),
        keys.len()
    )))
}

/// A loaded policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDocument {
    Plain(RuntimePolicy),
    /// A signed policy; the signatures are NOT verified here.
    Dsse {
        envelope: DsseEnvelope,
        policy: RuntimePolicy,
    },
}

impl PolicyDocument {
    /// Loads plain or DSSE-wrapped JSON (detected by a `payload` member), validating the
    /// policy strictly ([`RuntimePolicy::from_json`]) or leniently.
    pub fn parse(bytes: &[u8], max_len: usize, strict: bool) -> Result<Self, PolicyError> {
        super::check_len(bytes, max_len)?;
        let load = |b: &[u8]| {
            if strict {
                RuntimePolicy::from_json(b, max_len)
            } else {
                RuntimePolicy::from_json_lenient(b, max_len)
            }
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        if value.get("payload").is_none() {
            return load(bytes).map(PolicyDocument::Plain);
        }
        let envelope: DsseEnvelope =
            serde_json::from_value(value).map_err(|e| PolicyError::Dsse(e.to_string()))?;
        let payload = envelope.payload_bytes()?;
        let policy = load(&payload)?;
        Ok(PolicyDocument::Dsse { envelope, policy })
    }

    /// The policy, signed or not.
    pub fn policy(&self) -> &RuntimePolicy {
        match self {
            PolicyDocument::Plain(p) | PolicyDocument::Dsse { policy: p, .. } => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(rel: &str) -> String {
        let path = keylime_testkit::testdata(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn envelope(rel: &str) -> DsseEnvelope {
        serde_json::from_str(&testdata(rel)).expect("envelope JSON")
    }

    fn p256_key(seed: u8) -> EcdsaSigningKey {
        let bytes = [seed; 32];
        EcdsaSigningKey::P256(p256::ecdsa::SigningKey::from_slice(&bytes).expect("scalar"))
    }

    #[test]
    fn pae_matches_the_dsse_v1_layout() {
        assert_eq!(
            pae("application/vnd.keylime+json", b"{}"),
            b"DSSEv1 28 application/vnd.keylime+json 2 {}".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn upstream_signed_policy_verifies_with_its_key() {
        let key = DsseKey::from_pem(&testdata("policy/keylime/runtime-policy-pubkey.pub")).unwrap();
        let env = envelope("policy/keylime/runtime-policy-test-signed.json");
        // our keyid derivation equals the one upstream wrote
        assert_eq!(key.keyid(), env.signatures[0].keyid);
        let payload = verify(&env, std::slice::from_ref(&key)).expect("verifies");
        assert_eq!(
            payload,
            testdata("policy/keylime/runtime-policy-test.json").into_bytes()
        );
    }

    #[test]
    fn upstream_corrupted_signature_is_rejected() {
        let key = DsseKey::from_pem(&testdata("policy/keylime/runtime-policy-pubkey.pub")).unwrap();
        let env = envelope("policy/keylime/runtime-policy-test-signed-bad.json");
        let err = verify(&env, &[key]).unwrap_err();
        assert!(err.to_string().contains("no valid signature"), "{err}");
    }

    #[test]
    fn round_trip_on_every_curve() {
        let p521_pem = testdata("policy/keylime/sign-runtime-policy/ec-p521-private.pem");
        let keys = [
            p256_key(7),
            EcdsaSigningKey::P384(p384::ecdsa::SigningKey::from_slice(&[9; 48]).expect("scalar")),
            EcdsaSigningKey::from_pem(&p521_pem).expect("P-521 test key"),
        ];
        for key in &keys {
            let env = sign_ecdsa(b"{\"a\": 1}", KEYLIME_PAYLOAD_TYPE, key).unwrap();
            assert_eq!(env.signatures[0].keyid, key.public_key().keyid());
            let payload = verify(&env, &[key.public_key()])
                .unwrap_or_else(|e| panic!("{}: {e}", key.curve()));
            assert_eq!(payload, b"{\"a\": 1}");
        }
        let p521 = &keys[2];
        let public = DsseKey::from_pem(&testdata(
            "policy/keylime/sign-runtime-policy/ec-p521-public.pem",
        ))
        .unwrap();
        assert_eq!(public, p521.public_key());
    }

    #[test]
    fn tampered_payload_and_type_are_rejected() {
        let key = p256_key(3);
        let env = sign_ecdsa(b"{\"release\": 0}", KEYLIME_PAYLOAD_TYPE, &key).unwrap();
        let mut tampered = env.clone();
        tampered.payload = base64::engine::general_purpose::STANDARD.encode(b"{\"release\": 1}");
        assert!(verify(&tampered, &[key.public_key()]).is_err());
        let mut retyped = env.clone();
        retyped.payload_type = "application/json".into();
        assert!(verify(&retyped, &[key.public_key()]).is_err());
        assert!(verify(&env, &[key.public_key()]).is_ok());
    }

    #[test]
    fn wrong_key_and_no_key_are_rejected() {
        let env = sign_ecdsa(b"x", KEYLIME_PAYLOAD_TYPE, &p256_key(1)).unwrap();
        let err = verify(&env, &[p256_key(2).public_key()]).unwrap_err();
        assert!(err.to_string().contains("no valid signature"), "{err}");
        let err = verify(&env, &[]).unwrap_err();
        assert!(err.to_string().contains("no key"), "{err}");
        let mut unsigned = env;
        unsigned.signatures.clear();
        assert!(verify(&unsigned, &[p256_key(1).public_key()]).is_err());
    }

    #[test]
    fn any_matching_signature_is_enough() {
        let good = sign_ecdsa(b"x", KEYLIME_PAYLOAD_TYPE, &p256_key(1)).unwrap();
        let other = sign_ecdsa(b"x", KEYLIME_PAYLOAD_TYPE, &p256_key(2)).unwrap();
        let mut both = good.clone();
        both.signatures.insert(0, other.signatures[0].clone());
        both.signatures.insert(
            0,
            DsseSignature {
                keyid: String::new(),
                sig: "!!not base64!!".into(),
            },
        );
        assert!(verify(&both, &[p256_key(1).public_key()]).is_ok());
    }

    #[test]
    fn hostile_inputs_give_errors() {
        assert!(DsseKey::from_pem("").is_err());
        assert!(
            DsseKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
        assert!(
            DsseKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        // an RSA private key is refused with a message about the key type
        let rsa = testdata("policy/keylime/sign-runtime-policy/rsa-4096-private.pem");
        let err = EcdsaSigningKey::from_pem(&rsa).unwrap_err();
        assert!(err.to_string().contains("elliptic curve"), "{err}");
        let mut env = sign_ecdsa(b"x", KEYLIME_PAYLOAD_TYPE, &p256_key(1)).unwrap();
        env.payload = "%%%".into();
        assert!(verify(&env, &[p256_key(1).public_key()]).is_err());
        assert!(DsseKey::from_envelope_certificates(&env).is_err());
    }

    #[test]
    fn keys_survive_a_pem_round_trip() {
        let key = p256_key(5);
        let again = EcdsaSigningKey::from_pem(&key.to_sec1_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert!(
            key.to_sec1_pem()
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        let p521_pem = testdata("policy/keylime/sign-runtime-policy/ec-p521-private.pem");
        let p521 = EcdsaSigningKey::from_pem(&p521_pem).unwrap();
        // the same SEC1 layout OpenSSL writes (version, key, named curve, public key)
        assert_eq!(p521.to_sec1_pem(), p521_pem);
        let p384 = EcdsaSigningKey::P384(p384::ecdsa::SigningKey::from_slice(&[4; 48]).unwrap());
        let again = EcdsaSigningKey::from_pem(&p384.to_sec1_pem()).unwrap();
        assert_eq!(again.public_key(), p384.public_key());
        assert!(!key.to_pkcs8_der().unwrap().is_empty());
    }

    #[test]
    fn hex_payloads_decode_like_upstream() {
        // upstream's b64dec tries hex first
        assert_eq!(decode_b64("7b7d").unwrap(), b"{}");
        assert_eq!(decode_b64("e30=").unwrap(), b"{}");
        assert_eq!(decode_b64("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_b64("***").is_none());
    }
}
