//! `GET /v2.x/quotes/identity` and `/quotes/integrity` (PROTOCOL.md §4.2–4.3): query
//! validation exactly as upstream's Rust agent (texts included), then one TPM sequence.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_api::agent::QuoteResponse;

use super::api::{PullApi, RequestVersion};
use super::info::ENC_ALG_BITS_SINCE;
use super::respond;
use crate::quoting::{QuoteRequest, bind_and_quote, enc_alg_name, read_boot_log, read_ima_list};

/// Longest nonce accepted (the TPM's qualifyingData limit used by upstream).
pub const MAX_NONCE_LEN: usize = 64;
/// Highest PCR index a mask may select.
const MAX_PCR: u32 = 23;

/// A validated integrity-quote query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityQuery {
    pub nonce: String,
    pub mask: u32,
    pub include_pubkey: bool,
    pub ima_ml_entry: u64,
}

fn is_alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The nonce of an identity quote, or the 400 reason.
pub fn parse_identity_query(q: &HashMap<String, String>) -> Result<String, String> {
    let nonce = q
        .get("nonce")
        .ok_or("uri must contain key 'nonce'")?
        .clone();
    if nonce.is_empty() {
        return Err("nonce must not be empty".into());
    }
    if !is_alnum(&nonce) {
        return Err(format!(
            "Parameters should be strictly alphanumeric: {nonce}"
        ));
    }
    if nonce.len() > MAX_NONCE_LEN {
        return Err(format!(
            "Nonce is too long (max size {MAX_NONCE_LEN}): {nonce}"
        ));
    }
    Ok(nonce)
}

/// The parameters of an integrity quote, or the 400 reason.
pub fn parse_integrity_query(q: &HashMap<String, String>) -> Result<IntegrityQuery, String> {
    let nonce = q
        .get("nonce")
        .ok_or("uri must contain key 'nonce'")?
        .clone();
    let mask_text = q.get("mask").ok_or("uri must contain key 'mask'")?;
    if nonce.is_empty() {
        return Err("nonce must not be empty".into());
    }
    if !is_alnum(&nonce) {
        return Err(format!("nonce should be strictly alphanumeric: {nonce}"));
    }
    if !is_alnum(mask_text) {
        return Err(format!("mask should be strictly alphanumeric: {mask_text}"));
    }
    let hex = mask_text.strip_prefix("0x").unwrap_or(mask_text);
    let mask = u32::from_str_radix(hex, 16)
        .map_err(|_| format!("mask should be a hex encoded 32-bit integer: {mask_text}"))?;
    if mask >> (MAX_PCR + 1) != 0 {
        return Err(format!("mask selects PCRs above {MAX_PCR}: {mask_text}"));
    }
    if nonce.len() > MAX_NONCE_LEN {
        return Err(format!(
            "Nonce is too long (max size: {MAX_NONCE_LEN}): {nonce}"
        ));
    }
    let include_pubkey = match q.get("partial").map(String::as_str) {
        Some("0") => true,
        Some("1") => false,
        _ => return Err("uri must contain key 'partial' and value '0' or '1'".into()),
    };
    // Unparsable offsets mean 0, as upstream.
    let ima_ml_entry = q
        .get("ima_ml_entry")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(IntegrityQuery {
        nonce,
        mask,
        include_pubkey,
        ima_ml_entry,
    })
}

type RawQuery = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

fn query_map(raw: RawQuery) -> Result<HashMap<String, String>, String> {
    raw.map(|Query(q)| q)
        .map_err(|e| format!("malformed query string: {e}"))
}

/// Quotes on the blocking pool (re-establishing a lost TPM first, see `shared_tpm`);
/// `Err` is the 500 response, upstream's answer when its agent cannot quote, which
/// verifiers retry (a 503 would make upstream's verifier fail the agent at once).
async fn quote(api: &Arc<PullApi>, nonce: String, mask: u32) -> Result<String, Box<Response>> {
    let api2 = Arc::clone(api);
    let result = api
        .tpm
        .with_identity(move |tpm, identity| {
            bind_and_quote(
                tpm,
                &QuoteRequest {
                    ak: &identity.ak,
                    hash: api2.hash_alg,
                    sign: api2.sign_alg,
                    nonce: nonce.as_bytes(),
                    mask,
                    pubkey_pem: api2.payload_key.pubkey_pem(),
                },
            )
        })
        .await;
    let unable = || {
        Box::new(respond::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unable to retrieve quote",
        ))
    };
    match result {
        Ok(Ok(q)) if q.clock.safe => Ok(q.text),
        Ok(Ok(q)) => {
            // Every verifier rejects such a quote for good ("clock safe flag is disabled");
            // the TPM marks its clock safe again once it next saves it (within seconds on
            // swtpm), and the verifier retries a 500 meanwhile.
            tracing::error!(
                reset_count = q.clock.reset_count,
                clock = q.clock.clock,
                "TPM quote withheld: the TPM's clock is not marked safe (the TPM was reset \
                 without an orderly shutdown) until the TPM next saves it"
            );
            Err(unable())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "TPM quote failed");
            Err(unable())
        }
        Err(e) => {
            tracing::error!(error = %e, "TPM unavailable for the quote");
            Err(unable())
        }
    }
}

fn base_response(api: &PullApi, version: keylime_api::ApiVersion, quote: String) -> QuoteResponse {
    QuoteResponse {
        quote,
        hash_alg: api.hash_alg.name().to_string(),
        enc_alg: enc_alg_name(&api.identity.ek, version >= ENC_ALG_BITS_SINCE),
        sign_alg: api.sign_alg.name().to_string(),
        ..QuoteResponse::default()
    }
}

pub(super) async fn identity(
    State(api): State<Arc<PullApi>>,
    Extension(RequestVersion(version)): Extension<RequestVersion>,
    raw: RawQuery,
) -> Response {
    let q = match query_map(raw) {
        Ok(q) => q,
        Err(reason) => return respond::bad_request(reason),
    };
    let nonce = match parse_identity_query(&q) {
        Ok(n) => n,
        Err(reason) => return respond::bad_request(reason),
    };
    let quote = match quote(&api, nonce, 0).await {
        Ok(q) => q,
        Err(resp) => return *resp,
    };
    let mut body = base_response(&api, version, quote);
    body.pubkey = Some(api.payload_key.pubkey_pem().to_string());
    tracing::info!("GET identity quote returning 200 response");
    respond::ok(body)
}

pub(super) async fn integrity(
    State(api): State<Arc<PullApi>>,
    Extension(RequestVersion(version)): Extension<RequestVersion>,
    raw: RawQuery,
) -> Response {
    let q = match query_map(raw) {
        Ok(q) => q,
        Err(reason) => return respond::bad_request(reason),
    };
    let params = match parse_integrity_query(&q) {
        Ok(p) => p,
        Err(reason) => return respond::bad_request(reason),
    };
    let quote = match quote(&api, params.nonce.clone(), params.mask).await {
        Ok(q) => q,
        Err(resp) => return *resp,
    };
    let mut body = base_response(&api, version, quote);
    if params.include_pubkey {
        body.pubkey = Some(api.payload_key.pubkey_pem().to_string());
    }
    let (ima_path, mb_path) = (api.ima_ml_path.clone(), api.measuredboot_ml_path.clone());
    let want_boot_log = params.mask & 1 != 0;
    let entry = params.ima_ml_entry;
    let logs = tokio::task::spawn_blocking(move || {
        let ima = read_ima_list(&ima_path, entry);
        let boot = want_boot_log.then(|| read_boot_log(&mb_path)).flatten();
        (ima, boot)
    })
    .await;
    match logs {
        Ok((ima, boot)) => {
            if let Some((list, first)) = ima {
                body.ima_measurement_list = Some(list);
                body.ima_measurement_list_entry = Some(first);
            }
            body.mb_measurement_list = boot.map(|b| STANDARD.encode(b));
        }
        Err(e) => tracing::warn!(error = %e, "reading the measurement logs failed"),
    }
    tracing::info!("GET integrity quote returning 200 response");
    respond::ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn identity_rules() {
        assert_eq!(
            parse_identity_query(&q(&[("nonce", "abc123")])).unwrap(),
            "abc123"
        );
        assert!(parse_identity_query(&q(&[])).unwrap_err().contains("nonce"));
        assert_eq!(
            parse_identity_query(&q(&[("nonce", "ab-c")])).unwrap_err(),
            "Parameters should be strictly alphanumeric: ab-c"
        );
        assert!(parse_identity_query(&q(&[("nonce", "é")])).is_err());
        let long = "a".repeat(65);
        assert!(
            parse_identity_query(&q(&[("nonce", &long)]))
                .unwrap_err()
                .starts_with("Nonce is too long (max size 64)")
        );
        assert!(parse_identity_query(&q(&[("nonce", &"a".repeat(64))])).is_ok());
    }

    #[test]
    fn integrity_rules() {
        let ok = parse_integrity_query(&q(&[
            ("nonce", "n1"),
            ("mask", "0x408400"),
            ("partial", "0"),
            ("ima_ml_entry", "7"),
        ]))
        .unwrap();
        assert_eq!(
            ok,
            IntegrityQuery {
                nonce: "n1".into(),
                mask: 0x408400,
                include_pubkey: true,
                ima_ml_entry: 7
            }
        );
        let p1 = parse_integrity_query(&q(&[
            ("nonce", "n"),
            ("mask", "1"),
            ("partial", "1"),
            ("ima_ml_entry", "x"),
        ]))
        .unwrap();
        assert!(!p1.include_pubkey);
        assert_eq!(p1.ima_ml_entry, 0);
        let err = |pairs: &[(&str, &str)]| parse_integrity_query(&q(pairs)).unwrap_err();
        assert_eq!(
            err(&[("nonce", "n!"), ("mask", "0x1"), ("partial", "0")]),
            "nonce should be strictly alphanumeric: n!"
        );
        assert_eq!(
            err(&[("nonce", "n"), ("mask", "0x1-"), ("partial", "0")]),
            "mask should be strictly alphanumeric: 0x1-"
        );
        assert_eq!(
            err(&[("nonce", "n"), ("mask", "0xZZ"), ("partial", "0")]),
            "mask should be a hex encoded 32-bit integer: 0xZZ"
        );
        assert_eq!(
            err(&[("nonce", "n"), ("mask", "0x1000000"), ("partial", "0")]),
            "mask selects PCRs above 23: 0x1000000"
        );
        assert_eq!(
            err(&[("nonce", "n"), ("mask", "0x1"), ("partial", "2")]),
            "uri must contain key 'partial' and value '0' or '1'"
        );
        assert!(err(&[("nonce", "n"), ("partial", "0")]).contains("mask"));
        assert!(
            err(&[("nonce", &"a".repeat(65)), ("mask", "1"), ("partial", "0")])
                .starts_with("Nonce is too long (max size: 64)")
        );
    }
}
