//! One loopback deployment's configuration in upstream's own format: `verifier.conf`,
//! `registrar.conf`, `tenant.conf`, `ca.conf` and `logging.conf` as upstream 7.14.3's
//! 2.6 templates lay them out (every option present, values quoted where the templates
//! quote them, Python list literals), with only ports and paths changed. Upstream's
//! services and ours read the very same files through `KEYLIME_*_CONFIG`, and share one
//! `KEYLIME_DIR`.

use std::path::{Path, PathBuf};

use keylime_testkit::ports::{relocate, reserve};

/// Values a scenario may change; everything else is the template default.
#[derive(Debug, Clone)]
pub struct ConfigOptions {
    /// Seconds between quotes (verifier `quote_interval`).
    pub quote_interval: u32,
    /// `ca.conf` `cert_ca_name`: the subject CN of the CA a verifier generates.
    pub ca_name: String,
    /// `ca.conf` `cert_ca_lifetime`, in days.
    pub ca_lifetime_days: u32,
    /// `ca.conf` `password` (the tenant's `--cert` CA key store needs a real one).
    pub ca_password: String,
    /// `tenant.conf` `require_ek_cert`.
    pub require_ek_cert: bool,
    /// Verifier `measured_boot_policy_name`: the measured-boot policy engine
    /// (`accept-all`, `example`).
    pub measured_boot_policy_name: String,
    /// Verifier `require_allow_list_signatures`: runtime policies must come DSSE-signed.
    pub require_allow_list_signatures: bool,
    /// Verifier `[revocations] webhook_url`: when set, notices also go to this webhook.
    pub webhook_url: Option<String>,
}

impl Default for ConfigOptions {
    fn default() -> Self {
        ConfigOptions {
            quote_interval: 1,
            ca_name: "Keylime Certificate Authority".into(),
            ca_lifetime_days: 3650,
            ca_password: "interop-keystore".into(),
            require_ek_cert: true,
            measured_boot_policy_name: "accept-all".into(),
            require_allow_list_signatures: false,
            webhook_url: None,
        }
    }
}

/// The written files and the ports they name.
#[derive(Debug, Clone)]
pub struct ConfigSet {
    /// Directory holding the five `.conf` files.
    pub dir: PathBuf,
    /// `KEYLIME_DIR` of every service of the deployment.
    pub keylime_dir: PathBuf,
    /// Verifier HTTPS port.
    pub verifier_port: u16,
    /// Registrar plain-HTTP port (agents).
    pub registrar_port: u16,
    /// Registrar HTTPS port (tenant, verifier).
    pub registrar_tls_port: u16,
    /// `[revocations] zmq_port` (unused: notices go to agents).
    pub zmq_port: u16,
    /// `tpm_cert_store` of the tenant (and of our registrar).
    pub tpm_cert_store: PathBuf,
}

impl ConfigSet {
    /// Writes the five files under `dir` with fresh loopback ports.
    pub fn write(dir: &Path, tpm_cert_store: &Path, opts: &ConfigOptions) -> ConfigSet {
        let set = ConfigSet {
            dir: dir.to_path_buf(),
            keylime_dir: dir.join("state"),
            verifier_port: reserve(),
            registrar_port: reserve(),
            registrar_tls_port: reserve(),
            zmq_port: reserve(),
            tpm_cert_store: tpm_cert_store.to_path_buf(),
        };
        std::fs::create_dir_all(&set.keylime_dir).expect("creating KEYLIME_DIR");
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("writing {name}: {e}"))
        };
        write("verifier.conf", set.verifier_conf(opts));
        write("registrar.conf", set.registrar_conf());
        write("tenant.conf", set.tenant_conf(opts));
        write("ca.conf", ca_conf(opts));
        write("logging.conf", LOGGING_CONF.to_string());
        set
    }

    /// Moves the verifier to a new reserved port, in every file naming it.
    pub fn move_verifier_port(&mut self) {
        self.verifier_port = self.move_port(self.verifier_port);
    }

    /// Moves both registrar ports to new reserved ones, in every file naming them.
    pub fn move_registrar_ports(&mut self) {
        self.registrar_port = self.move_port(self.registrar_port);
        self.registrar_tls_port = self.move_port(self.registrar_tls_port);
    }

    fn move_port(&self, old: u16) -> u16 {
        let new = reserve();
        let files = ["verifier.conf", "registrar.conf", "tenant.conf"].map(|n| self.file(n));
        relocate(&files.each_ref().map(PathBuf::as_path), old, new);
        new
    }

    /// Path of one of the files (`"verifier.conf"`, …).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The environment every service and tenant of the deployment runs with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let p = |n: &str| self.file(n).display().to_string();
        vec![
            ("KEYLIME_DIR", self.keylime_dir.display().to_string()),
            ("KEYLIME_VERIFIER_CONFIG", p("verifier.conf")),
            ("KEYLIME_REGISTRAR_CONFIG", p("registrar.conf")),
            ("KEYLIME_TENANT_CONFIG", p("tenant.conf")),
            ("KEYLIME_CA_CONFIG", p("ca.conf")),
            ("KEYLIME_LOGGING_CONFIG", p("logging.conf")),
        ]
    }

    /// The verifier's generated TLS directory (`tls_dir = generate`), used by everyone.
    pub fn cv_ca(&self) -> PathBuf {
        self.keylime_dir.join("cv_ca")
    }

    fn verifier_conf(&self, opts: &ConfigOptions) -> String {
        format!(
            "# Keylime verifier configuration (upstream 2.6 template layout)\n\
             [verifier]\n\
             version = 2.6\n\
             uuid = default\n\
             ip = \"127.0.0.1\"\n\
             port = {port}\n\
             registrar_ip = 127.0.0.1\n\
             registrar_port = {registrar_tls}\n\
             enable_agent_mtls = True\n\
             tls_dir = generate\n\
             server_key = default\n\
             server_key_password =\n\
             server_cert = default\n\
             cert_subject_alternative_names =\n\
             trusted_client_ca = default\n\
             client_key = default\n\
             client_key_password =\n\
             client_cert = default\n\
             trusted_server_ca = default\n\
             authorization_provider = simple\n\
             database_url = sqlite\n\
             database_pool_sz_ovfl = 5,10\n\
             auto_migrate_db = True\n\
             num_workers = 1\n\
             exponential_backoff = False\n\
             retry_interval = 1\n\
             max_retries = 3\n\
             quote_interval = {quote_interval}\n\
             max_upload_size = 104857600\n\
             request_timeout = 60.0\n\
             measured_boot_policy_name = {mb_policy_name}\n\
             measured_boot_imports = []\n\
             measured_boot_evaluate = once\n\
             severity_labels = [\"info\", \"notice\", \"warning\", \"error\", \"critical\", \"alert\", \"emergency\"]\n\
             severity_policy = [{{\"event_id\": \".*\", \"severity_label\" : \"emergency\"}}]\n\
             ignore_tomtou_errors = False\n\
             durable_attestation_import =\n\
             persistent_store_url =\n\
             transparency_log_url =\n\
             time_stamp_authority_url =\n\
             time_stamp_authority_certs_path =\n\
             persistent_store_format = json\n\
             persistent_store_encoding =\n\
             transparency_log_sign_algo = sha256\n\
             signed_attributes =\n\
             require_allow_list_signatures = {require_sigs}\n\
             mode = pull\n\
             challenge_lifetime = 1800\n\
             verification_timeout = 0\n\
             session_create_rate_limit_per_ip = 50\n\
             session_create_rate_limit_window_ip = 60\n\
             session_create_rate_limit_per_agent = 15\n\
             session_create_rate_limit_window_agent = 60\n\
             session_lifetime = 180\n\
             extend_token_on_attestation = True\n\
             shutdown_drain_timeout = 10\n\
             \n\
             [revocations]\n\
             # Revocation notices go to the agents themselves (and to a webhook if given).\n\
             enabled_revocation_notifications = {notifiers}\n\
             zmq_ip = 127.0.0.1\n\
             zmq_port = {zmq}\n\
             webhook_url ={webhook_url}\n",
            port = self.verifier_port,
            registrar_tls = self.registrar_tls_port,
            quote_interval = opts.quote_interval,
            zmq = self.zmq_port,
            mb_policy_name = opts.measured_boot_policy_name,
            require_sigs = python_bool(opts.require_allow_list_signatures),
            notifiers = if opts.webhook_url.is_some() {
                "['agent', 'webhook']"
            } else {
                "['agent']"
            },
            webhook_url = opts
                .webhook_url
                .as_ref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default(),
        )
    }

    fn registrar_conf(&self) -> String {
        format!(
            "# Keylime registrar configuration (upstream 2.6 template layout)\n\
             [registrar]\n\
             version = 2.6\n\
             ip = \"127.0.0.1\"\n\
             port = {port}\n\
             tls_port = {tls_port}\n\
             tls_dir = default\n\
             server_key = default\n\
             server_key_password =\n\
             server_cert = default\n\
             cert_subject_alternative_names =\n\
             trusted_client_ca = default\n\
             authorization_provider = simple\n\
             database_url = sqlite\n\
             database_pool_sz_ovfl = 5,10\n\
             auto_migrate_db = True\n\
             max_workers = 2\n\
             durable_attestation_import =\n\
             persistent_store_url =\n\
             transparency_log_url =\n\
             time_stamp_authority_url =\n\
             time_stamp_authority_certs_path =\n\
             persistent_store_format = json\n\
             persistent_store_encoding =\n\
             transparency_log_sign_algo = sha256\n\
             signed_attributes = ek_tpm,aik_tpm,ekcert\n\
             tpm_identity = default\n\
             malformed_cert_action = warn\n",
            port = self.registrar_port,
            tls_port = self.registrar_tls_port,
        )
    }

    fn tenant_conf(&self, opts: &ConfigOptions) -> String {
        format!(
            "# Keylime tenant configuration (upstream 2.6 template layout)\n\
             [tenant]\n\
             version = 2.6\n\
             verifier_ip = 127.0.0.1\n\
             verifier_port = {verifier}\n\
             registrar_ip = 127.0.0.1\n\
             registrar_port = {registrar_tls}\n\
             tls_dir = default\n\
             enable_agent_mtls = True\n\
             client_key = default\n\
             client_key_password =\n\
             client_cert = default\n\
             trusted_server_ca = default\n\
             tpm_cert_store = {store}\n\
             max_payload_size = 1048576\n\
             accept_tpm_hash_algs = ['sha512', 'sha384', 'sha256']\n\
             accept_tpm_encryption_algs = ['ecc', 'rsa']\n\
             accept_tpm_signing_algs = ['ecschnorr', 'rsassa']\n\
             exponential_backoff = False\n\
             retry_interval = 1\n\
             max_retries = 10\n\
             request_timeout = 60\n\
             require_ek_cert = {require_ek_cert}\n\
             ek_check_script =\n\
             mb_refstate =\n",
            verifier = self.verifier_port,
            registrar_tls = self.registrar_tls_port,
            store = self.tpm_cert_store.display(),
            require_ek_cert = python_bool(opts.require_ek_cert),
        )
    }
}

/// A boolean as upstream's templates write it.
fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn ca_conf(opts: &ConfigOptions) -> String {
    format!(
        "# Keylime CA configuration (upstream 2.6 template layout)\n\
         [ca]\n\
         version = 2.6\n\
         password = {password}\n\
         cert_country = US\n\
         cert_ca_name = {ca_name}\n\
         cert_state = MA\n\
         cert_locality = Lexington\n\
         cert_organization = Keylime\n\
         cert_org_unit = 53\n\
         cert_ca_lifetime = {ca_lifetime}\n\
         cert_lifetime = 365\n\
         cert_bits = 2048\n\
         cert_crl_dist = http://localhost:38080/crl\n",
        password = opts.ca_password,
        ca_name = opts.ca_name,
        ca_lifetime = opts.ca_lifetime_days,
    )
}

/// Python `logging.config.fileConfig` format, INFO to stdout (upstream's tenant prints its
/// results through this logger).
const LOGGING_CONF: &str = "# Keylime logging configuration (upstream 2.5 template layout)\n\
[logging]\n\
version = 2.5\n\
\n\
[loggers]\n\
keys = root,keylime\n\
\n\
[handlers]\n\
keys = consoleHandler\n\
\n\
[formatters]\n\
keys = formatter\n\
\n\
[formatter_formatter]\n\
format = %(asctime)s.%(msecs)03d - %(name)s - %(levelname)s - %(message)s\n\
datefmt = %Y-%m-%d %H:%M:%S\n\
\n\
[logger_root]\n\
level = INFO\n\
handlers = consoleHandler\n\
\n\
[handler_consoleHandler]\n\
class = StreamHandler\n\
level = INFO\n\
formatter = formatter\n\
args = (sys.stdout,)\n\
\n\
[logger_keylime]\n\
level = INFO\n\
qualname = keylime\n\
handlers =\n";
