//! The upstream rust-keylime quote sample parses with every part decoded (it cannot be
//! verified: its AK is not published).

use keylime_tpm::quote::decode_quote_string;
use keylime_tpm::{Attest, AttestBody, HashAlg, Signature, pcr_blob};

#[test]
fn rust_keylime_sample_quote_parses() {
    let path = keylime_testkit::testdata("quotes/rust-keylime/test-quote.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let parts = decode_quote_string(text.trim()).unwrap();

    assert_eq!(parts.attest.len(), 93);
    let attest = Attest::parse(&parts.attest).unwrap();
    assert_eq!(attest.extra_data, b"TEST");
    let AttestBody::Quote {
        pcr_select,
        pcr_digest,
    } = &attest.body
    else {
        panic!("not a quote: {:?}", attest.body);
    };
    assert_eq!(pcr_select.len(), 1);
    assert_eq!(pcr_select[0].hash, HashAlg::Sha1);
    assert_eq!(pcr_select[0].pcrs, vec![16]);

    let sig = Signature::parse(&parts.signature).unwrap();
    assert!(matches!(
        sig,
        Signature::RsaSsa {
            hash: HashAlg::Sha1,
            ..
        }
    ));

    let (sels, values) = pcr_blob::decode(&parts.pcr_blob).unwrap();
    assert_eq!(sels, *pcr_select);
    assert_eq!(values.len(), 1);
    // The blob's PCR value is consistent with the digest the TPM signed.
    assert_eq!(keylime_tpm::pcr_digest(HashAlg::Sha1, &values), *pcr_digest);
}
