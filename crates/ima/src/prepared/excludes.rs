//! The policy's `excludes`: regular expressions matched at the *start* of a path, as
//! upstream's `re.match` on the alternation of all patterns does (a pattern need not match
//! the whole path: `/tmp` excludes `/tmp/x`). Compiled once into one `RegexSet` under size
//! limits, so a pathological pattern is a clear error instead of unbounded work; matching is
//! linear in the path length.

use regex::{RegexSet, RegexSetBuilder};

use crate::policy::PolicyError;

/// Limit on the compiled program of all excludes together.
pub const EXCLUDES_SIZE_LIMIT: usize = 8 << 20;
/// Limit on the lazy DFA cache used while matching.
pub const EXCLUDES_DFA_SIZE_LIMIT: usize = 8 << 20;

/// Compiled `excludes`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Excludes {
    set: Option<RegexSet>,
}

fn anchored(p: &str) -> String {
    format!(r"\A(?:{p})")
}

fn builder<I, S>(patterns: I) -> RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = RegexSetBuilder::new(patterns);
    b.size_limit(EXCLUDES_SIZE_LIMIT)
        .dfa_size_limit(EXCLUDES_DFA_SIZE_LIMIT);
    b
}

fn problem(e: regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("compiles to more than the {limit}-byte limit")
        }
        other => other.to_string(),
    }
}

impl Excludes {
    pub(crate) fn compile(patterns: &[String]) -> Result<Self, PolicyError> {
        if patterns.is_empty() {
            return Ok(Excludes { set: None });
        }
        match builder(patterns.iter().map(|p| anchored(p))).build() {
            Ok(set) => Ok(Excludes { set: Some(set) }),
            Err(e) => {
                // name the pattern at fault if one fails alone
                for p in patterns {
                    if let Err(e) = builder([anchored(p)]).build() {
                        return Err(PolicyError::Exclude {
                            pattern: crate::error::excerpt(p),
                            problem: problem(e),
                        });
                    }
                }
                Err(PolicyError::Exclude {
                    pattern: format!("all {} patterns together", patterns.len()),
                    problem: problem(e),
                })
            }
        }
    }

    /// True when some pattern matches at the start of `path`.
    #[inline]
    pub(crate) fn is_excluded(&self, path: &str) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(path))
    }

    pub(crate) fn len(&self) -> usize {
        self.set.as_ref().map_or(0, RegexSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excludes {
        Excludes::compile(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_at_the_start_only() {
        let e = ex(&["/tmp", r"/var/log/.*\.log$", "a|/opt"]);
        assert!(e.is_excluded("/tmp/x"));
        assert!(e.is_excluded("/tmp"));
        assert!(!e.is_excluded("/x/tmp"));
        assert!(e.is_excluded("/var/log/a.log"));
        assert!(!e.is_excluded("/var/log/a.log.1"));
        // the alternation inside one pattern stays anchored
        assert!(e.is_excluded("/opt/y"));
        assert!(!e.is_excluded("/usr/opt"));
        assert!(!ex(&[]).is_excluded("/tmp"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = Excludes::compile(&["/ok".into(), "(unclosed".into()]).unwrap_err();
        assert!(
            matches!(&e, PolicyError::Exclude { pattern, .. } if pattern == "(unclosed"),
            "{e}"
        );
        let e = Excludes::compile(&["(?=lookahead)".into()]).unwrap_err();
        assert!(e.to_string().contains("lookahead"), "{e}");
    }
}
