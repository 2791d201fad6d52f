//! Building [`RegistrarSettings`] from upstream-format configuration: `registrar.conf`
//! (listeners, TLS, database, `tpm_identity`), `ca.conf` (generated certificates) and
//! `tenant.conf` (`tpm_cert_store`, `require_ek_cert`, read by the registrar as upstream).
//!
//! Secure by default: `tls_dir = default` names the verifier's `cv_ca`; when that CA does
//! not exist yet the registrar generates its own in `reg_ca` instead of failing.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, bail};
use keylime_config::{
    CaConfig, DatabaseUrl as ConfigDatabaseUrl, PeerVerification, RegistrarConfig, TenantConfig,
    TlsDirSetting,
};
use keylime_pki::{CaOptions, KeyAlgorithm};
use keylime_store::{DatabaseUrl, StoreOptions};

use super::{DEFAULT_MAX_BODY_BYTES, RegistrarSettings, TlsSetup};
use crate::registration_checks::TpmIdentity;

/// The generated registrar CA directory under `$KEYLIME_DIR`.
const REG_CA_DIR: &str = "reg_ca";

impl RegistrarSettings {
    /// Read `registrar.conf`, `ca.conf` and `tenant.conf` the way upstream does (files,
    /// snippets, `KEYLIME_*` overrides) and build the settings.
    pub fn from_environment() -> anyhow::Result<Self> {
        let registrar = RegistrarConfig::load().context("reading registrar configuration")?;
        let ca = CaConfig::load().context("reading CA configuration")?;
        let tenant = TenantConfig::load().context("reading tenant configuration")?;
        Self::from_config(&registrar, &ca, &tenant)
    }

    /// Build settings from loaded configuration.
    pub fn from_config(
        reg: &RegistrarConfig,
        ca: &CaConfig,
        tenant: &TenantConfig,
    ) -> anyhow::Result<Self> {
        let ip: IpAddr = reg
            .ip
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .with_context(|| format!("[registrar] ip {:?} is not an IP address", reg.ip))?;
        let tls = tls_setup(reg)?;
        let mut server_sans = vec![ip.to_string()];
        server_sans.extend(reg.cert_subject_alternative_names.iter().cloned());
        if ip.is_unspecified() || ip.is_loopback() {
            server_sans.push("localhost".into());
        }
        Ok(RegistrarSettings {
            http_addr: SocketAddr::new(ip, reg.port),
            https_addr: SocketAddr::new(ip, reg.tls_port),
            tls,
            ca: ca_options(ca),
            server_sans,
            database_url: database_url(&reg.database_url)?,
            store_options: StoreOptions {
                auto_migrate: reg.auto_migrate_db,
                max_connections: (reg.database_pool_sz_ovfl.size
                    + reg.database_pool_sz_ovfl.max_overflow)
                    .max(1),
            },
            require_ek_cert: tenant.require_ek_cert,
            tpm_cert_store: Some(tenant.tpm_cert_store.clone()),
            tpm_identity: match reg.tpm_identity {
                keylime_config::TpmIdentity::EkCertOrIakIdevid => TpmIdentity::EkCertOrIakIdevid,
                keylime_config::TpmIdentity::EkCert => TpmIdentity::EkCert,
                keylime_config::TpmIdentity::IakIdevid => TpmIdentity::IakIdevid,
            },
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: super::DEFAULT_REQUEST_TIMEOUT,
            connections: keylime_web::limits::ConnectionLimits::from_config(&reg.connections),
        })
    }
}

fn tls_setup(reg: &RegistrarConfig) -> anyhow::Result<TlsSetup> {
    let generate_dir = reg.keylime_dir.join(REG_CA_DIR);
    match &reg.tls_dir {
        TlsDirSetting::Generate => return Ok(TlsSetup::Generate { dir: generate_dir }),
        TlsDirSetting::Default => {
            let files = reg.server_tls();
            let ca_exists = files.tls_dir.join("cacert.crt").is_file();
            if !ca_exists {
                tracing::warn!(
                    missing = %files.tls_dir.display(),
                    generated = %generate_dir.display(),
                    "tls_dir = default but no CA exists there; generating the registrar's own CA"
                );
                return Ok(TlsSetup::Generate { dir: generate_dir });
            }
        }
        TlsDirSetting::Path(_) => {}
    }
    let files = reg.server_tls();
    let (Some(server_cert), Some(server_key)) = (files.cert, files.key) else {
        bail!(
            "[registrar] server_cert and server_key must name files when tls_dir is not 'generate'"
        );
    };
    if files.key_password.is_some() {
        bail!("[registrar] server_key_password is not supported: use an unencrypted key file");
    }
    let trusted_client_ca = match files.peer {
        PeerVerification::TrustedCas(paths) => paths,
        PeerVerification::Disabled => {
            bail!(
                "[registrar] trusted_client_ca = all is refused: admin routes need a trusted client CA"
            )
        }
    };
    Ok(TlsSetup::Files {
        dir: files.tls_dir,
        server_cert,
        server_key,
        trusted_client_ca,
    })
}

fn ca_options(ca: &CaConfig) -> CaOptions {
    CaOptions {
        cert_country: ca.cert_country.clone(),
        cert_ca_name: ca.cert_ca_name.clone(),
        cert_state: ca.cert_state.clone(),
        cert_locality: ca.cert_locality.clone(),
        cert_organization: ca.cert_organization.clone(),
        cert_org_unit: ca.cert_org_unit.clone(),
        cert_ca_lifetime: ca.cert_ca_lifetime,
        cert_lifetime: ca.cert_lifetime,
        cert_bits: ca.cert_bits,
        cert_crl_dist: (!ca.cert_crl_dist.is_empty()).then(|| ca.cert_crl_dist.clone()),
        key_algorithm: KeyAlgorithm::Rsa,
    }
}

fn database_url(url: &ConfigDatabaseUrl) -> anyhow::Result<DatabaseUrl> {
    Ok(match url {
        ConfigDatabaseUrl::Sqlite(path) => DatabaseUrl::Sqlite(path.clone()),
        ConfigDatabaseUrl::Postgres(u) => DatabaseUrl::Postgres(u.clone()),
        ConfigDatabaseUrl::Mysql(u) => DatabaseUrl::Mysql(u.clone()),
    })
}
