//! Name → accepted digests, indexed for lookups by the borrowed names of log entries.
//!
//! Laid out for a lookup per log entry against 10⁵ names: a compact hash table of
//! `(hash tag, offset)` pairs over one byte arena in which each record holds its name and
//! its digests side by side, so a hit touches the table and one place in the arena.
//!
//! Digests are decoded once from the policy's lowercase hex; a listed string that is not
//! lowercase hex of 1 to 64 bytes can never equal upstream's `digest.hex()` and is dropped.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;

use crate::digest::MAX_DIGEST_LEN;
use crate::policy::DigestMap;

type Hasher = foldhash::fast::RandomState;

// record: name_len u32le | count u16le | name | count × (len u8 | digest)
const RECORD_HEAD: usize = 6;

/// One policy section (`digests`, `keyrings` or `ima-buf`) ready for lookups.
#[derive(Clone, Default)]
pub(crate) struct DigestIndex {
    /// (low 32 bits of the name's hash, record offset)
    table: HashTable<(u32, u32)>,
    hasher: Hasher,
    arena: Vec<u8>,
    /// listed strings that were not lowercase hex digests
    dropped: usize,
}

/// The digests listed for one name.
#[derive(Clone, Copy, Debug)]
pub struct DigestList<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> DigestList<'a> {
    /// Number of distinct digests listed.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The digests, in policy order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.bytes;
        (0..self.count).map_while(move |_| {
            let (&len, tail) = rest.split_first()?;
            let (d, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            Some(d)
        })
    }

    /// True when `digest` is listed.
    #[inline]
    pub fn contains(&self, digest: &[u8]) -> bool {
        self.iter().any(|d| d == digest)
    }

    /// The digests as lowercase hex.
    pub fn to_hex(&self) -> Vec<String> {
        self.iter()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .collect()
    }
}

fn decode_lower_hex(s: &str, out: &mut [u8; MAX_DIGEST_LEN]) -> Option<usize> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) || b.len() > 2 * MAX_DIGEST_LEN {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(b.len() / 2)
}

fn u32_at(arena: &[u8], at: usize) -> usize {
    arena
        .get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

impl DigestIndex {
    pub(crate) fn build(section: &DigestMap) -> Self {
        let hasher = Hasher::default();
        let mut table = HashTable::with_capacity(section.len());
        let mut arena = Vec::new();
        let mut dropped = 0;
        let mut buf = [0u8; MAX_DIGEST_LEN];
        for (name, list) in section {
            // offsets and lengths fit: a policy is bounded far below 4 GiB by its size limit
            let off = arena.len();
            arena.extend_from_slice(&(name.len() as u32).to_le_bytes());
            arena.extend_from_slice(&[0, 0]);
            arena.extend_from_slice(name.as_bytes());
            let digests_at = arena.len();
            let mut count: u16 = 0;
            for s in list {
                let Some(n) = decode_lower_hex(s, &mut buf) else {
                    dropped += 1;
                    continue;
                };
                let d = &buf[..n];
                let seen = DigestList {
                    count: usize::from(count),
                    bytes: &arena[digests_at..],
                }
                .contains(d);
                if !seen && count < u16::MAX {
                    arena.push(n as u8);
                    arena.extend_from_slice(d);
                    count += 1;
                }
            }
            arena[off + 4..off + 6].copy_from_slice(&count.to_le_bytes());
            let hash = hasher.hash_one(name.as_str());
            table.insert_unique(hash, (hash as u32, off as u32), |&(_, o)| {
                hasher.hash_one(Self::name_at(&arena, o as usize))
            });
        }
        DigestIndex {
            table,
            hasher,
            arena,
            dropped,
        }
    }

    fn name_at(arena: &[u8], off: usize) -> &str {
        let len = u32_at(arena, off);
        arena
            .get(off + RECORD_HEAD..off + RECORD_HEAD + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// The digests listed for `name`; `None` when the name is not listed at all.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<DigestList<'_>> {
        let hash = self.hasher.hash_one(name);
        let tag = hash as u32;
        let arena = &self.arena;
        let &(_, off) = self.table.find(hash, |&(t, off)| {
            t == tag && {
                let off = off as usize;
                let start = off + RECORD_HEAD;
                u32_at(arena, off) == name.len()
                    && arena.get(start..start + name.len()) == Some(name.as_bytes())
            }
        })?;
        let off = off as usize;
        let count = arena
            .get(off + 4..off + 6)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        let bytes = arena
            .get(off + RECORD_HEAD + name.len()..)
            .unwrap_or_default();
        Some(DigestList { count, bytes })
    }

    pub(crate) fn names(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lowercase_only_and_dedups() {
        let mut m = DigestMap::new();
        let a = "ab".repeat(20);
        m.insert(
            "/a".into(),
            vec![
                a.clone(),
                a.clone(),
                "AB".repeat(20),
                format!("sha1:{a}"),
                "0".into(),
            ],
        );
        m.insert("/b".into(), vec!["cd".repeat(32), "ef".repeat(20)]);
        m.insert("".into(), vec!["01".repeat(16)]);
        m.insert("/only-bad".into(), vec!["xyz".into()]);
        let idx = DigestIndex::build(&m);
        assert_eq!(idx.names(), 4);
        assert_eq!(idx.get("/a").unwrap().len(), 1);
        assert_eq!(idx.dropped(), 4);
        assert!(idx.get("/a").unwrap().contains(&[0xab; 20]));
        assert!(!idx.get("/a").unwrap().contains(&[0xab; 21]));
        let b = idx.get("/b").unwrap();
        assert!(b.contains(&[0xcd; 32]) && b.contains(&[0xef; 20]));
        assert_eq!(b.to_hex(), vec!["cd".repeat(32), "ef".repeat(20)]);
        assert!(idx.get("").unwrap().contains(&[1; 16]));
        assert!(idx.get("/only-bad").unwrap().is_empty());
        assert!(idx.get("/c").is_none());
        assert!(idx.get("/a/").is_none());
        let mut out = [0; MAX_DIGEST_LEN];
        assert!(decode_lower_hex(&"00".repeat(65), &mut out).is_none());
    }

    #[test]
    fn many_names_all_found() {
        let m: DigestMap = (0..5000)
            .map(|i| (format!("/p/{i}"), vec![format!("{:040x}", i)]))
            .collect();
        let idx = DigestIndex::build(&m);
        for i in 0..5000u32 {
            let mut want = [0u8; 20];
            want[16..].copy_from_slice(&i.to_be_bytes());
            assert!(idx.get(&format!("/p/{i}")).unwrap().contains(&want), "{i}");
        }
    }
}
