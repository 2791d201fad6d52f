//! The replay equals a real TPM's PCR 10 after the log's entries are extended into swtpm.
//! The sha1 bank receives the kernel's own column 2 (not our recomputation), so this also
//! cross-checks the template-data reconstruction.

use keylime_ima::{ChainVerifier, HashAlg, Replay, parse_log, template_hash};
use keylime_testkit::{Swtpm, testdata};
use keylime_tpm::{PcrSelection, Tcti, Tpm};

fn read_pcr10(tpm: &mut Tpm, bank: HashAlg) -> Vec<u8> {
    let sel = PcrSelection::new(bank, [10]).unwrap();
    tpm.pcr_read(&sel).unwrap().remove(0)
}

#[test]
fn replay_equals_swtpm_pcr10_in_sha1_and_sha256() {
    let swtpm = Swtpm::start();
    let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).unwrap();
    let banks = [HashAlg::Sha1, HashAlg::Sha256];
    let available = tpm.pcr_banks().unwrap();
    for b in banks {
        assert!(
            available.contains(&b),
            "swtpm lacks the {b} bank: {available:?}"
        );
    }
    // the legacy-template log: 867 entries including 9 violations
    let text =
        std::fs::read_to_string(testdata("ima/keylime/ascii_runtime_measurements_ima")).unwrap();
    let start: Vec<(HashAlg, Vec<u8>)> = banks
        .iter()
        .map(|&b| (b, read_pcr10(&mut tpm, b)))
        .collect();
    let mut violations = 0;
    for e in parse_log(&text) {
        let e = e.unwrap();
        for b in banks {
            let m = if e.is_violation() {
                vec![0xFF; b.digest_len()]
            } else if b == HashAlg::Sha1 {
                e.template_hash.as_slice().to_vec()
            } else {
                template_hash(&e, b).unwrap().as_slice().to_vec()
            };
            tpm.pcr_extend(10, b, &m).unwrap();
        }
        violations += usize::from(e.is_violation());
    }
    assert_eq!(violations, 9);
    let replays = start
        .iter()
        .map(|(b, v)| Replay::resume(*b, v, 0).unwrap())
        .collect();
    let mut chain = ChainVerifier::from_replays(HashAlg::Sha1, replays).unwrap();
    for e in parse_log(&text) {
        chain.process(&e.unwrap());
    }
    for b in banks {
        assert_eq!(
            chain.value(b).unwrap().as_slice(),
            read_pcr10(&mut tpm, b).as_slice(),
            "{b} bank"
        );
    }
    assert_eq!(chain.next_entry(), 867);
}
