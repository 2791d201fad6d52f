//! What a runtime policy takes from an ASCII IMA measurement list: file digests of `ima-ng`
//! and `ima-sig` entries, the `ima-buf` entries (certificates become keyring entries, other
//! buffers ima-buf entries) and the boot_aggregate's digest algorithm.

use crate::policy::DigestMap;
use crate::{Entry, Template, parse_log};

use super::digest_alg::{DigestAlg, Guess};
use super::error::GenerateError;

/// One `ima-buf` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffer {
    /// Keyring or buffer name.
    pub name: String,
    /// Hex digest of the buffer.
    pub digest: String,
    /// The buffer is a DER X.509 certificate (a key loaded onto the keyring `name`).
    pub is_certificate: bool,
}

/// The useful contents of a measurement list.
#[derive(Debug, Default)]
pub struct ListContents {
    pub digests: DigestMap,
    pub buffers: Vec<Buffer>,
    /// The algorithm of the first entry's boot_aggregate digest; `None` when the list does not
    /// start with a boot_aggregate entry.
    pub boot_aggregate: Option<Guess>,
    pub entries: usize,
}

fn boot_aggregate_guess(e: &Entry<'_>) -> Guess {
    let hex = e.digest.digest.to_hex();
    match (e.template, e.digest.algorithm) {
        (Template::Ima, _) | (Template::ImaNg | Template::ImaSig, None) => Guess::from_hex(&hex),
        (Template::ImaNg | Template::ImaSig, Some(alg)) => match DigestAlg::from_name(alg) {
            Some(a) if a.hex_len() == hex.len() => Guess::Known(a),
            _ => Guess::Invalid,
        },
        _ => Guess::Invalid,
    }
}

fn is_der_certificate(buf: &[u8]) -> bool {
    matches!(x509_parser::parse_x509_certificate(buf), Ok((rest, _)) if rest.is_empty())
}

/// Reads the measurement list `text` (named `source` in errors and logs); every line must be
/// a valid entry.
pub fn read_list(source: &str, text: &str) -> Result<ListContents, GenerateError> {
    let mut out = ListContents::default();
    for (i, entry) in parse_log(text).enumerate() {
        let e = entry.map_err(|error| GenerateError::MeasurementList {
            source_name: source.to_owned(),
            error,
        })?;
        out.entries += 1;
        if i == 0 && e.name == "boot_aggregate" {
            out.boot_aggregate = Some(boot_aggregate_guess(&e));
        }
        match e.template {
            Template::ImaNg | Template::ImaSig => {
                out.digests
                    .entry(e.name.to_owned())
                    .or_default()
                    .push(e.digest.digest.to_hex());
            }
            Template::ImaBuf => out.buffers.push(Buffer {
                name: e.name.to_owned(),
                digest: e.digest.digest.to_hex(),
                is_certificate: is_der_certificate(&e.buffer()),
            }),
            Template::Ima | Template::ImaModsig => {}
        }
    }
    if out.entries > 0 && out.boot_aggregate.is_none() {
        tracing::warn!(
            list = source,
            "the measurement list does not start with boot_aggregate; no digest algorithm is \
             taken from it"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_aggregate_algorithms() {
        let guess = |line: &str| read_list("t", line).unwrap().boot_aggregate;
        let z40 = "0".repeat(40);
        let z64 = "0".repeat(64);
        assert_eq!(
            guess(&format!("10 {z40} ima {z40} boot_aggregate")),
            Some(Guess::Known(DigestAlg::Sha1))
        );
        assert_eq!(
            guess(&format!("10 {z40} ima-ng sha256:{z64} boot_aggregate")),
            Some(Guess::Known(DigestAlg::Sha256))
        );
        assert_eq!(
            guess(&format!("10 {z40} ima-ng unknown:{z64} boot_aggregate")),
            Some(Guess::Invalid)
        );
        assert_eq!(
            guess(&format!("10 {z40} ima-ng sha256:{z64} /bin/sh")),
            None
        );
    }

    #[test]
    fn a_bad_line_names_the_list() {
        let err = read_list("my-list", "10 zz ima-ng\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("my-list: "), "{err}");
    }
}
