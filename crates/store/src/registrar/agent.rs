//! One registered agent as the registrar stores it ([`RegistrarAgent`], a row of
//! `registrar_agents`); its `Debug` hides the activation key.

use std::fmt;

use sqlx::FromRow;

/// One registered agent. `Debug` does not show `activation_key`.
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct RegistrarAgent {
    pub agent_id: String,
    /// EK, TPM2B_PUBLIC.
    pub ek_tpm: Option<Vec<u8>>,
    /// EK certificate, DER.
    pub ekcert: Option<Vec<u8>>,
    /// AK, TPM2B_PUBLIC.
    pub aik_tpm: Vec<u8>,
    pub iak_tpm: Option<Vec<u8>>,
    /// DER.
    pub iak_cert: Option<Vec<u8>>,
    pub idevid_tpm: Option<Vec<u8>>,
    /// DER.
    pub idevid_cert: Option<Vec<u8>>,
    /// PEM, `"disabled"`, or none.
    pub mtls_cert: Option<String>,
    pub ip: Option<String>,
    pub port: Option<i32>,
    /// HMAC key for the activation proof (b64 of the credential); `None` once activated.
    pub activation_key: Option<String>,
    pub active: bool,
    pub regcount: i32,
}

impl fmt::Debug for RegistrarAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |v: &Option<Vec<u8>>| v.as_ref().map(Vec::len);
        f.debug_struct("RegistrarAgent")
            .field("agent_id", &self.agent_id)
            .field("ek_tpm_len", &len(&self.ek_tpm))
            .field("ekcert_len", &len(&self.ekcert))
            .field("aik_tpm_len", &self.aik_tpm.len())
            .field("iak_tpm_len", &len(&self.iak_tpm))
            .field("iak_cert_len", &len(&self.iak_cert))
            .field("idevid_tpm_len", &len(&self.idevid_tpm))
            .field("idevid_cert_len", &len(&self.idevid_cert))
            .field("mtls_cert_len", &self.mtls_cert.as_ref().map(String::len))
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field(
                "activation_key",
                &self.activation_key.as_ref().map(|_| "<redacted>"),
            )
            .field("active", &self.active)
            .field("regcount", &self.regcount)
            .finish()
    }
}
