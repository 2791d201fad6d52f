//! Lenient certificate parsing for certificates that come from TPMs and vendors:
//! PEM bundles with text around them, base64 DER, DER followed by NV padding,
//! negative serials, non-DER encodings. Everything is parsed with x509-parser
//! (which accepts these) and copied into an owned [`CertInfo`] holding exactly
//! what chain building and signature checks need — the raw TBS bytes are kept
//! as signed, never re-encoded.

use base64::Engine;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// Largest single certificate accepted (TPM EK certificates are 1–2 KiB).
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// Largest PEM bundle / base64 input accepted.
pub const MAX_BUNDLE_LEN: usize = 1024 * 1024;

/// The parts of a certificate used for chain building and signature checks.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// DER of the certificate alone (trailing padding cut off).
    pub der: Vec<u8>,
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// Display forms (RFC 4514-like) for messages.
    pub subject: String,
    pub issuer: String,
    /// Normalised forms (lowercase, no spaces) for name matching across string types.
    pub subject_norm: String,
    pub issuer_norm: String,
    /// The whole SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// SPKI algorithm OID (dotted) and its parameters (DER of the parameters' content).
    pub spki_alg: String,
    pub spki_curve: Option<String>,
    /// The subjectPublicKey BIT STRING content.
    pub public_key: Vec<u8>,
    /// The signed TBSCertificate bytes exactly as they appear.
    pub tbs: Vec<u8>,
    /// Signature algorithm OID (dotted) and raw DER of its parameters (with header).
    pub sig_alg: String,
    pub sig_params: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    /// Validity in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints cA flag, if the extension is present.
    pub is_ca: Option<bool>,
}

impl CertInfo {
    /// Parses one certificate from the start of `der`; trailing bytes (NV padding)
    /// are ignored. `what` names the input in errors.
    pub(crate) fn parse(der: &[u8], what: &str) -> Result<CertInfo, PkiError> {
        if der.len() > MAX_CERT_LEN {
            // Real certificates are small; a longer input may still hold one
            // followed by padding, so only the head is parsed.
            let head = der.get(..MAX_CERT_LEN).unwrap_or(der);
            return Self::parse(head, what);
        }
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::CertParse {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
        let used = der.len().saturating_sub(rest.len());
        if !rest.is_empty() {
            tracing::debug!(
                input = what,
                trailing_bytes = rest.len(),
                "ignoring bytes after the certificate (NV padding)"
            );
        }
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_pki;
        let spki_curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.clone().oid().ok())
            .map(|o| o.to_id_string());
        let sig_params = cert.signature_algorithm.parameters.as_ref().map(|p| {
            let mut v = Vec::new();
            // Re-serialise the Any (header + content) for later PSS parameter parsing.
            let _ = asn1_any_to_der(p, &mut v);
            v
        });
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .map(|bc| bc.value.ca);
        let subject = tbs.subject.to_string();
        let issuer = tbs.issuer.to_string();
        Ok(CertInfo {
            der: der.get(..used).unwrap_or(der).to_vec(),
            subject_raw: tbs.subject.as_raw().to_vec(),
            issuer_raw: tbs.issuer.as_raw().to_vec(),
            subject_norm: normalise_name(&subject),
            issuer_norm: normalise_name(&issuer),
            subject,
            issuer,
            spki: spki.raw.to_vec(),
            spki_alg: spki.algorithm.algorithm.to_id_string(),
            spki_curve,
            public_key: spki.subject_public_key.data.to_vec(),
            tbs: tbs.as_ref().to_vec(),
            sig_alg: cert.signature_algorithm.algorithm.to_id_string(),
            sig_params,
            signature: cert.signature_value.data.to_vec(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            is_ca,
        })
    }

    /// A display name: the subject, or "<empty subject>" (EK certs often have none).
    pub(crate) fn display_subject(&self) -> String {
        if self.subject.is_empty() {
            "<empty subject>".to_owned()
        } else {
            self.subject.clone()
        }
    }

    /// Whether `issuer` could have issued this certificate, by name.
    pub(crate) fn issued_by_name(&self, issuer: &CertInfo) -> bool {
        self.issuer_raw == issuer.subject_raw
            || (!self.issuer_norm.is_empty() && self.issuer_norm == issuer.subject_norm)
    }

    /// Subject and issuer names are equal (candidate self-signed root).
    pub(crate) fn is_self_issued(&self) -> bool {
        self.issuer_raw == self.subject_raw || self.issuer_norm == self.subject_norm
    }
}

fn asn1_any_to_der(
    any: &x509_parser::der_parser::asn1_rs::Any<'_>,
    out: &mut Vec<u8>,
) -> Option<()> {
    use x509_parser::der_parser::asn1_rs::ToDer;
    let bytes = any.to_der_vec().ok()?;
    out.extend_from_slice(&bytes);
    Some(())
}

/// Case- and whitespace-insensitive form of a distinguished name's display string,
/// so that the same name in PrintableString and UTF8String matches (RFC 5280 §7.1).
fn normalise_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits input that holds certificates into DER blobs: a PEM bundle (any text
/// around the blocks is ignored), raw DER, or base64 of DER (whitespace allowed).
/// The registrar reads only the first element.
pub fn pem_or_der_to_der_list(input: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    if input.len() > MAX_BUNDLE_LEN {
        return Err(PkiError::TooLarge {
            what: "certificate input".into(),
            len: input.len(),
            max: MAX_BUNDLE_LEN,
        });
    }
    if contains(input, b"-----BEGIN") {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let mut out = Vec::new();
        for item in CertificateDer::pem_slice_iter(input) {
            let cert = item.map_err(|e| PkiError::Pem {
                what: "certificate bundle".into(),
                reason: e.to_string(),
            })?;
            out.push(cert.as_ref().to_vec());
        }
        if out.is_empty() {
            return Err(PkiError::Empty {
                what: "PEM input (no CERTIFICATE block)".into(),
            });
        }
        return Ok(out);
    }
    let trimmed = trim_ascii(input);
    if trimmed.is_empty() {
        return Err(PkiError::Empty {
            what: "empty certificate input".into(),
        });
    }
    if trimmed.first() == Some(&0x30) {
        // Binary DER (a SEQUENCE); base64 text never starts with 0x30 ('0' is 0x30
        // too, but base64 DER of a SEQUENCE starts with 'M').
        if let Ok(der) = split_der_sequence(trimmed) {
            return Ok(vec![der.to_vec()]);
        }
    }
    let text: Vec<u8> = trimmed
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| PkiError::CertParse {
            what: "certificate input (neither PEM, DER nor base64 DER)".into(),
            reason: e.to_string(),
        })?;
    if der.first() != Some(&0x30) {
        return Err(PkiError::CertParse {
            what: "base64 certificate input".into(),
            reason: "decoded bytes are not a DER SEQUENCE".into(),
        });
    }
    Ok(vec![der])
}

/// The SubjectPublicKeyInfo (DER) of a certificate, for comparing with the
/// SPKI derived from the EK's TPM2B_PUBLIC. Accepts DER with trailing padding.
pub fn ek_cert_public_key_spki(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    Ok(CertInfo::parse(der, "EK certificate")?.spki)
}

/// SPKI of the first certificate in a PEM string.
pub(crate) fn spki_of_pem(pem: &str) -> Result<Vec<u8>, PkiError> {
    let ders = pem_or_der_to_der_list(pem.as_bytes())?;
    let first = ders.first().ok_or_else(|| PkiError::Empty {
        what: "certificate PEM".into(),
    })?;
    Ok(CertInfo::parse(first, "certificate")?.spki)
}

/// Returns the first DER SEQUENCE of `data` (header-declared length), or an error.
fn split_der_sequence(data: &[u8]) -> Result<&[u8], ()> {
    let len_byte = *data.get(1).ok_or(())?;
    let (header, len) = if len_byte < 0x80 {
        (2usize, usize::from(len_byte))
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 {
            return Err(());
        }
        let bytes = data.get(2..2 + n).ok_or(())?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (2 + n, len)
    };
    data.get(..header.checked_add(len).ok_or(())?).ok_or(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_der_rejects_truncated() {
        assert!(split_der_sequence(&[0x30, 0x82, 0x01]).is_err());
        assert!(split_der_sequence(&[0x30, 0x05, 1, 2]).is_err());
        assert_eq!(
            split_der_sequence(&[0x30, 0x01, 7, 0xff]).unwrap(),
            &[0x30, 0x01, 7]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"   ",
            b"!!!!",
            b"\x30",
            b"-----BEGIN CERTIFICATE-----\n",
        ] {
            assert!(pem_or_der_to_der_list(input).is_err(), "{input:?}");
        }
        assert!(CertInfo::parse(&[0x30, 0x03, 0x02, 0x01, 0x00], "x").is_err());
    }

    #[test]
    fn name_normalisation_ignores_case_and_spaces() {
        assert_eq!(
            normalise_name("C=US, O=Foo Bar"),
            normalise_name("c=us,o=foobar")
        );
    }
}
