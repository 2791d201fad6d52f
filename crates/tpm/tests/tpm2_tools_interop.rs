//! Interoperability with tpm2-tools 5 on swtpm: names, EK/AK files, `tpm2_makecredential`
//! blobs, `tpm2_activatecredential` of our blobs, `tpm2_quote` outputs, and
//! `tpm2_checkquote` of our quotes and PCR blobs.

use std::path::Path;
use std::process::Command;

use keylime_testkit::Swtpm;
use keylime_tpm::templates::AK_ATTRIBUTES;
use keylime_tpm::{
    AkBlob, Attest, AttestBody, CredentialBlob, EkAlg, HashAlg, PcrSelection, Public, SignAlg,
    Signature, Tcti, Tpm, make_credential, pcr_blob, pcr_digest, verify_signature,
};

struct Tools<'a> {
    swtpm: &'a Swtpm,
    dir: &'a Path,
}

impl Tools<'_> {
    /// Run a tpm2-tools command, then flush transient objects it left (swtpm has no
    /// resource manager and only three object slots).
    fn run(&self, args: &[&str]) -> String {
        let out = self.raw(args);
        if args[0] != "tpm2_flushcontext" && !args.contains(&"none") {
            self.raw(&["tpm2_flushcontext", "-t"]);
        }
        out
    }

    fn raw(&self, args: &[&str]) -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.swtpm.tcti_string())
            .current_dir(self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{} (tpm2-tools) cannot run: {e}", args[0]));
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir.join(name), data).unwrap();
    }
}

fn interop(ek_alg: EkAlg, sign: SignAlg) {
    let tools_alg = match ek_alg {
        EkAlg::Rsa2048 => "rsa",
        EkAlg::EccP256 => "ecc",
    };
    let scheme = sign.to_string();
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let t = Tools {
        swtpm: &swtpm,
        dir: dir.path(),
    };
    t.run(&[
        "tpm2_createek",
        "-c",
        "ek.ctx",
        "-G",
        tools_alg,
        "-u",
        "ek.pub",
    ]);
    t.run(&[
        "tpm2_createak",
        "-C",
        "ek.ctx",
        "-c",
        "ak.ctx",
        "-G",
        tools_alg,
        "-g",
        "sha256",
        "-s",
        &scheme,
        "-u",
        "ak.pub",
        "-n",
        "ak.name",
        "-r",
        "ak.priv",
    ]);
    let ek_pub = Public::from_tpm2b(&t.read("ek.pub")).unwrap();
    let ak_pub = Public::from_tpm2b(&t.read("ak.pub")).unwrap();
    assert_eq!(
        ak_pub.name(),
        t.read("ak.name"),
        "our name equals tpm2_createak -n"
    );
    assert_eq!(ak_pub.object_attributes, AK_ATTRIBUTES);

    // tpm2_quote output: attest, signature and the serialized PCR blob.
    for (pcrs, blob_len) in [("0,1,2", 668), ("0,1,2,3,4,5,6,7,8,9,16", 1200)] {
        t.run(&[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            &format!("sha256:{pcrs}"),
            "-q",
            "616263",
            "-m",
            "q.msg",
            "-s",
            "q.sig",
            "-o",
            "q.pcrs",
            "-g",
            "sha256",
        ]);
        let blob = t.read("q.pcrs");
        assert_eq!(blob.len(), blob_len);
        let (sels, values) = pcr_blob::decode(&blob).unwrap();
        let attest_bytes = t.read("q.msg");
        let attest = Attest::parse(&attest_bytes).unwrap();
        assert_eq!(attest.extra_data, b"abc");
        let AttestBody::Quote {
            pcr_select,
            pcr_digest: digest,
        } = attest.body
        else {
            panic!("not a quote");
        };
        assert_eq!(sels, pcr_select);
        let sig = Signature::parse(&t.read("q.sig")).unwrap();
        assert_eq!(sig.sign_alg(), sign);
        verify_signature(&ak_pub, &attest_bytes, &sig).unwrap();
        assert_eq!(pcr_digest(HashAlg::Sha256, &values), digest);
    }

    // tpm2_makecredential's blob, activated later by our client.
    let tools_secret = b"tools-made credential 0123456789";
    t.write("secret.bin", tools_secret);
    t.run(&[
        "tpm2_makecredential",
        "-T",
        "none",
        "-e",
        "ek.pub",
        "-s",
        "secret.bin",
        "-n",
        &hex::encode(ak_pub.name()),
        "-o",
        "tools.cred",
    ]);
    let tools_blob = CredentialBlob::from_tpm2_tools(&t.read("tools.cred")).unwrap();

    // Our blob, activated by tpm2_activatecredential.
    let our_secret = b"our-made credential 0123456789ab";
    let ours = make_credential(&ek_pub, &ak_pub.name(), our_secret).unwrap();
    t.write("ours.cred", &ours.to_tpm2_tools());
    t.raw(&["tpm2_startauthsession", "--policy-session", "-S", "s.ctx"]);
    t.raw(&["tpm2_policysecret", "-S", "s.ctx", "-c", "e"]);
    t.raw(&[
        "tpm2_activatecredential",
        "-c",
        "ak.ctx",
        "-C",
        "ek.ctx",
        "-i",
        "ours.cred",
        "-o",
        "ours.out",
        "-P",
        "session:s.ctx",
    ]);
    t.run(&["tpm2_flushcontext", "s.ctx"]);
    t.run(&["tpm2_flushcontext", "-t"]);
    assert_eq!(t.read("ours.out"), our_secret);

    // Our client: the same EK from the same template and seed, tpm2-tools' AK loads, the
    // tpm2-tools blob activates.
    let selection = PcrSelection::new(HashAlg::Sha256, [0, 1, 2, 16]).unwrap();
    let (quote, values) = {
        let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).unwrap();
        let ek = tpm.create_ek(ek_alg).unwrap();
        assert_eq!(
            ek.public.to_tpm2b(),
            t.read("ek.pub"),
            "same EK as tpm2_createek"
        );
        let ak = tpm
            .load_ak(
                &ek,
                &AkBlob {
                    public: t.read("ak.pub"),
                    private: t.read("ak.priv"),
                    hash: HashAlg::Sha256,
                    sign,
                },
            )
            .unwrap();
        let got = tpm
            .activate_credential(
                &ak,
                &ek,
                &tools_blob.id_object,
                &tools_blob.encrypted_secret,
            )
            .unwrap();
        assert_eq!(got, tools_secret);
        let quote = tpm.quote(&ak, b"nonce-123", &selection, sign).unwrap();
        (quote, tpm.pcr_read(&selection).unwrap())
    };

    // tpm2_checkquote accepts our quote and our PCR blob encoding.
    t.write("our.msg", &quote.attest);
    t.write("our.sig", &quote.signature);
    t.write("our.pcrs", &pcr_blob::encode(&selection, &values).unwrap());
    t.raw(&[
        "tpm2_checkquote",
        "-u",
        "ak.pub",
        "-m",
        "our.msg",
        "-s",
        "our.sig",
        "-f",
        "our.pcrs",
        "-g",
        "sha256",
        "-q",
        &hex::encode(b"nonce-123"),
    ]);
}

#[test]
fn rsa_ek_and_rsassa_ak_interoperate_with_tpm2_tools() {
    interop(EkAlg::Rsa2048, SignAlg::RsaSsa);
}

#[test]
fn ecc_ek_and_ecdsa_ak_interoperate_with_tpm2_tools() {
    interop(EkAlg::EccP256, SignAlg::Ecdsa);
}
