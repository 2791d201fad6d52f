//! Real TLS on loopback with the generated certificates: required and optional
//! client authentication, host names ignored, the agent's self-signed cert
//! trusted directly.

use std::sync::Arc;

use keylime_pki::{
    CaOptions, CertificateDer, ClientAuth, KeyAlgorithm, PrivateKeyDer, TlsDir, client_config,
    client_config_with_extra_roots, ensure_generated, load_certs, load_key, server_config,
};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn tls_dir(dir: &std::path::Path, name: &str) -> TlsDir {
    let opts = CaOptions {
        key_algorithm: KeyAlgorithm::EcdsaP256,
        cert_ca_name: format!("{name} CA"),
        ..Default::default()
    };
    ensure_generated(&dir.join(name), &opts, &["127.0.0.1".to_string()], true).unwrap()
}

fn client_identity(t: &TlsDir) -> Identity {
    (
        load_certs(t.client_cert.as_ref().unwrap()).unwrap(),
        load_key(t.client_key.as_ref().unwrap()).unwrap(),
    )
}

fn server_identity(t: &TlsDir) -> Identity {
    (
        load_certs(&t.server_cert).unwrap(),
        load_key(&t.server_key).unwrap(),
    )
}

/// Outcome of one connection: the server's view (peer CN or error) and the
/// client's (reply or error).
struct Outcome {
    server: Result<Option<String>, String>,
    client: Result<Vec<u8>, String>,
}

async fn connect(
    server_cfg: Arc<rustls::ServerConfig>,
    client_cfg: Arc<rustls::ClientConfig>,
    name: &str,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = TlsAcceptor::from(server_cfg)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let cn = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(keylime_pki::peer_common_name);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(cn)
    });
    let client = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(client_cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        if reply.is_empty() {
            return Err("no reply".to_string());
        }
        Ok(reply)
    };
    let client = tokio::time::timeout(std::time::Duration::from_secs(20), client)
        .await
        .unwrap_or_else(|_| Err("client timed out".into()));
    let server = tokio::time::timeout(std::time::Duration::from_secs(20), server)
        .await
        .map(|r| r.unwrap())
        .unwrap_or_else(|_| Err("server timed out".into()));
    Outcome { server, client }
}

#[tokio::test]
async fn required_client_auth_accepts_ca_client_and_rejects_others() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tls_dir(tmp.path(), "cv_ca");
    let foreign = tls_dir(tmp.path(), "rogue");
    let ca = load_certs(&ours.ca_cert).unwrap();
    let (chain, key) = server_identity(&ours);
    let server = server_config(chain, key, ClientAuth::Required(ca.clone())).unwrap();

    // Client with a certificate from our CA; the host name does not match the
    // certificate (SAN is 127.0.0.1) and must not matter.
    let good = client_config(ca.clone(), Some(client_identity(&ours))).unwrap();
    let o = connect(server.clone(), good, "agent.invalid").await;
    assert_eq!(o.client.as_deref(), Ok(&b"pong"[..]), "{:?}", o.server);
    assert_eq!(o.server, Ok(Some("client".to_string())));

    // No client certificate.
    let anonymous = client_config(ca.clone(), None).unwrap();
    let o = connect(server.clone(), anonymous, "127.0.0.1").await;
    assert!(
        o.server.is_err(),
        "server accepted a client without certificate"
    );
    assert!(o.client.is_err());

    // Client certificate from a foreign CA.
    let rogue = client_config(ca.clone(), Some(client_identity(&foreign))).unwrap();
    let o = connect(server.clone(), rogue, "127.0.0.1").await;
    let err = o
        .server
        .expect_err("server accepted a foreign client certificate");
    assert!(err.to_lowercase().contains("cert"), "{err}");
    assert!(o.client.is_err());
}

#[tokio::test]
async fn client_rejects_server_from_untrusted_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tls_dir(tmp.path(), "cv_ca");
    let foreign = tls_dir(tmp.path(), "rogue");
    let (chain, key) = server_identity(&foreign);
    let server = server_config(chain, key, ClientAuth::None).unwrap();
    let client = client_config(load_certs(&ours.ca_cert).unwrap(), None).unwrap();
    let o = connect(server, client, "127.0.0.1").await;
    let err = o
        .client
        .expect_err("client trusted a server from another CA");
    assert!(
        err.contains("UnknownIssuer") || err.to_lowercase().contains("issuer"),
        "{err}"
    );
}

#[tokio::test]
async fn optional_client_auth_allows_anonymous_but_not_foreign() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tls_dir(tmp.path(), "cv_ca");
    let foreign = tls_dir(tmp.path(), "rogue");
    let ca = load_certs(&ours.ca_cert).unwrap();
    let (chain, key) = server_identity(&ours);
    let server = server_config(chain, key, ClientAuth::Optional(ca.clone())).unwrap();

    let o = connect(
        server.clone(),
        client_config(ca.clone(), None).unwrap(),
        "x.invalid",
    )
    .await;
    assert_eq!(o.server, Ok(None));
    assert_eq!(o.client.as_deref(), Ok(&b"pong"[..]));

    let admin = client_config(ca.clone(), Some(client_identity(&ours))).unwrap();
    let o = connect(server.clone(), admin, "x.invalid").await;
    assert_eq!(o.server, Ok(Some("client".to_string())));

    let rogue = client_config(ca.clone(), Some(client_identity(&foreign))).unwrap();
    let o = connect(server, rogue, "x.invalid").await;
    assert!(o.server.is_err());
}

#[tokio::test]
async fn agent_self_signed_cert_is_trusted_as_extra_root() {
    let tmp = tempfile::tempdir().unwrap();
    let verifier = tls_dir(tmp.path(), "cv_ca");
    let ca = load_certs(&verifier.ca_cert).unwrap();
    let uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
    let (cert_pem, key_pem) =
        keylime_pki::self_signed_agent_cert(uuid, &["127.0.0.1".to_string()]).unwrap();
    let agent_cert: CertificateDer<'static> =
        keylime_pki::pem_or_der_to_der_list(cert_pem.as_bytes())
            .unwrap()
            .remove(0)
            .into();
    let agent_key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    // The pull agent: requires a client cert from the verifier's CA.
    let server = server_config(
        vec![agent_cert.clone()],
        agent_key,
        ClientAuth::Required(ca.clone()),
    )
    .unwrap();

    // Without the agent cert as a root the verifier refuses the agent.
    let plain = client_config(ca.clone(), Some(client_identity(&verifier))).unwrap();
    let o = connect(server.clone(), plain, "127.0.0.1").await;
    assert!(o.client.is_err());

    let with_agent = client_config_with_extra_roots(
        ca.clone(),
        vec![agent_cert],
        Some(client_identity(&verifier)),
    )
    .unwrap();
    let o = connect(server, with_agent, "127.0.0.1").await;
    assert_eq!(o.client.as_deref(), Ok(&b"pong"[..]), "{:?}", o.server);
    assert_eq!(o.server, Ok(Some("client".to_string())));
}

#[tokio::test]
async fn pinned_agent_cert_with_broken_self_signature_is_trusted_like_openssl() {
    // Upstream's Rust agent adds the SAN after signing; OpenSSL peers never check a
    // trust anchor's own signature, so neither may we when the cert is pinned.
    let tmp = tempfile::tempdir().unwrap();
    let verifier = tls_dir(tmp.path(), "cv_ca");
    let ca = load_certs(&verifier.ca_cert).unwrap();
    let (cert_pem, key_pem) =
        keylime_pki::self_signed_agent_cert("agent-x", &["127.0.0.1".to_string()]).unwrap();
    let mut der = keylime_pki::pem_or_der_to_der_list(cert_pem.as_bytes())
        .unwrap()
        .remove(0);
    let last = der.len() - 1;
    der[last] ^= 0x01; // corrupt the self-signature, keep the DER valid
    let agent_cert: CertificateDer<'static> = der.into();
    let agent_key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let server = server_config(
        vec![agent_cert.clone()],
        agent_key,
        ClientAuth::Required(ca.clone()),
    )
    .unwrap();

    let pinned = client_config_with_extra_roots(
        ca.clone(),
        vec![agent_cert],
        Some(client_identity(&verifier)),
    )
    .unwrap();
    let o = connect(server.clone(), pinned, "127.0.0.1").await;
    assert_eq!(o.client.as_deref(), Ok(&b"pong"[..]), "{:?}", o.server);

    // Another agent's pinned cert does not vouch for this one.
    let (other_pem, _) =
        keylime_pki::self_signed_agent_cert("agent-y", &["127.0.0.1".to_string()]).unwrap();
    let other: CertificateDer<'static> = keylime_pki::pem_or_der_to_der_list(other_pem.as_bytes())
        .unwrap()
        .remove(0)
        .into();
    let wrong =
        client_config_with_extra_roots(ca, vec![other], Some(client_identity(&verifier))).unwrap();
    let o = connect(server, wrong, "127.0.0.1").await;
    assert!(o.client.is_err());
}
