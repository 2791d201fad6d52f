//! Hostile connections against the real binaries under an open-files limit of 256
//! (`prlimit`): hundreds of silent TCP connections, half-sent TLS handshakes, completed
//! handshakes that never send a request, and slowloris clients trickling header bytes,
//! from several loopback addresses at once. The registrar (both ports), the verifier and
//! the agent must still answer real requests within a second, and must close the silent
//! and slow connections themselves.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keylime_e2e::deployment::Deployment;
use keylime_e2e::{RegistrarDeployment, Service, bin, cert_store_from_localca, wait_until};
use keylime_testkit::swtpm::Swtpm;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Soft and hard `RLIMIT_NOFILE` of the services under attack.
const NOFILE: &str = "--nofile=256:256";
/// Deadline of one real request while the attack goes on.
const ANSWER: Duration = Duration::from_secs(1);
/// Deadline for the services to close every attacking connection.
const REAPED: Duration = Duration::from_secs(30);
/// Short deadlines so reaping is observable in a test.
const FAST_TIMEOUTS: &str = "first_byte_timeout = 2\nheader_read_timeout = 3\n\
                             idle_connection_timeout = 2\ntls_handshake_timeout = 3\n";

/// Starts `binary` as a child under the open-files limit.
fn spawn_limited(name: &str, binary: &str, env: &[(&str, String)], dir: &Path) -> Service {
    let program = bin(binary);
    let program = program.to_str().expect("utf-8 path");
    Service::spawn(
        name,
        Path::new("prlimit"),
        &[NOFILE, "--", program],
        env,
        dir,
    )
}

/// The `n`-th attacking source address: 127.0.0.2 … 127.0.0.9 (the real clients use
/// 127.0.0.1).
fn attacker(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 8) as u8))
}

/// Connects from `from`; a server whose backlog is full (one that stopped accepting) makes
/// this fail after 2 s instead of waiting for the kernel's SYN retries.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Whether the server has closed `stream` (EOF or reset on a non-blocking read).
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response or alert: keep reading
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// The attacking connections held open by the test.
#[derive(Default)]
struct Attack {
    held: Vec<TcpStream>,
    /// Slowloris clients still trickling (each ends when the server closes its connection).
    trickling: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    /// `n` connections that never send a byte. Connects may fail once the server's
    /// backlog is full; those are simply not held.
    async fn silent(&mut self, to: SocketAddr, n: usize) {
        for i in 0..n {
            if let Ok(s) = connect_from(attacker(i), to).await {
                self.held.push(s);
            }
        }
    }

    /// `n` TLS handshakes that stop after the first record header.
    async fn half_handshakes(&mut self, to: SocketAddr, n: usize) {
        for i in 0..n {
            if let Ok(mut s) = connect_from(attacker(i), to).await {
                // a handshake record announcing 512 bytes, of which one is sent
                if s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                    .await
                    .is_ok()
                {
                    self.held.push(s);
                }
            }
        }
    }

    /// `n` completed TLS handshakes (with `tls`) that then never send a request.
    async fn idle_after_handshake(
        &mut self,
        to: SocketAddr,
        n: usize,
        tls: Arc<rustls::ClientConfig>,
    ) {
        let connector = tokio_rustls::TlsConnector::from(tls);
        for i in 0..n {
            let Ok(tcp) = connect_from(attacker(i), to).await else {
                continue;
            };
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let handshake =
                tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp));
            if let Ok(Ok(tls)) = handshake.await {
                self.held.push(tls.into_inner().0);
            }
        }
    }

    /// `n` clients sending request headers one byte every 200 ms, over TLS when given.
    async fn slowloris(
        &mut self,
        to: SocketAddr,
        n: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) {
        for i in 0..n {
            let Ok(tcp) = connect_from(attacker(i), to).await else {
                continue;
            };
            let trickling = Arc::clone(&self.trickling);
            let tls = tls.clone();
            trickling.fetch_add(1, Ordering::SeqCst);
            self.tasks.push(tokio::spawn(async move {
                let _ = match tls {
                    None => trickle(tcp).await,
                    Some(config) => {
                        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                        match tokio_rustls::TlsConnector::from(config)
                            .connect(name, tcp)
                            .await
                        {
                            Ok(stream) => trickle(stream).await,
                            Err(e) => Err(e),
                        }
                    }
                };
                trickling.fetch_sub(1, Ordering::SeqCst);
            }));
        }
    }

    /// Held connections the server has closed.
    fn closed(&self) -> usize {
        self.held.iter().filter(|s| closed_by_server(s)).count()
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Writes a request head one byte at a time, forever, until the server closes.
async fn trickle<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
) -> std::io::Result<()> {
    s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    let mut buf = [0u8; 256];
    loop {
        s.write_all(b"a").await?;
        s.flush().await?;
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) => return Ok(()), // an error response: the server gave up on us
            Err(_) => {}
        }
    }
}

/// One real request answered within [`ANSWER`], returning the status.
async fn answered(what: &str, req: reqwest::RequestBuilder) -> u16 {
    match tokio::time::timeout(ANSWER, req.send()).await {
        Ok(Ok(resp)) => resp.status().as_u16(),
        Ok(Err(e)) => panic!("{what}: request failed under attack: {e}"),
        Err(_) => panic!("{what}: no answer within {ANSWER:?} under attack"),
    }
}

/// A client trusting `ca_dir/cacert.crt`, presenting its client certificate when `admin`;
/// `None` while the files are not there yet. Each request uses a new connection, as a
/// fresh client under attack would.
fn tls_client(ca_dir: &Path, admin: bool) -> Option<(reqwest::Client, Arc<rustls::ClientConfig>)> {
    tls_client_trusting(ca_dir, admin, None)
}

/// [`tls_client`] that also trusts the self-signed certificate `peer` (an agent's).
fn tls_client_trusting(
    ca_dir: &Path,
    admin: bool,
    peer: Option<&Path>,
) -> Option<(reqwest::Client, Arc<rustls::ClientConfig>)> {
    keylime_pki::install_default_provider();
    let mut cas = keylime_pki::load_certs(&ca_dir.join("cacert.crt")).ok()?;
    if let Some(peer) = peer {
        cas.extend(keylime_pki::load_certs(peer).ok()?);
    }
    let identity = match admin {
        false => None,
        true => Some((
            keylime_pki::load_certs(&ca_dir.join("client-cert.crt")).ok()?,
            keylime_pki::load_key(&ca_dir.join("client-private.pem")).ok()?,
        )),
    };
    let config = keylime_pki::client_config(cas, identity).ok()?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .pool_max_idle_per_host(0)
        .build()
        .ok()?;
    Some((client, config))
}

/// Waits until `url` answers through a client from `ca_dir` (the service generates the CA
/// on its first start), then returns the anonymous and the admin client.
async fn tls_clients_once_up(ca_dir: &Path, url: &str, svc: &mut Service) -> TlsClients {
    wait_until(
        Duration::from_secs(60),
        "the service to answer over TLS",
        || {
            let exited = svc.exited();
            let log = svc.output();
            let anon = tls_client(ca_dir, false);
            let admin = tls_client(ca_dir, true);
            let url = url.to_owned();
            async move {
                if let Some(status) = exited {
                    panic!("service exited with {status}:\n{log}");
                }
                let (anon, anon_config) = anon?;
                let (admin, _) = admin?;
                anon.get(&url).send().await.ok()?;
                Some(TlsClients {
                    anon,
                    anon_config,
                    admin,
                })
            }
        },
    )
    .await
}

struct TlsClients {
    anon: reqwest::Client,
    anon_config: Arc<rustls::ClientConfig>,
    admin: reqwest::Client,
}

fn plain() -> reqwest::Client {
    keylime_pki::install_default_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Asserts the service is alive and did not spin on accept errors.
fn assert_healthy(svc: &mut Service) {
    assert!(
        svc.exited().is_none(),
        "{} exited:\n{}",
        svc.name,
        svc.output()
    );
    let log = svc.output();
    let failures = log.matches("accept failed").count();
    assert!(
        failures <= 2,
        "{} logged {failures} accept failures (a flood of EMFILE):\n{}",
        svc.name,
        &log[log.len().saturating_sub(4000)..]
    );
}

/// Waits until the server has closed every held connection and every slowloris client.
async fn wait_reaped(attack: &Attack, what: &str) {
    let total = attack.held.len();
    wait_until(REAPED, what, || {
        let closed = attack.closed();
        let trickling = attack.trickling.load(Ordering::SeqCst);
        async move { (closed == total && trickling == 0).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_answers_on_both_ports_while_flooded() {
    let work = tempfile::tempdir().unwrap();
    let reg = RegistrarDeployment::write(&work.path().join("registrar"), None, false);
    let conf = reg.dir.join("registrar.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(FAST_TIMEOUTS);
    std::fs::write(&conf, text).unwrap();
    let mut registrar = spawn_limited("registrar", "keylime_registrar", &reg.env(), &reg.dir);
    let http = plain();
    let version = format!("http://127.0.0.1:{}/version", reg.port);
    let tls_version = format!("https://127.0.0.1:{}/version", reg.tls_port);
    let clients = tls_clients_once_up(&reg.tls_dir(), &tls_version, &mut registrar).await;
    let plain_addr: SocketAddr = format!("127.0.0.1:{}", reg.port).parse().unwrap();
    let tls_addr: SocketAddr = format!("127.0.0.1:{}", reg.tls_port).parse().unwrap();

    let mut attack = Attack::default();
    attack.silent(plain_addr, 250).await;
    attack.slowloris(plain_addr, 40, None).await;
    attack.half_handshakes(tls_addr, 100).await;
    attack
        .idle_after_handshake(tls_addr, 60, Arc::clone(&clients.anon_config))
        .await;
    attack.silent(tls_addr, 50).await;
    let attackers = attack.held.len() + attack.trickling.load(Ordering::SeqCst);
    assert!(
        attackers > 400,
        "only {attackers} attacking connections were opened"
    );

    let list = format!("https://127.0.0.1:{}/v2.6/agents/", reg.tls_port);
    for _ in 0..5 {
        assert_eq!(
            answered("registrar /version", http.get(&version)).await,
            200
        );
        assert_eq!(
            answered("registrar admin list", clients.admin.get(&list)).await,
            200
        );
    }
    wait_reaped(
        &attack,
        "the registrar to close every idle and slow connection",
    )
    .await;
    assert_eq!(
        answered("registrar /version after", http.get(&version)).await,
        200
    );
    assert_healthy(&mut registrar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_answers_while_flooded_and_closes_idle_keepalives() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let dep = Deployment::write_with(work.path(), &store, false, FAST_TIMEOUTS);
    let mut verifier = spawn_limited("verifier", "keylime_verifier", &dep.env(), &dep.dir);
    let version = format!("https://127.0.0.1:{}/version", dep.verifier_port);
    let TlsClients {
        anon,
        anon_config,
        admin,
    } = tls_clients_once_up(&dep.cv_ca(), &version, &mut verifier).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", dep.verifier_port).parse().unwrap();

    let mut attack = Attack::default();
    attack.silent(addr, 200).await;
    attack.half_handshakes(addr, 100).await;
    attack
        .idle_after_handshake(addr, 80, Arc::clone(&anon_config))
        .await;
    attack
        .slowloris(addr, 30, Some(Arc::clone(&anon_config)))
        .await;
    let attackers = attack.held.len() + attack.trickling.load(Ordering::SeqCst);
    assert!(
        attackers > 350,
        "only {attackers} attacking connections were opened"
    );

    let list = format!("https://127.0.0.1:{}/v2.6/agents/", dep.verifier_port);
    for _ in 0..5 {
        assert_eq!(answered("verifier /version", anon.get(&version)).await, 200);
        assert_eq!(answered("verifier admin list", admin.get(&list)).await, 200);
    }

    // A kept-alive connection that served one request and then goes quiet is closed too.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut kept = tokio_rustls::TlsConnector::from(anon_config)
        .connect(name, tcp)
        .await
        .unwrap();
    kept.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let kept = kept.into_inner().0;
    attack.held.push(kept);

    wait_reaped(
        &attack,
        "the verifier to close every idle and slow connection",
    )
    .await;
    assert_eq!(
        answered("verifier /version after", anon.get(&version)).await,
        200
    );
    assert_healthy(&mut verifier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_answers_its_verifier_while_flooded() {
    const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e10c";
    let tpm = Swtpm::start_with_ek_certs();
    let work = tempfile::tempdir().unwrap();
    let store = cert_store_from_localca(
        tpm.localca_dir().expect("localca"),
        &work.path().join("tpm_cert_store"),
    );
    let mut dep = Deployment::write(work.path(), &store, false);
    // The verifier generates cv_ca, which the agent trusts.
    let (_verifier, _registrar) = dep.start_servers().await;
    let agent_dir = work.path().join("agent");
    let (config, port) = dep.write_agent_config(&agent_dir, AGENT_ID);
    let env = [
        ("KEYLIME_AGENT_CONFIG", config.display().to_string()),
        ("TCTI", tpm.tcti_string()),
    ];
    let mut agent = spawn_limited(AGENT_ID, "keylime_agent", &env, work.path());
    // The verifier's client identity; the agent's own self-signed server certificate.
    let agent_cert = agent_dir.join("server-cert.crt");
    let version = format!("https://127.0.0.1:{port}/version");
    let verifier_client = wait_until(Duration::from_secs(60), "the agent to serve", || {
        let client = tls_client_trusting(&dep.cv_ca(), true, Some(&agent_cert));
        let exited = agent.exited();
        let log = agent.output();
        let version = version.clone();
        async move {
            if let Some(status) = exited {
                panic!("agent exited with {status}:\n{log}");
            }
            let (client, _) = client?;
            client.get(&version).send().await.ok()?;
            Some(client)
        }
    })
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut attack = Attack::default();
    attack.silent(addr, 250).await;
    attack.half_handshakes(addr, 150).await;
    let attackers = attack.held.len();
    assert!(
        attackers > 350,
        "only {attackers} attacking connections were opened"
    );

    for _ in 0..5 {
        assert_eq!(
            answered("agent /version", verifier_client.get(&version)).await,
            200
        );
    }
    // The agent keeps the shared defaults (10 s to the first byte / end of handshake).
    wait_reaped(&attack, "the agent to close every idle connection").await;
    assert_healthy(&mut agent);
}
