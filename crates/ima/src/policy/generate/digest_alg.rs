//! Which file-digest algorithm a new runtime policy uses: an explicit choice, else the one
//! the base policy, the allowlist or the measurement list's boot_aggregate uses (guessed from
//! digest lengths, in upstream's priority order), else SHA-256; inputs that disagree are an
//! error.

use std::fmt;

use super::error::GenerateError;

/// A file-digest algorithm upstream knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3_256,
}

impl DigestAlg {
    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "sha1",
            DigestAlg::Sha256 => "sha256",
            DigestAlg::Sha384 => "sha384",
            DigestAlg::Sha512 => "sha512",
            DigestAlg::Sm3_256 => "sm3_256",
        }
    }

    pub fn from_name(name: &str) -> Option<DigestAlg> {
        Some(match name {
            "sha1" => DigestAlg::Sha1,
            "sha256" => DigestAlg::Sha256,
            "sha384" => DigestAlg::Sha384,
            "sha512" => DigestAlg::Sha512,
            "sm3_256" => DigestAlg::Sm3_256,
            _ => return None,
        })
    }

    /// Length of a digest in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlg::Sha1 => 40,
            DigestAlg::Sha256 | DigestAlg::Sm3_256 => 64,
            DigestAlg::Sha384 => 96,
            DigestAlg::Sha512 => 128,
        }
    }
}

impl fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one input says about the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guess {
    Known(DigestAlg),
    /// 64 hex digits: SHA-256 or SM3.
    Sha256OrSm3,
    /// A digest whose length matches no algorithm, or an unknown algorithm name.
    Invalid,
}

impl Guess {
    /// Guesses from a hex digest's length, as upstream does.
    pub fn from_hex(digest: &str) -> Guess {
        match digest.len() {
            40 => Guess::Known(DigestAlg::Sha1),
            64 => Guess::Sha256OrSm3,
            96 => Guess::Known(DigestAlg::Sha384),
            128 => Guess::Known(DigestAlg::Sha512),
            _ => Guess::Invalid,
        }
    }

    fn compatible(self, other: Guess) -> Option<Guess> {
        use DigestAlg::{Sha256, Sm3_256};
        match (self, other) {
            (a, b) if a == b => Some(a),
            (Guess::Sha256OrSm3, Guess::Known(k @ (Sha256 | Sm3_256)))
            | (Guess::Known(k @ (Sha256 | Sm3_256)), Guess::Sha256OrSm3) => Some(Guess::Known(k)),
            _ => None,
        }
    }
}

impl fmt::Display for Guess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guess::Known(a) => a.fmt(f),
            Guess::Sha256OrSm3 => f.write_str("sha256_or_sm3_256"),
            Guess::Invalid => f.write_str("invalid"),
        }
    }
}

/// Picks the algorithm from `(guess, source)` pairs in priority order. Every source must agree
/// (an ambiguous 64-digit guess agrees with sha256 and sm3_256); an invalid guess or a
/// disagreement is an error naming the source. No guess at all gives SHA-256, and an
/// ambiguity that nothing resolves is taken as SHA-256.
pub fn choose(sources: &[(Option<Guess>, &str)]) -> Result<DigestAlg, GenerateError> {
    let mut problems = Vec::new();
    let mut chosen: Option<(Guess, &str)> = None;
    for &(guess, source) in sources {
        let Some(guess) = guess else { continue };
        if guess == Guess::Invalid {
            problems.push(format!("invalid digest algorithm found in the {source}"));
            continue;
        }
        match chosen {
            None => {
                tracing::debug!(algorithm = %guess, source, "digest algorithm");
                chosen = Some((guess, source));
            }
            Some((current, from)) => match current.compatible(guess) {
                Some(merged) => chosen = Some((merged, from)),
                None => problems.push(format!(
                    "the digest algorithm in the {source} ({guess}) does not match the \
                     '{current}' algorithm of the {from}"
                )),
            },
        }
    }
    if !problems.is_empty() {
        return Err(GenerateError::DigestAlgorithm(problems.join("; ")));
    }
    Ok(match chosen {
        Some((Guess::Known(a), _)) => a,
        _ => DigestAlg::Sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_and_conflicts() {
        let sha1 = Some(Guess::Known(DigestAlg::Sha1));
        let amb = Some(Guess::Sha256OrSm3);
        assert_eq!(choose(&[]).unwrap(), DigestAlg::Sha256);
        assert_eq!(
            choose(&[(sha1, "a"), (None, "b")]).unwrap(),
            DigestAlg::Sha1
        );
        assert_eq!(
            choose(&[(Some(Guess::Known(DigestAlg::Sm3_256)), "a"), (amb, "b")]).unwrap(),
            DigestAlg::Sm3_256
        );
        assert_eq!(
            choose(&[(amb, "a"), (amb, "b")]).unwrap(),
            DigestAlg::Sha256
        );
        let err = choose(&[(sha1, "--algo option"), (amb, "base policy")]).unwrap_err();
        assert!(err.to_string().contains("base policy"), "{err}");
        let err = choose(&[(Some(Guess::Invalid), "allowlist")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid digest algorithm found in the allowlist")
        );
    }

    #[test]
    fn guesses_from_lengths() {
        assert_eq!(
            Guess::from_hex(&"0".repeat(40)),
            Guess::Known(DigestAlg::Sha1)
        );
        assert_eq!(Guess::from_hex(&"0".repeat(64)), Guess::Sha256OrSm3);
        assert_eq!(Guess::from_hex(&"0".repeat(32)), Guess::Invalid);
    }
}
