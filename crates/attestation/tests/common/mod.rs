//! A software "TPM" for engine tests: an RSA-2048 or P-256 AK held in memory that signs
//! `TPMS_ATTEST` structures built here, with the PCR blob from `keylime_tpm::pcr_blob`.
//! Every part of a quote can be set or tampered with before or after signing.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use keylime_attestation::{
    AcceptedAlgorithms, AgentPolicy, PreparedPolicy, QuoteEvidence, SeverityPolicy, TpmPolicy,
};
use keylime_tpm::alg::id;
use keylime_tpm::attest::{ST_ATTEST_QUOTE, TPM_GENERATED_VALUE};
use keylime_tpm::marshal::Writer;
use keylime_tpm::templates::ak_ecc_with_unique;
use keylime_tpm::{ClockInfo, HashAlg, PcrSelection, SignAlg, Signature, pcr_blob, pcr_digest};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rand::SeedableRng;
use rsa::traits::PublicKeyParts;

/// The AK attributes `tpm2_createak` sets.
const AK_ATTRIBUTES: u32 = 0x0005_0072;

pub enum SoftKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
}

/// A software AK and its `TPM2B_PUBLIC`.
pub struct SoftAk {
    pub key: SoftKey,
    pub ak_tpm: Vec<u8>,
}

fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA keygen")
    })
}

impl SoftAk {
    /// RSA-2048, RSASSA-SHA256 scheme (what `tpm2_createak -G rsa` makes).
    pub fn rsa() -> SoftAk {
        let sk = rsa_key().clone();
        let mut t = Writer::new();
        t.u16(id::RSA).u16(id::SHA256).u32(AK_ATTRIBUTES).tpm2b(&[]);
        t.u16(id::NULL)
            .u16(id::RSASSA)
            .u16(id::SHA256)
            .u16(2048)
            .u32(0);
        t.tpm2b(&sk.n().to_bytes_be());
        let mut w = Writer::new();
        w.tpm2b(&t.into_vec());
        SoftAk {
            key: SoftKey::Rsa(Box::new(sk)),
            ak_tpm: w.into_vec(),
        }
    }

    /// NIST P-256, ECDSA-SHA256 scheme.
    pub fn p256() -> SoftAk {
        let sk = p256::ecdsa::SigningKey::from_slice(&[0x5A; 32]).expect("P-256 key");
        let pt = sk.verifying_key().to_encoded_point(false);
        let t = ak_ecc_with_unique(HashAlg::Sha256, pt.x().expect("x"), pt.y().expect("y"));
        let mut w = Writer::new();
        w.tpm2b(&t);
        SoftAk {
            key: SoftKey::P256(sk),
            ak_tpm: w.into_vec(),
        }
    }

    /// The scheme this AK signs with by default.
    pub fn scheme(&self) -> SignAlg {
        match self.key {
            SoftKey::Rsa(_) => SignAlg::RsaSsa,
            SoftKey::P256(_) => SignAlg::Ecdsa,
        }
    }

    /// `TPMT_SIGNATURE` over `message` with `scheme` and `hash`.
    pub fn sign(&self, message: &[u8], scheme: SignAlg, hash: HashAlg) -> Vec<u8> {
        let digest = hash.digest(message);
        let sig = match (&self.key, scheme) {
            (SoftKey::Rsa(sk), SignAlg::RsaSsa) => {
                let padding = match hash {
                    HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    HashAlg::Sm3_256 => panic!("no SM3 RSASSA in tests"),
                };
                Signature::RsaSsa {
                    hash,
                    sig: sk.sign(padding, &digest).expect("RSASSA sign"),
                }
            }
            (SoftKey::Rsa(sk), SignAlg::RsaPss) => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(7);
                assert_eq!(hash, HashAlg::Sha256, "tests sign PSS with SHA-256 only");
                let sig = sk
                    .sign_with_rng(&mut rng, rsa::Pss::new::<sha2::Sha256>(), &digest)
                    .expect("RSAPSS sign");
                Signature::RsaPss { hash, sig }
            }
            (SoftKey::P256(sk), SignAlg::Ecdsa) => {
                let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).expect("ECDSA sign");
                let (r, s) = sig.split_bytes();
                Signature::Ecdsa {
                    hash,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            (_, scheme) => panic!("this AK cannot sign {scheme}"),
        };
        sig.to_bytes()
    }
}

/// A quote under construction.
#[derive(Clone)]
pub struct QuoteBuilder {
    pub nonce: Vec<u8>,
    pub bank: HashAlg,
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    pub clock: ClockInfo,
    pub scheme: Option<SignAlg>,
    pub sig_hash: HashAlg,
    pub attest_type: u16,
}

pub const NONCE: &str = "abcdefghij0123456789";

/// Value `byte` repeated to the bank's size.
pub fn pcr(bank: HashAlg, byte: u8) -> Vec<u8> {
    vec![byte; bank.digest_len()]
}

impl QuoteBuilder {
    /// SHA-256 quote of PCRs 0, 1, 7 (values 0x00, 0x11, 0x77 repeated) with the default
    /// nonce, clock 1000 / reset 1 / restart 0 / safe.
    pub fn new() -> QuoteBuilder {
        let bank = HashAlg::Sha256;
        QuoteBuilder {
            nonce: NONCE.as_bytes().to_vec(),
            bank,
            pcrs: [
                (0, pcr(bank, 0)),
                (1, pcr(bank, 0x11)),
                (7, pcr(bank, 0x77)),
            ]
            .into(),
            clock: ClockInfo {
                clock: 1000,
                reset_count: 1,
                restart_count: 0,
                safe: true,
            },
            scheme: None,
            sig_hash: bank,
            attest_type: ST_ATTEST_QUOTE,
        }
    }

    pub fn with_pcr(mut self, index: u8, value: Vec<u8>) -> Self {
        self.pcrs.insert(index, value);
        self
    }

    pub fn with_clock(
        mut self,
        clock: u64,
        reset_count: u32,
        restart_count: u32,
        safe: bool,
    ) -> Self {
        self.clock = ClockInfo {
            clock,
            reset_count,
            restart_count,
            safe,
        };
        self
    }

    pub fn selection(&self) -> PcrSelection {
        PcrSelection::new(self.bank, self.pcrs.keys().copied()).expect("selection")
    }

    /// The `TPMS_ATTEST` bytes.
    pub fn attest(&self) -> Vec<u8> {
        let values: Vec<Vec<u8>> = self.pcrs.values().cloned().collect();
        let mut w = Writer::new();
        w.u32(TPM_GENERATED_VALUE).u16(self.attest_type);
        w.tpm2b(&[0x00, 0x0B, 0xAA, 0xBB]).tpm2b(&self.nonce);
        w.bytes(&self.clock.clock.to_be_bytes())
            .u32(self.clock.reset_count)
            .u32(self.clock.restart_count)
            .u8(u8::from(self.clock.safe));
        w.bytes(&0x2023_0101u64.to_be_bytes());
        PcrSelection::write_list(&[self.selection()], &mut w);
        w.tpm2b(&pcr_digest(self.bank, &values));
        w.into_vec()
    }

    pub fn blob(&self) -> Vec<u8> {
        let values: Vec<Vec<u8>> = self.pcrs.values().cloned().collect();
        pcr_blob::encode(&self.selection(), &values).expect("PCR blob")
    }

    /// (attest, signature, blob) as signed by `ak`.
    pub fn parts(&self, ak: &SoftAk) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let attest = self.attest();
        let sig = ak.sign(&attest, self.scheme.unwrap_or(ak.scheme()), self.sig_hash);
        (attest, sig, self.blob())
    }

    pub fn build(&self, ak: &SoftAk) -> String {
        let (a, s, b) = self.parts(ak);
        keylime_tpm::quote::encode_quote_string(&a, &s, &b)
    }
}

pub fn accept_all() -> AcceptedAlgorithms {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    AcceptedAlgorithms {
        hash: v(&["sha256", "sha384"]),
        encryption: v(&["rsa", "ecc"]),
        signing: v(&["rsassa", "rsapss", "ecdsa"]),
    }
}

pub fn agent_policy(ak: &SoftAk, tpm_policy: &str) -> AgentPolicy {
    AgentPolicy {
        ak_tpm: ak.ak_tpm.clone(),
        tpm_policy: TpmPolicy::from_json_str(tpm_policy).expect("tpm_policy"),
        accept: accept_all(),
        check_pcr16: false,
        check_clock: true,
    }
}

pub fn prepare(policy: &AgentPolicy) -> PreparedPolicy {
    PreparedPolicy::new(policy, Arc::new(SeverityPolicy::default())).expect("policy")
}

/// Evidence for `quote` with the AK's usual algorithm names.
pub fn evidence<'a>(ak: &SoftAk, quote: &'a str) -> QuoteEvidence<'a> {
    let (enc, sign) = match ak.key {
        SoftKey::Rsa(_) => ("rsa2048", "rsassa"),
        SoftKey::P256(_) => ("ecc256", "ecdsa"),
    };
    QuoteEvidence {
        quote: quote.into(),
        hash_alg: "sha256".into(),
        enc_alg: enc.into(),
        sign_alg: sign.into(),
        pubkey_pem: None,
        ..Default::default()
    }
}

pub const PEM: &str =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
