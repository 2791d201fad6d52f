//! Template data: the byte string the kernel hashes for column 2 and for the PCR 10 extend,
//! rebuilt from an entry's ASCII fields (PROTOCOL.md §8.1 field table), streamed into the
//! hashers in pieces so nothing is allocated per entry.

use keylime_tpm::HashAlg;

use crate::digest::{BankHasher, DigestBuf};
use crate::entry::{Entry, FileDigest, Template};
use crate::error::ImaError;
use crate::hex;

/// Size of the `n` field of the `ima` template (name, NUL, zero padding).
const IMA_NAME_FIELD: usize = 256;
static ZEROS: [u8; IMA_NAME_FIELD] = [0; IMA_NAME_FIELD];

fn len_prefix(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

fn digest_ng(d: &FileDigest<'_>, sink: &mut impl FnMut(&[u8])) {
    let digest = d.digest.as_slice();
    match d.algorithm {
        Some(alg) => {
            sink(&len_prefix(alg.len() + 2 + digest.len()));
            sink(alg.as_bytes());
            sink(b":\0");
        }
        None => sink(&len_prefix(digest.len())),
    }
    sink(digest);
}

fn hex_field(hexs: &str, sink: &mut impl FnMut(&[u8])) {
    sink(&len_prefix(hexs.len() / 2));
    hex::decode_chunks(hexs.as_bytes(), |c| sink(c));
}

/// Feeds the template data of `entry` to `sink`, piece by piece.
pub fn write_template_data(entry: &Entry<'_>, mut sink: impl FnMut(&[u8])) {
    let name = entry.name.as_bytes();
    if entry.template == Template::Ima {
        sink(entry.digest.digest.as_slice());
        sink(name);
        // the parser limits names to 255 bytes, so at least the NUL is written
        sink(&ZEROS[..IMA_NAME_FIELD.saturating_sub(name.len())]);
        return;
    }
    digest_ng(&entry.digest, &mut sink);
    sink(&len_prefix(name.len() + 1));
    sink(name);
    sink(b"\0");
    match entry.template {
        Template::Ima | Template::ImaNg => {}
        Template::ImaSig => hex_field(entry.sig_hex, &mut sink),
        Template::ImaBuf => hex_field(entry.buf_hex, &mut sink),
        Template::ImaModsig => {
            hex_field(entry.sig_hex, &mut sink);
            match &entry.modsig_digest {
                Some(d) => digest_ng(d, &mut sink),
                None => sink(&len_prefix(0)),
            }
            hex_field(entry.modsig_hex, &mut sink);
        }
    }
}

/// A measurement record, from the ASCII list ([`Entry`]) or the binary one
/// ([`crate::BinaryEntry`]): what the replay and the template-hash check need.
pub trait TemplateRecord {
    /// The template hash as logged (column 2 / the binary record's digest).
    fn logged_template_hash(&self) -> &DigestBuf;

    /// Feeds the template data, piece by piece.
    fn for_each_template_part<F: FnMut(&[u8])>(&self, sink: F);

    /// A violation: the logged template hash is all zeros.
    fn is_violation_record(&self) -> bool {
        self.logged_template_hash().is_all_zero()
    }
}

impl TemplateRecord for Entry<'_> {
    fn logged_template_hash(&self) -> &DigestBuf {
        &self.template_hash
    }

    fn for_each_template_part<F: FnMut(&[u8])>(&self, sink: F) {
        write_template_data(self, sink)
    }
}

/// H_alg(template data) of one record.
pub fn template_hash<R: TemplateRecord>(record: &R, alg: HashAlg) -> Result<DigestBuf, ImaError> {
    let mut h = BankHasher::new(alg).ok_or(ImaError::UnsupportedBank(alg))?;
    record.for_each_template_part(|p| h.update(p));
    Ok(h.finalize_reset())
}

/// Template data up to this size is gathered before hashing.
const GATHER_LEN: usize = 512;

/// Hashes template data under several algorithms at once, reusing its hashers.
#[derive(Clone)]
pub struct TemplateHasher {
    algs: Vec<HashAlg>,
    hashers: Vec<BankHasher>,
    out: Vec<DigestBuf>,
}

impl TemplateHasher {
    /// One hasher per distinct algorithm in `algs`.
    pub fn new(algs: &[HashAlg]) -> Result<Self, ImaError> {
        let mut unique: Vec<HashAlg> = Vec::new();
        for &a in algs {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        let hashers = unique
            .iter()
            .map(|&a| BankHasher::new(a).ok_or(ImaError::UnsupportedBank(a)))
            .collect::<Result<Vec<_>, _>>()?;
        let out = unique
            .iter()
            .map(|a| DigestBuf::zeros(a.digest_len()))
            .collect();
        Ok(TemplateHasher {
            algs: unique,
            hashers,
            out,
        })
    }

    /// Hashes `record`'s template data under every algorithm.
    pub fn hash<R: TemplateRecord>(&mut self, record: &R) {
        // typical template data (a digest and a path) is gathered on the stack and hashed
        // in one update per algorithm; larger data is streamed piece by piece
        let mut buf = [0u8; GATHER_LEN];
        let mut len = 0;
        let mut fits = true;
        record.for_each_template_part(|p| {
            if fits && let Some(dst) = buf.get_mut(len..len + p.len()) {
                dst.copy_from_slice(p);
                len += p.len();
            } else {
                fits = false;
            }
        });
        if fits {
            for h in self.hashers.iter_mut() {
                h.update(&buf[..len]);
            }
        } else {
            let hashers = &mut self.hashers;
            record.for_each_template_part(|p| {
                for h in hashers.iter_mut() {
                    h.update(p);
                }
            });
        }
        for (h, o) in self.hashers.iter_mut().zip(self.out.iter_mut()) {
            *o = h.finalize_reset();
        }
    }

    /// The last [`hash`](Self::hash) result for `alg` (`None` if `alg` was not requested).
    pub fn get(&self, alg: HashAlg) -> Option<&DigestBuf> {
        let i = self.algs.iter().position(|&a| a == alg)?;
        self.out.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_line;

    fn data(line: &str) -> Vec<u8> {
        let e = parse_line(line, 1).unwrap();
        let mut v = Vec::new();
        write_template_data(&e, |p| v.extend_from_slice(p));
        v
    }

    #[test]
    fn ima_ng_layout() {
        let v = data(
            "10 00 ima-ng sha256:0000000000000000000000000000000000000000000000000000000000000001 /a b",
        );
        let mut want = Vec::new();
        want.extend_from_slice(&(6u32 + 2 + 32).to_le_bytes());
        want.extend_from_slice(b"sha256:\0");
        want.extend_from_slice(&[0; 31]);
        want.push(1);
        want.extend_from_slice(&5u32.to_le_bytes());
        want.extend_from_slice(b"/a b\0");
        assert_eq!(v, want);
    }

    #[test]
    fn ima_layout_pads_name_to_256() {
        let v = data("10 00 ima 0102030405060708090a0b0c0d0e0f1011121314 /init");
        assert_eq!(v.len(), 20 + 256);
        assert_eq!(&v[20..25], b"/init");
        assert!(v[25..].iter().all(|&b| b == 0));
    }

    #[test]
    fn ima_sig_empty_and_present() {
        let d = "sha1:0102030405060708090a0b0c0d0e0f1011121314";
        let empty = data(&format!("10 00 ima-sig {d} /x "));
        assert_eq!(&empty[empty.len() - 4..], &0u32.to_le_bytes());
        let signed = data(&format!("10 00 ima-sig {d} /x 0302aabb"));
        assert_eq!(&signed[signed.len() - 8..], &[4, 0, 0, 0, 3, 2, 0xaa, 0xbb]);
    }
}
