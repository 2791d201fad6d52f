//! How to reach an agent, read from its add-agent request: address, API version and its
//! mTLS certificate. Used by the pull loop (through `PreparedAgent`) and by revocation
//! notices to every agent.

use keylime_api::verifier::AddAgentRequest;
use keylime_pki::CertificateDer;

/// Why an add-agent request gives no way to reach the agent; the message is the 400 reason.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("mTLS certificate for agent is required!")]
    MtlsCertRequired,
    #[error("mtls_cert is not a PEM certificate: {0}")]
    MtlsCert(String),
    #[error("cloudagent_ip and cloudagent_port are required in pull mode")]
    NoContact,
    #[error("supported_version {0:?} is not a 2.x API version")]
    BadVersion(String),
}

/// How to reach an agent: address, API version and its mTLS certificate.
pub struct AgentContact {
    pub mtls_cert: Option<CertificateDer<'static>>,
    pub ip: String,
    pub port: u16,
    /// Agent API version used in paths, e.g. `2.6`.
    pub api_version: String,
}

impl AgentContact {
    /// Read the contact part of an add-agent request.
    pub fn from_request(
        request: &AddAgentRequest,
        require_mtls: bool,
    ) -> Result<Self, ContactError> {
        let mtls_cert = match request.mtls_cert_pem() {
            Some(pem) => Some(parse_cert(pem)?),
            None if require_mtls => return Err(ContactError::MtlsCertRequired),
            None => None,
        };
        let (Some(ip), Some(port)) = (request.cloudagent_ip.clone(), request.cloudagent_port)
        else {
            return Err(ContactError::NoContact);
        };
        if ip.is_empty() || port == 0 {
            return Err(ContactError::NoContact);
        }
        let api_version = match request.supported_version.as_deref() {
            None | Some("") => keylime_api::CURRENT_VERSION.to_string(),
            Some(text) => match text.parse::<keylime_api::ApiVersion>() {
                Ok(v) if v.major == 2 => v.to_string(),
                _ => return Err(ContactError::BadVersion(text.to_owned())),
            },
        };
        Ok(AgentContact {
            mtls_cert,
            ip,
            port,
            api_version,
        })
    }

    /// `https://ip:port` (or `http://` without an mTLS certificate).
    pub fn base_url(&self) -> String {
        base_url(self.mtls_cert.is_some(), &self.ip, self.port)
    }
}

/// `https://ip:port` (`http://` when `tls` is false), IPv6 addresses in brackets.
pub fn base_url(tls: bool, ip: &str, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    if ip.contains(':') && !ip.starts_with('[') {
        format!("{scheme}://[{ip}]:{port}")
    } else {
        format!("{scheme}://{ip}:{port}")
    }
}

fn parse_cert(pem: &str) -> Result<CertificateDer<'static>, ContactError> {
    use rustls_pki_types::pem::PemObject as _;
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(c)) => Ok(c),
        Some(Err(e)) => Err(ContactError::MtlsCert(e.to_string())),
        None => Err(ContactError::MtlsCert("no CERTIFICATE block".into())),
    }
}
