//! The registrar's and the verifier's REST APIs fuzzed by schemathesis from their OpenAPI
//! descriptions: the real binaries on loopback, real TLS, the deployment's client
//! certificate for the admin routes (and the registrar's plain HTTP port without one).
//! No 5xx, no hang, every status and body as described; the services still answer after.

use keylime_e2e::api_fuzz::{self, FuzzRun, Target};
use keylime_e2e::deployment::Deployment;
use keylime_e2e::plain_client;

fn report(name: &str, run: &FuzzRun) {
    println!(
        "api fuzz {name}: {} operations, {} test cases, passed = {}",
        run.operations, run.test_cases, run.passed
    );
    assert!(
        run.passed,
        "schemathesis found problems in the {name} API:\n{}",
        run.output
    );
    assert!(
        run.operations > 0 && run.test_cases >= run.operations,
        "the {name} run tested nothing:\n{}",
        run.output
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registrar_and_verifier_apis_hold_under_schemathesis() {
    // Install (or find) schemathesis before starting anything: a missing fuzzer fails here.
    api_fuzz::schemathesis();
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = tempfile::tempdir().expect("cert store dir");
    let mut d = Deployment::write(dir.path(), certs.path(), false);
    let (mut verifier, mut registrar) = d.start_servers().await;
    let ca = d.cv_ca();
    let client = Some((ca.join("client-cert.crt"), ca.join("client-private.pem")));
    let https = |port: u16| format!("https://127.0.0.1:{port}");

    let runs = [
        (
            "registrar (HTTPS, client certificate)",
            Target {
                binary: "keylime_registrar",
                url: https(d.registrar_tls_port),
                ca: Some(ca.join("cacert.crt")),
                client: client.clone(),
            },
        ),
        (
            "registrar (plain HTTP)",
            Target {
                binary: "keylime_registrar",
                url: format!("http://127.0.0.1:{}", d.registrar_port),
                ca: None,
                client: None,
            },
        ),
        (
            "verifier (HTTPS, client certificate)",
            Target {
                binary: "keylime_verifier",
                url: https(d.verifier_port),
                ca: Some(ca.join("cacert.crt")),
                client,
            },
        ),
    ];
    for (name, target) in &runs {
        let work = dir.path().join(target.binary);
        std::fs::create_dir_all(&work).expect("work dir");
        let run = tokio::task::block_in_place(|| api_fuzz::run(target, &work));
        report(name, &run);
    }

    // Both services survived and still answer.
    verifier.assert_running("under the API fuzzer");
    registrar.assert_running("under the API fuzzer");
    let r = plain_client()
        .get(format!("http://127.0.0.1:{}/version", d.registrar_port))
        .send()
        .await
        .expect("registrar answers after the run");
    assert_eq!(r.status(), 200);
    for svc in [&verifier, &registrar] {
        let log = svc.output();
        assert!(
            !log.contains("internal error") && !log.contains("request failed"),
            "{} logged a server error:\n{log}",
            svc.name
        );
    }
}
