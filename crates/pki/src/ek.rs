//! EK certificate validation against a TPM vendor CA store (upstream's
//! `tpm_cert_store` directory).
//!
//! Upstream (keylime 7.x `cert_utils.verify_cert`, called by the tenant's
//! `check_ek`) accepts an EK certificate when ANY certificate in the store has
//! the EK cert's issuer as subject and its key verifies the EK cert's signature.
//! It never looks at validity dates and never walks further up. We keep that
//! acceptance rule — every store certificate is a trust anchor, which is what
//! makes `STM TPM ECC Intermediate CA 01` work although its root in the store is
//! cross-signed by a CA that is not there — and add:
//! * intermediates: the EK certificate may chain through extra certificates
//!   passed in (from NV indices 0x01c00100..) before reaching a store CA;
//! * the path continues from the anchor through store CAs towards a self-signed
//!   root when it can (reported; required only with [`EkVerifyOptions::require_root`]);
//! * validity dates of the EK certificate, intermediates and anchor are
//!   checked under a policy ([`ValidityPolicy`]). The default, `Warn`, accepts
//!   expired or not-yet-valid certificates like upstream but logs and reports
//!   them: vendor CAs in the field do expire, and EK certificates often carry
//!   "not after 9999" or dates unrelated to the TPM's life;
//! * untrusted intermediates must be CAs (basicConstraints cA=true); store
//!   certificates are trusted as they are, as upstream does.
//!
//! Parsing is lenient and signatures are verified over the TBS bytes as signed,
//! so real EK certificates (critical SAN directoryName, unknown critical
//! extensions, negative serials, non-DER names, NV padding) are accepted.
//! Nothing here trusts webpki, which rejects several of these.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::PkiError;
use crate::certinfo::{CertInfo, pem_or_der_to_der_list};
use crate::sigverify::{self, SigError, SignatureScheme};

/// Longest chain built (EK + intermediates + store CAs).
const MAX_CHAIN_LEN: usize = 8;
/// Most untrusted intermediates accepted with one EK certificate (TPM NV holds
/// a handful; the index range 0x01c00100..0x01c001ff allows 256).
const MAX_INTERMEDIATES: usize = 256;
/// Largest file read from the store.
const MAX_STORE_FILE_LEN: u64 = 4 * 1024 * 1024;

/// What to do when a certificate of the chain is outside its validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidityPolicy {
    /// Do not look at dates (upstream's behaviour, silently).
    Ignore,
    /// Accept, but log a warning and list the certificate in the verdict (default).
    #[default]
    Warn,
    /// Reject the chain.
    Enforce,
}

/// Options for one verification.
#[derive(Debug, Clone, Default)]
pub struct EkVerifyOptions {
    /// Extra, untrusted intermediates (DER), e.g. from TPM NV chain indices.
    pub intermediates: Vec<Vec<u8>>,
    /// Validity-date policy.
    pub validity: ValidityPolicy,
    /// Time to check validity at (default: now).
    pub at: Option<SystemTime>,
    /// Require the path to end at a self-signed root in the store (upstream does not).
    pub require_root: bool,
}

/// Where a certificate of a verified chain came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertOrigin {
    /// The certificate being verified.
    Presented,
    /// `EkVerifyOptions::intermediates[i]`.
    Intermediate(usize),
    /// A store file (file name).
    Store(String),
}

/// One certificate of a verified chain.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// Subject (display form; `<empty subject>` for EK certs without one).
    pub subject: String,
    /// Where it came from.
    pub origin: CertOrigin,
    /// Validity start, Unix seconds.
    pub not_before: i64,
    /// Validity end, Unix seconds.
    pub not_after: i64,
    /// The scheme its issuer signed it with (None for the last link if self-signed
    /// was not checked).
    pub signature: Option<SignatureScheme>,
}

/// A successful EK certificate verification.
#[derive(Debug, Clone)]
pub struct EkCertVerdict {
    /// The chain, EK certificate first.
    pub chain: Vec<ChainLink>,
    /// Store file of the first store CA reached (the trust anchor).
    pub anchor: String,
    /// Whether the chain reaches a self-signed root in the store.
    pub reaches_root: bool,
    /// Non-fatal findings (expired or not-yet-valid certificates under `Warn`).
    pub warnings: Vec<String>,
}

/// State of one chain search over the untrusted intermediates.
#[derive(Default)]
struct PathSearch {
    /// Intermediates on the current path.
    used: Vec<usize>,
    /// Intermediates from which no path to the store exists.
    dead: Vec<usize>,
}

struct StoreCert {
    info: CertInfo,
    file: String,
}

/// TPM vendor CA certificates loaded from a directory.
pub struct EkCertStore {
    certs: Vec<StoreCert>,
}

impl std::fmt::Debug for EkCertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EkCertStore")
            .field("certs", &self.certs.len())
            .finish()
    }
}

impl EkCertStore {
    /// Loads every regular file in `dir` (not recursive): PEM files with one or
    /// more certificates (text around them is fine) or single DER certificates.
    /// Unreadable or unparsable files are skipped with a warning; a directory
    /// that yields no certificate at all is an error.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let entries = std::fs::read_dir(dir).map_err(|e| PkiError::CertStore {
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        let mut store = EkCertStore { certs: Vec::new() };
        for path in paths {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match read_store_file(&path) {
                Ok(ders) => {
                    for (i, der) in ders.iter().enumerate() {
                        let label = if ders.len() > 1 {
                            format!("{file}#{i}")
                        } else {
                            file.clone()
                        };
                        match CertInfo::parse(der, &format!("store file {label}")) {
                            Ok(info) => store.certs.push(StoreCert { info, file: label }),
                            Err(e) => {
                                tracing::warn!(file = %path.display(), error = %e, "skipping certificate in TPM cert store")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping unreadable file in TPM cert store")
                }
            }
        }
        if store.certs.is_empty() {
            return Err(PkiError::CertStore {
                path: dir.to_owned(),
                reason: "no certificate could be loaded".into(),
            });
        }
        tracing::debug!(store = %dir.display(), certificates = store.certs.len(), "loaded TPM cert store");
        Ok(store)
    }

    /// Builds a store from DER certificates in memory (`(label, der)` pairs).
    pub fn from_ders<'a>(
        certs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, PkiError> {
        let mut store = EkCertStore { certs: Vec::new() };
        for (label, der) in certs {
            let info = CertInfo::parse(der, &format!("store certificate {label}"))?;
            store.certs.push(StoreCert {
                info,
                file: label.to_owned(),
            });
        }
        Ok(store)
    }

    /// Number of certificates loaded.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Verifies an EK certificate (DER, trailing padding allowed) with default options.
    pub fn verify(&self, ek_cert_der: &[u8]) -> Result<EkCertVerdict, PkiError> {
        self.verify_with(ek_cert_der, &EkVerifyOptions::default())
    }

    /// Verifies an EK certificate with explicit options.
    pub fn verify_with(
        &self,
        ek_cert_der: &[u8],
        opts: &EkVerifyOptions,
    ) -> Result<EkCertVerdict, PkiError> {
        let ek = CertInfo::parse(ek_cert_der, "EK certificate")?;
        if opts.intermediates.len() > MAX_INTERMEDIATES {
            return Err(PkiError::TooLarge {
                what: "EK certificate chain (number of intermediates)".into(),
                len: opts.intermediates.len(),
                max: MAX_INTERMEDIATES,
            });
        }
        let mut intermediates = Vec::with_capacity(opts.intermediates.len());
        for (i, der) in opts.intermediates.iter().enumerate() {
            match CertInfo::parse(der, &format!("intermediate #{i}")) {
                Ok(info) => intermediates.push((i, info)),
                Err(e) => {
                    tracing::warn!(index = i, error = %e, "ignoring unparsable EK chain certificate")
                }
            }
        }

        // Path from the EK to the first store certificate (the anchor), through
        // intermediates, with backtracking over same-named alternatives.
        let mut search = PathSearch::default();
        let (inter_path, anchor_idx) = self.build_path(&ek, &intermediates, &mut search)?;
        let mut path: Vec<(CertInfo, CertOrigin, Option<SignatureScheme>)> =
            vec![(ek.clone(), CertOrigin::Presented, sigverify::describe(&ek))];
        for pos in inter_path {
            if let Some((index, info)) = intermediates.get(pos) {
                let scheme = sigverify::describe(info);
                path.push((info.clone(), CertOrigin::Intermediate(*index), scheme));
            }
        }

        // Continue from the anchor through store CAs towards a self-signed root.
        let mut store_path = vec![anchor_idx];
        let mut reaches_root = false;
        while let Some(&last) = store_path.last() {
            let Some(cert) = self.certs.get(last) else {
                break;
            };
            if cert.info.is_self_issued()
                && sigverify::verify_signed_by(&cert.info, &cert.info).is_ok()
            {
                reaches_root = true;
                break;
            }
            if store_path.len() + path.len() >= MAX_CHAIN_LEN {
                break;
            }
            let next = self.certs.iter().enumerate().position(|(i, c)| {
                !store_path.contains(&i)
                    && cert.info.issued_by_name(&c.info)
                    && sigverify::verify_signed_by(&cert.info, &c.info).is_ok()
            });
            match next {
                Some(i) => store_path.push(i),
                None => break,
            }
        }

        let mut chain: Vec<ChainLink> = path
            .iter()
            .map(|(info, origin, sig)| link(info, origin.clone(), *sig))
            .collect();
        for (n, &i) in store_path.iter().enumerate() {
            if let Some(c) = self.certs.get(i) {
                let next_signed = n + 1 < store_path.len() || reaches_root;
                let sig = next_signed.then(|| sigverify::describe(&c.info)).flatten();
                chain.push(link(&c.info, CertOrigin::Store(c.file.clone()), sig));
            }
        }
        let anchor = self
            .certs
            .get(anchor_idx)
            .map(|c| c.file.clone())
            .unwrap_or_default();

        if opts.require_root && !reaches_root {
            let last = store_path
                .last()
                .and_then(|&i| self.certs.get(i))
                .map(|c| c.info.display_subject())
                .unwrap_or_default();
            return Err(PkiError::NoSelfSignedRoot {
                subject: ek.display_subject(),
                anchor: last,
            });
        }

        // Dates matter from the EK up to the trust anchor; CAs above the anchor
        // (cross-signers) are reported in the chain but do not decide trust.
        let trusted_part = chain.get(..=path.len()).unwrap_or(&chain);
        let warnings = check_validity(trusted_part, opts)?;
        tracing::debug!(anchor = %anchor, chain_len = chain.len(), reaches_root, "EK certificate verified");
        Ok(EkCertVerdict {
            chain,
            anchor,
            reaches_root,
            warnings,
        })
    }

    /// Finds intermediates (positions in `intermediates`, bottom-up) leading from
    /// `cert` to a store certificate, and that store certificate's index.
    fn build_path(
        &self,
        cert: &CertInfo,
        intermediates: &[(usize, CertInfo)],
        search: &mut PathSearch,
    ) -> Result<(Vec<usize>, usize), PkiError> {
        let (store_match, store_err) = self.find_store_issuer(cert);
        if let Some(idx) = store_match {
            return Ok((Vec::new(), idx));
        }
        let mut first_err = store_err;
        if search.used.len() + 2 < MAX_CHAIN_LEN {
            for pos in 0..intermediates.len() {
                if search.used.contains(&pos) || search.dead.contains(&pos) {
                    continue;
                }
                let Some((_, candidate)) = intermediates.get(pos) else {
                    continue;
                };
                match check_intermediate(cert, intermediates, pos) {
                    None => continue,
                    Some(Err(e)) => {
                        first_err.get_or_insert(e);
                        continue;
                    }
                    Some(Ok(())) => {}
                }
                search.used.push(pos);
                match self.build_path(candidate, intermediates, search) {
                    Ok((mut rest, anchor)) => {
                        rest.insert(0, pos);
                        return Ok((rest, anchor));
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                        search.used.pop();
                        // Never expand it again: keeps the search polynomial even
                        // when a peer sends many same-named intermediates.
                        search.dead.push(pos);
                    }
                }
            }
        }
        Err(first_err.unwrap_or_else(|| unknown_issuer(cert)))
    }

    /// Index of a store certificate that signed `cert`, and the error from the
    /// last name-matching candidate whose signature check failed.
    fn find_store_issuer(&self, cert: &CertInfo) -> (Option<usize>, Option<PkiError>) {
        let mut last_err = None;
        for (i, candidate) in self.certs.iter().enumerate() {
            if !cert.issued_by_name(&candidate.info) {
                continue;
            }
            match sigverify::verify_signed_by(cert, &candidate.info) {
                Ok(()) => return (Some(i), None),
                Err(e) => last_err = Some(sig_error(cert, &candidate.info, &candidate.file, e)),
            }
        }
        (None, last_err)
    }
}

/// Whether intermediate `pos` could issue `cert`: `None` if the names differ,
/// otherwise the outcome of the CA and signature checks.
fn check_intermediate(
    cert: &CertInfo,
    intermediates: &[(usize, CertInfo)],
    pos: usize,
) -> Option<Result<(), PkiError>> {
    let (index, candidate) = intermediates.get(pos)?;
    if !cert.issued_by_name(candidate) {
        return None;
    }
    // Untrusted intermediates must say they are CAs; otherwise any leaf key
    // chaining to a vendor CA could vouch for a made-up EK certificate.
    if candidate.is_ca != Some(true) {
        return Some(Err(PkiError::IssuerNotCa {
            subject: cert.display_subject(),
            issuer: candidate.display_subject(),
            source_name: format!("intermediate #{index}"),
        }));
    }
    Some(
        sigverify::verify_signed_by(cert, candidate)
            .map_err(|e| sig_error(cert, candidate, &format!("intermediate #{index}"), e)),
    )
}

fn sig_error(cert: &CertInfo, issuer: &CertInfo, source_name: &str, e: SigError) -> PkiError {
    match e {
        SigError::Unsupported(algorithm) => PkiError::UnsupportedAlgorithm {
            subject: cert.display_subject(),
            algorithm,
        },
        SigError::BadKey(reason) | SigError::Invalid(reason) => PkiError::BadSignature {
            subject: cert.display_subject(),
            issuer: issuer.display_subject(),
            source_name: source_name.to_owned(),
            reason,
        },
    }
}

fn unknown_issuer(cert: &CertInfo) -> PkiError {
    PkiError::UnknownIssuer {
        subject: cert.display_subject(),
        issuer: cert.issuer.clone(),
    }
}

fn link(info: &CertInfo, origin: CertOrigin, signature: Option<SignatureScheme>) -> ChainLink {
    ChainLink {
        subject: info.display_subject(),
        origin,
        not_before: info.not_before,
        not_after: info.not_after,
        signature,
    }
}

fn check_validity(chain: &[ChainLink], opts: &EkVerifyOptions) -> Result<Vec<String>, PkiError> {
    let mut warnings = Vec::new();
    if opts.validity == ValidityPolicy::Ignore {
        return Ok(warnings);
    }
    let at = opts.at.unwrap_or_else(SystemTime::now);
    let now = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    for l in chain {
        if now >= l.not_before && now <= l.not_after {
            continue;
        }
        let err = PkiError::NotValidAtTime {
            subject: l.subject.clone(),
            at: rfc3339(now),
            not_before: rfc3339(l.not_before),
            not_after: rfc3339(l.not_after),
        };
        if opts.validity == ValidityPolicy::Enforce {
            return Err(err);
        }
        tracing::warn!(subject = %l.subject, "EK chain certificate outside its validity period (accepted, as upstream)");
        warnings.push(err.to_string());
    }
    Ok(warnings)
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

fn read_store_file(path: &Path) -> Result<Vec<Vec<u8>>, PkiError> {
    let meta = std::fs::metadata(path).map_err(|e| PkiError::io("reading", path, e))?;
    if meta.len() > MAX_STORE_FILE_LEN {
        return Err(PkiError::TooLarge {
            what: path.display().to_string(),
            len: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            max: usize::try_from(MAX_STORE_FILE_LEN).unwrap_or(usize::MAX),
        });
    }
    let data = crate::files::read(path)?;
    if data.first() == Some(&0x30) {
        // DER (a .cer/.crt/.der file)
        return Ok(vec![data]);
    }
    pem_or_der_to_der_list(&data)
}
