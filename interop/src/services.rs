//! Starting a verifier or a registrar of either implementation from a [`ConfigSet`], and
//! waiting (with a deadline) until it answers `/version`. Upstream's run from the
//! virtualenv; ours are the workspace binaries beside the test executable. Their ports are
//! reserved (`keylime_testkit::ports`); a service that still finds one taken, which either
//! implementation reports as "Address already in use", is started again on new ports.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use keylime_testkit::ports::{Clashes, PortClash};

use crate::config_files::ConfigSet;
use crate::process::GroupProcess;
use crate::upstream::upstream;
use crate::wait_until;

/// How long a service may take to answer after it was started (upstream runs its database
/// migrations and generates keys first; CI machines are slow and busy).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Which implementation a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// Keylime 7.14.3 from PyPI.
    Upstream,
    /// This workspace's binaries.
    Ours,
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implementation::Upstream => "upstream",
            Implementation::Ours => "ours",
        })
    }
}

impl Implementation {
    /// The executable of `component` (`verifier`, `registrar`, `tenant`).
    pub fn program(self, component: &str) -> PathBuf {
        let name = format!("keylime_{component}");
        match self {
            Implementation::Upstream => upstream().bin(&name),
            Implementation::Ours => keylime_e2e::bin(&name),
        }
    }
}

/// Starts a verifier and waits until its HTTPS `/version` answers (with its generated CA);
/// when its port was taken, moves it and starts it again.
pub async fn start_verifier(which: Implementation, config: &mut ConfigSet) -> GroupProcess {
    let mut clashes = Clashes::new(format!("the {which} verifier"));
    loop {
        match try_start_verifier(which, config).await {
            Ok(verifier) => return verifier,
            Err(clash) => clashes.record(clash),
        }
        config.move_verifier_port();
    }
}

/// Starts a verifier, then a registrar (both use the verifier's `cv_ca`), and waits until
/// both answer. When a port of either was taken it is moved and both start again (a
/// verifier reads the registrar's port when it starts).
pub async fn start_servers(
    verifier: Implementation,
    registrar: Implementation,
    config: &mut ConfigSet,
) -> (GroupProcess, GroupProcess) {
    let mut clashes = Clashes::new(format!("the {verifier} verifier and {registrar} registrar"));
    loop {
        let started_verifier = match try_start_verifier(verifier, config).await {
            Ok(started) => started,
            Err(clash) => {
                clashes.record(clash);
                config.move_verifier_port();
                continue;
            }
        };
        match try_start_registrar(registrar, config).await {
            Ok(started) => return (started_verifier, started),
            Err(clash) => clashes.record(clash),
        }
        drop(started_verifier);
        config.move_registrar_ports();
    }
}

async fn try_start_verifier(
    which: Implementation,
    config: &ConfigSet,
) -> Result<GroupProcess, PortClash> {
    let mut svc = GroupProcess::spawn(
        &format!("{which}-verifier"),
        &which.program("verifier"),
        &[],
        &config.env(),
        &config.dir,
    );
    let ca = config.cv_ca().join("cacert.crt");
    let url = format!("https://127.0.0.1:{}/version", config.verifier_port);
    wait_until(
        START_TIMEOUT,
        &format!("the {which} verifier to answer {url}"),
        || {
            let starting = svc.check_starting();
            let (ca, url) = (ca.clone(), url.clone());
            async move {
                if let Err(clash) = starting {
                    return Some(Err(clash));
                }
                let client = https_client(&ca, None)?;
                let r = client.get(&url).send().await.ok()?;
                r.status().is_success().then_some(Ok(()))
            }
        },
    )
    .await?;
    Ok(svc)
}

/// Starts a registrar and waits until its HTTP `/version` answers and its HTTPS port
/// accepts connections.
async fn try_start_registrar(
    which: Implementation,
    config: &ConfigSet,
) -> Result<GroupProcess, PortClash> {
    let mut svc = GroupProcess::spawn(
        &format!("{which}-registrar"),
        &which.program("registrar"),
        &[],
        &config.env(),
        &config.dir,
    );
    let url = format!("http://127.0.0.1:{}/version", config.registrar_port);
    let tls_port = config.registrar_tls_port;
    let http = keylime_e2e::plain_client();
    wait_until(
        START_TIMEOUT,
        &format!("the {which} registrar to answer {url}"),
        || {
            let starting = svc.check_starting();
            let (http, url) = (http.clone(), url.clone());
            async move {
                if let Err(clash) = starting {
                    return Some(Err(clash));
                }
                let r = http.get(&url).send().await.ok()?;
                r.status().is_success().then_some(())?;
                tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
                    .await
                    .ok()
                    .map(|_| Ok(()))
            }
        },
    )
    .await?;
    Ok(svc)
}

/// An HTTPS client trusting `ca`, optionally presenting a client certificate and key.
pub fn https_client(
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Option<reqwest::Client> {
    let cas = keylime_pki::load_certs(ca).ok()?;
    let identity = match identity {
        Some((cert, key)) => Some((
            keylime_pki::load_certs(cert).ok()?,
            keylime_pki::load_key(key).ok()?,
        )),
        None => None,
    };
    let tls = keylime_pki::client_config(cas, identity).ok()?;
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .ok()
}

/// An admin client of the deployment (the verifier's generated client certificate).
pub fn admin_client(config: &ConfigSet) -> reqwest::Client {
    let tls = config.cv_ca();
    https_client(
        &tls.join("cacert.crt"),
        Some((
            &tls.join("client-cert.crt"),
            &tls.join("client-private.pem"),
        )),
    )
    .unwrap_or_else(|| panic!("admin TLS material under {}", tls.display()))
}

/// `GET` a URL with the admin client: status and JSON body (`Null` if not JSON), or the
/// transport error as text.
pub async fn admin_get(
    client: &reqwest::Client,
    url: &str,
) -> Result<(u16, serde_json::Value), String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e:?}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(serde_json::Value::Null)))
}
