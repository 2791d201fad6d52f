//! The agent's accepted TPM algorithms: `accept_tpm_hash_algs`,
//! `accept_tpm_encryption_algs`, `accept_tpm_signing_algs` (PROTOCOL.md §5.2, §5.6).
//!
//! Matching follows upstream's `algorithms.is_accepted`: exact string, or equal after
//! normalising the aliases `rsa` → `rsa2048` and `ecc` → `ecc256` on both sides. The hash
//! must also be one upstream recognises (`sha1`, `sha256`, `sha384`, `sha512`, `sm3_256`).

use keylime_tpm::HashAlg;
use serde::{Deserialize, Serialize};

/// Which algorithms the tenant accepts for this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedAlgorithms {
    #[serde(rename = "accept_tpm_hash_algs")]
    pub hash: Vec<String>,
    #[serde(rename = "accept_tpm_encryption_algs")]
    pub encryption: Vec<String>,
    #[serde(rename = "accept_tpm_signing_algs")]
    pub signing: Vec<String>,
}

impl Default for AcceptedAlgorithms {
    /// Upstream tenant defaults (`tenant.conf`): hashes sha512/384/256, encryption
    /// ecc/rsa, signing rsassa/ecschnorr (no `ecdsa`, §11 Q27).
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        AcceptedAlgorithms {
            hash: v(&["sha512", "sha384", "sha256"]),
            encryption: v(&["ecc", "rsa"]),
            signing: v(&["ecschnorr", "rsassa"]),
        }
    }
}

/// Which reported algorithm was not accepted; names the event
/// `qoute_validation.invalid_{hash,enc,sign}_alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgorithmRejection {
    Hash(String),
    Encryption(String),
    Signing(String),
}

impl AlgorithmRejection {
    /// The event name (without component).
    pub fn event_name(&self) -> &'static str {
        match self {
            AlgorithmRejection::Hash(_) => "invalid_hash_alg",
            AlgorithmRejection::Encryption(_) => "invalid_enc_alg",
            AlgorithmRejection::Signing(_) => "invalid_sign_alg",
        }
    }

    /// Upstream's event context: `{"message": …, "data": <alg>}`.
    pub fn context(&self) -> serde_json::Value {
        let (what, alg) = match self {
            AlgorithmRejection::Hash(a) => ("hash", a),
            AlgorithmRejection::Encryption(a) => ("encryption", a),
            AlgorithmRejection::Signing(a) => ("signing", a),
        };
        serde_json::json!({
            "message": format!("TPM Quote is using an unaccepted {what} algorithm: {alg}"),
            "data": alg,
        })
    }
}

fn normalise(alg: &str) -> &str {
    match alg {
        "rsa" => "rsa2048",
        "ecc" => "ecc256",
        other => other,
    }
}

/// Upstream's `is_accepted`.
pub fn is_accepted(alg: &str, accepted: &[String]) -> bool {
    accepted
        .iter()
        .any(|a| a == alg || normalise(a) == normalise(alg))
}

impl AcceptedAlgorithms {
    /// Check the agent's reported algorithms in upstream's order (hash, encryption,
    /// signing); returns the hash on success. Empty strings are never accepted.
    pub fn check(
        &self,
        hash_alg: &str,
        enc_alg: &str,
        sign_alg: &str,
    ) -> Result<HashAlg, AlgorithmRejection> {
        let hash = (!hash_alg.is_empty() && is_accepted(hash_alg, &self.hash))
            .then(|| hash_alg.parse::<HashAlg>().ok())
            .flatten()
            // `parse` is case-insensitive; upstream's enum is not.
            .filter(|h| h.name() == hash_alg)
            .ok_or_else(|| AlgorithmRejection::Hash(hash_alg.to_string()))?;
        if enc_alg.is_empty() || !is_accepted(enc_alg, &self.encryption) {
            return Err(AlgorithmRejection::Encryption(enc_alg.to_string()));
        }
        if sign_alg.is_empty() || !is_accepted(sign_alg, &self.signing) {
            return Err(AlgorithmRejection::Signing(sign_alg.to_string()));
        }
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(h: &[&str], e: &[&str], s: &[&str]) -> AcceptedAlgorithms {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        AcceptedAlgorithms {
            hash: v(h),
            encryption: v(e),
            signing: v(s),
        }
    }

    #[test]
    fn aliases_match_both_ways() {
        let a = accept(&["sha256"], &["rsa", "ecc256"], &["rsassa"]);
        assert_eq!(a.check("sha256", "rsa2048", "rsassa"), Ok(HashAlg::Sha256));
        assert_eq!(a.check("sha256", "rsa", "rsassa"), Ok(HashAlg::Sha256));
        assert_eq!(a.check("sha256", "ecc", "rsassa"), Ok(HashAlg::Sha256));
        assert_eq!(
            a.check("sha256", "rsa4096", "rsassa"),
            Err(AlgorithmRejection::Encryption("rsa4096".into()))
        );
    }

    #[test]
    fn rejections_in_upstream_order() {
        let a = accept(&["sha256", "md5"], &["rsa"], &["rsassa"]);
        assert_eq!(
            a.check("sha1", "ecc", "ecdsa"),
            Err(AlgorithmRejection::Hash("sha1".into()))
        );
        // Accepted by the list but not a recognised hash.
        assert_eq!(
            a.check("md5", "rsa", "rsassa"),
            Err(AlgorithmRejection::Hash("md5".into()))
        );
        assert_eq!(
            a.check("", "rsa", "rsassa"),
            Err(AlgorithmRejection::Hash(String::new()))
        );
        let r = a.check("sha256", "rsa", "rsapss").unwrap_err();
        assert_eq!(r.event_name(), "invalid_sign_alg");
        assert_eq!(r.context()["data"], "rsapss");
        assert_eq!(
            r.context()["message"],
            "TPM Quote is using an unaccepted signing algorithm: rsapss"
        );
    }
}
