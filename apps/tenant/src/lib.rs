//! The Keylime tenant: the operator's client of the verifier, the registrar and pull
//! agents (PROTOCOL.md §1.2, §2.4, §4, §5). [`Tenant`] has one async method per upstream
//! command (`add`, `delete`, `update`, `status`, `cvstatus`, `regstatus`, `cvlist`,
//! `reglist`, `reactivate`, `regdelete`, `bulkinfo`, and the runtime and measured-boot
//! policy commands `add…`/`update…`/`delete…`/`show…`/`list…`), each returning a typed
//! result that [`report`] renders the way upstream prints it or as one JSON document.
//!
//! Modules: [`settings`] (endpoints, TLS, algorithms, retries), `http` (peers and the v2
//! envelope), [`policy`] (`tpm_policy`), [`policy_options`] (the policy files and options
//! of `add` and the policy commands, checked locally), [`payload`] (bootstrap key and payload package), `agent` (version negotiation, identity
//! quote check, key delivery), `enrol` (the `add` flow), `services` (registrar and verifier
//! commands), `named_policies` (`/allowlists`, `/mbpolicies`), [`pyjson`] (Python's
//! renderings of JSON), [`report`] (output).
//!
//! Invariants: nothing is enrolled at the verifier unless the agent's identity quote
//! verified with the registrar's AK, the nonce and the PCR 16 key binding; bootstrap key
//! material is never logged.

#![forbid(unsafe_code)]

mod agent;
mod enrol;
mod error;
mod http;
mod named_policies;
mod outcome;
pub mod payload;
pub mod policy;
pub mod policy_options;
pub mod pyjson;
pub mod report;
mod services;
pub mod settings;
mod zip;

use std::sync::Arc;

pub use enrol::AddRequest;
pub use error::TenantError;
pub use outcome::{
    AddOutcome, AgentStatusReport, BulkReport, DeleteOutcome, IdList, PolicyKind, PolicyNames,
    PolicyReply, PolicyShow, RegDeleteOutcome, RegistrarStatusReport, StatusReport,
};
pub use payload::PayloadSource;
pub use policy_options::{PolicyOptions, ResolvedPolicies};
pub use settings::{ClientTls, Endpoint, RetryPolicy, TenantSettings};

use keylime_pki::{CertificateDer, PrivateKeyDer};

use crate::http::Peer;

/// Where the tenant writes the lines upstream's tenant logs along the way (the statuses it
/// reads before acting, the answers it gets before failing): stdout in the CLI, nowhere by
/// default and with `--json`.
pub type Console = Arc<dyn Fn(&str) + Send + Sync>;

/// A configured tenant.
pub struct Tenant {
    settings: TenantSettings,
    console: Console,
    trusted: Vec<CertificateDer<'static>>,
    identity: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    verifier: Peer,
    registrar: Peer,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("verifier", &self.verifier.name)
            .field("registrar", &self.registrar.name)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Load the TLS material and prepare clients of the verifier and the registrar.
    pub fn new(settings: TenantSettings) -> Result<Self, TenantError> {
        keylime_pki::install_default_provider();
        let tls_err = |what: String| {
            move |e: keylime_pki::PkiError| TenantError::Tls {
                what,
                reason: e.to_string(),
            }
        };
        let mut trusted = Vec::new();
        for ca in &settings.tls.trusted_server_ca {
            trusted.extend(
                keylime_pki::load_certs(ca)
                    .map_err(tls_err(format!("trusted_server_ca {}", ca.display())))?,
            );
        }
        if settings.tls.trusted_server_ca.is_empty() {
            return Err(TenantError::Unsupported(
                "trusted_server_ca = all (no server certificate verification)".into(),
            ));
        }
        let identity = (
            keylime_pki::load_certs(&settings.tls.cert).map_err(tls_err(format!(
                "client_cert {}",
                settings.tls.cert.display()
            )))?,
            keylime_pki::load_key(&settings.tls.key).map_err(tls_err(format!(
                "client_key {}",
                settings.tls.key.display()
            )))?,
        );
        let service_tls = keylime_pki::client_config(
            trusted.clone(),
            Some((identity.0.clone(), identity.1.clone_key())),
        )
        .map_err(tls_err("client configuration".into()))?;
        let mut vname = String::from("Verifier");
        if let Some(id) = &settings.verifier_id {
            vname = format!("{vname} {id}");
        }
        let verifier = Peer::new(
            format!("{vname} ({})", settings.verifier),
            settings.verifier.base_url("https"),
            Some(Arc::clone(&service_tls)),
            settings.request_timeout,
        )?;
        let registrar = Peer::new(
            format!("Registrar ({})", settings.registrar),
            settings.registrar.base_url("https"),
            Some(service_tls),
            settings.request_timeout,
        )?;
        Ok(Tenant {
            settings,
            console: Arc::new(|_| {}),
            trusted,
            identity,
            verifier,
            registrar,
        })
    }

    /// Sends the lines upstream's tenant logs along the way to `console`.
    pub fn with_console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// One line (or several, `\n`-separated) to the console.
    pub(crate) fn say(&self, line: &str) {
        (self.console)(line)
    }

    /// The settings in use.
    pub fn settings(&self) -> &TenantSettings {
        &self.settings
    }

    /// e.g. `Verifier (127.0.0.1:8881)`.
    pub fn verifier_name(&self) -> &str {
        &self.verifier.name
    }

    /// e.g. `Registrar (127.0.0.1:8891)`.
    pub fn registrar_name(&self) -> &str {
        &self.registrar.name
    }
}
