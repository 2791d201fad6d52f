//! Loading the services' INI configuration through the public API, with
//! files laid out as upstream installs them under a temporary root.

use std::path::{Path, PathBuf};

use keylime_config::{
    CaConfig, ConfigError, DatabaseUrl, LogLevel, LoggingConfig, MalformedCertAction,
    MeasuredBootEvaluate, Origin, PeerVerification, PoolSize, RegistrarConfig, ServiceComponent,
    SeverityRule, Sources, TenantConfig, TlsDirSetting, TpmIdentity, TrustedCaSetting,
    VerifierConfig, VerifierMode,
};

/// A verifier.conf in upstream's 2.6 layout (sections, option order and
/// quoting as the template renders them), with a few non-default values.
const VERIFIER_CONF: &str = r#"# Keylime verifier configuration
[verifier]

# Configuration file version
version = 2.6

# Identifier of this verifier instance
uuid = default

# Bind address and port
ip = "10.0.0.5"
port = 8881

# Registrar the verifier talks to
registrar_ip = 10.0.0.6
registrar_port = 8891

enable_agent_mtls = True

# generate, default, or a directory relative to $KEYLIME_DIR
tls_dir = generate
server_key = default
server_key_password =
server_cert = default
cert_subject_alternative_names = verifier.example.com,10.0.0.5
trusted_client_ca = default
client_key = default
client_key_password =
client_cert = default
trusted_server_ca = default

authorization_provider = simple

# Example: mysql+pymysql://keylime:keylime@keylime_db:[port]/verifier?charset=utf8
database_url = postgresql+psycopg2://keylime:s3cret@db.example.com:5432/verifier
database_pool_sz_ovfl = 5,10
auto_migrate_db = True
num_workers = 0
max_workers = 16
exponential_backoff = True
retry_interval = 2
max_retries = 5
quote_interval = 2
max_upload_size = 104857600
request_timeout = 60.0

measured_boot_policy_name = accept-all
measured_boot_imports = []
measured_boot_evaluate = once

severity_labels = ["info", "notice", "warning", "error", "critical", "alert", "emergency"]
severity_policy = [{"event_id": ".*", "severity_label" : "emergency"}]

ignore_tomtou_errors = False

durable_attestation_import =
persistent_store_url =
transparency_log_url =
time_stamp_authority_url =
time_stamp_authority_certs_path =
persistent_store_format = json
persistent_store_encoding =
transparency_log_sign_algo = sha256
signed_attributes =

require_allow_list_signatures = False

# pull or push
mode = pull
#
challenge_lifetime = 1800
#
verification_timeout = 0
#
session_create_rate_limit_per_ip = 50
session_create_rate_limit_window_ip = 60
session_create_rate_limit_per_agent = 15
session_create_rate_limit_window_agent = 60
session_lifetime = 180
extend_token_on_attestation = True
auto_recover_attestation_failures = False
shutdown_drain_timeout = 10

# An option from some other release: kept, never an error
some_future_option = 42

[revocations]

# agent, zeromq, webhook
enabled_revocation_notifications = ['agent']

zmq_ip = 127.0.0.1
zmq_port = 8992

webhook_url =
"#;

const REGISTRAR_CONF: &str = r#"# Keylime registrar configuration
[registrar]

version = 2.6

ip = "0.0.0.0"
port = 8890
tls_port = 8891

tls_dir = default
server_key = default
server_key_password =
server_cert = default
cert_subject_alternative_names =
trusted_client_ca = default

authorization_provider = simple
database_url = sqlite
database_pool_sz_ovfl = 5,10
max_workers = 16
auto_migrate_db = True

durable_attestation_import =
persistent_store_url =
transparency_log_url =
time_stamp_authority_url =
time_stamp_authority_certs_path =
persistent_store_format = json
persistent_store_encoding =
transparency_log_sign_algo = sha256
signed_attributes = ek_tpm,aik_tpm,ekcert

tpm_identity = default
malformed_cert_action = warn
"#;

struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Self {
        Root {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Writes `rel` (e.g. `etc/keylime/verifier.conf`) under the root.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    fn sources(&self) -> Sources {
        Sources::isolated(self.dir.path()).with_env("KEYLIME_DIR", "/kl")
    }
}

fn kl(rel: &str) -> PathBuf {
    Path::new("/kl").join(rel)
}

#[test]
fn defaults_without_any_file() {
    let root = Root::new();
    let sources = root.sources();

    let v = VerifierConfig::load_from(&sources).expect("verifier defaults");
    assert_eq!((v.ip.as_str(), v.port), ("127.0.0.1", 8881));
    assert_eq!(
        (v.registrar_ip.as_str(), v.registrar_port),
        ("127.0.0.1", 8891)
    );
    assert_eq!(v.tls_dir, TlsDirSetting::Generate);
    assert_eq!(v.tls_dir_path(), kl("cv_ca"));
    assert_eq!(v.database_url, DatabaseUrl::Sqlite(kl("cv_data.sqlite")));
    assert_eq!(
        v.database_pool_sz_ovfl,
        PoolSize {
            size: 5,
            max_overflow: 10
        }
    );
    assert_eq!(v.mode, VerifierMode::Pull);
    assert_eq!(v.quote_interval, 2.0);
    assert_eq!(v.request_timeout, 60.0);
    assert_eq!(v.max_upload_size, 104_857_600);
    assert_eq!(v.measured_boot_evaluate, MeasuredBootEvaluate::Once);
    assert_eq!(
        v.severity_labels.last().map(String::as_str),
        Some("emergency")
    );
    assert_eq!(
        v.severity_policy,
        vec![SeverityRule {
            event_id: ".*".into(),
            severity_label: "emergency".into()
        }]
    );
    // Q3: absent option → upstream's code fallback `True`.
    assert!(v.ignore_tomtou_errors);
    assert_eq!(v.session_lifetime, 180);
    assert_eq!(v.nonce_lifetime, 60);
    assert_eq!(
        v.revocations.enabled_revocation_notifications,
        vec!["agent"]
    );
    assert_eq!(v.revocations.zmq_port, 8992);
    let server = v.server_tls();
    assert_eq!(server.cert, Some(kl("cv_ca/server-cert.crt")));
    assert_eq!(server.key, Some(kl("cv_ca/server-private.pem")));
    assert_eq!(
        server.peer,
        PeerVerification::TrustedCas(vec![kl("cv_ca/cacert.crt")])
    );
    assert_eq!(v.client_tls().cert, Some(kl("cv_ca/client-cert.crt")));

    let r = RegistrarConfig::load_from(&sources).expect("registrar defaults");
    assert_eq!((r.port, r.tls_port), (8890, 8891));
    assert_eq!(r.tls_dir, TlsDirSetting::Default);
    assert_eq!(
        r.tls_dir_path(),
        kl("cv_ca"),
        "registrar `default` is the verifier's CA dir"
    );
    assert_eq!(r.database_url, DatabaseUrl::Sqlite(kl("reg_data.sqlite")));
    assert_eq!(
        r.durable_attestation.signed_attributes,
        vec!["ek_tpm", "aik_tpm", "ekcert"]
    );
    assert!(!r.durable_attestation.enabled());
    assert_eq!(r.tpm_identity, TpmIdentity::EkCertOrIakIdevid);
    assert_eq!(r.malformed_cert_action, MalformedCertAction::Warn);

    let t = TenantConfig::load_from(&sources).expect("tenant defaults");
    assert_eq!(t.registrar_port, 8891);
    assert_eq!(t.accept_tpm_signing_algs, vec!["ecschnorr", "rsassa"]);
    assert_eq!(t.accept_tpm_hash_algs, vec!["sha512", "sha384", "sha256"]);
    assert_eq!(t.max_payload_size, 1_048_576);
    assert!(t.require_ek_cert);
    assert_eq!(t.client_tls().key, Some(kl("cv_ca/client-private.pem")));

    let ca = CaConfig::load_from(&sources).expect("ca defaults");
    assert_eq!(ca.cert_ca_name, "Keylime Certificate Authority");
    assert_eq!(
        (ca.cert_ca_lifetime, ca.cert_lifetime, ca.cert_bits),
        (3650, 365, 2048)
    );
    assert_eq!(ca.cert_crl_dist, "http://localhost:38080/crl");

    let log = LoggingConfig::load_from(&sources).expect("logging defaults");
    assert_eq!(log.level(), LogLevel::Info);
}

#[test]
fn upstream_verifier_conf_with_snippets() {
    let root = Root::new();
    let base = root.write("etc/keylime/verifier.conf", VERIFIER_CONF);
    // /usr/etc snippets apply before /etc snippets; each directory sorted.
    root.write(
        "usr/etc/keylime/verifier.conf.d/001-mode",
        "[verifier]\nmode = push\nquote_interval = 5\n",
    );
    root.write(
        "etc/keylime/verifier.conf.d/020-port",
        "[verifier]\nport: 9881\n",
    );
    root.write(
        "etc/keylime/verifier.conf.d/010-port",
        "[verifier]\nport = 7881\nquote_interval = 7.5\n",
    );
    root.write(
        "etc/keylime/verifier.conf.d/030-revocations",
        "[revocations]\nenabled_revocation_notifications = ['agent',\n    'webhook']\nwebhook_url = \"https://hooks.example.com/kl\"\nwebhook_max_age = 86400\n",
    );

    let sources = root.sources();
    let files = sources
        .service_files(ServiceComponent::Verifier)
        .expect("files");
    assert_eq!(files.first(), Some(&base));
    assert_eq!(files.len(), 5);

    let v = VerifierConfig::load_from(&sources).expect("loads");
    assert_eq!(v.ip, "10.0.0.5", "quotes are stripped");
    assert_eq!(v.registrar_ip, "10.0.0.6");
    assert_eq!(v.port, 9881, "the last snippet wins");
    assert_eq!(v.quote_interval, 7.5);
    assert_eq!(v.mode, VerifierMode::Push);
    assert!(!v.ignore_tomtou_errors, "written False in the file");
    assert_eq!(
        v.cert_subject_alternative_names,
        vec!["verifier.example.com", "10.0.0.5"]
    );
    assert_eq!(
        v.database_url,
        DatabaseUrl::Postgres("postgresql://keylime:s3cret@db.example.com:5432/verifier".into())
    );
    assert!(!v.database_url.to_string().contains("s3cret"));
    assert_eq!(
        v.revocations.enabled_revocation_notifications,
        vec!["agent", "webhook"]
    );
    assert_eq!(v.revocations.webhook_url, "https://hooks.example.com/kl");
    assert_eq!(v.revocations.webhook_max_age, 86400);
    assert_eq!(v.durable_attestation.persistent_store_format, "json");
    assert!(v.durable_attestation.signed_attributes.is_empty());
}

#[test]
fn etc_base_file_hides_usr_etc_base_file() {
    let root = Root::new();
    root.write(
        "usr/etc/keylime/registrar.conf",
        "[registrar]\nport = 1111\ntls_port = 2222\n",
    );
    let sources = root.sources();
    assert_eq!(
        RegistrarConfig::load_from(&sources).expect("usr").port,
        1111
    );

    root.write("etc/keylime/registrar.conf", REGISTRAR_CONF);
    let r = RegistrarConfig::load_from(&sources).expect("etc");
    assert_eq!(
        (r.port, r.tls_port),
        (8890, 8891),
        "/usr/etc base ignored once /etc has one"
    );
    assert_eq!(r.ip, "0.0.0.0");
}

#[test]
fn snippets_without_base_file_still_apply() {
    let root = Root::new();
    root.write(
        "etc/keylime/tenant.conf.d/10-verifier",
        "[tenant]\nverifier_ip = 192.0.2.1\n",
    );
    let t = TenantConfig::load_from(&root.sources()).expect("loads");
    assert_eq!(t.verifier_ip, "192.0.2.1");
}

#[test]
fn environment_overrides_files() {
    let root = Root::new();
    root.write("etc/keylime/verifier.conf", VERIFIER_CONF);
    let sources = root
        .sources()
        .with_env("KEYLIME_VERIFIER_PORT", "18881")
        .with_env("KEYLIME_VERIFIER_MODE", "push")
        .with_env(
            "KEYLIME_VERIFIER_DATABASE_URL",
            "sqlite:////srv/kl/cv.sqlite",
        )
        .with_env("KEYLIME_VERIFIER_REVOCATIONS_WEBHOOK_URL", "http://hook")
        .with_env(
            "KEYLIME_VERIFIER_REVOCATIONS_ENABLED_REVOCATION_NOTIFICATIONS",
            "['webhook']",
        )
        .with_env("KEYLIME_VERIFIER_TRUSTED_CLIENT_CA", "default");
    let v = VerifierConfig::load_from(&sources).expect("loads");
    assert_eq!(v.port, 18881);
    assert_eq!(v.mode, VerifierMode::Push);
    assert_eq!(
        v.database_url,
        DatabaseUrl::Sqlite("/srv/kl/cv.sqlite".into())
    );
    assert_eq!(v.revocations.webhook_url, "http://hook");
    assert_eq!(
        v.revocations.enabled_revocation_notifications,
        vec!["webhook"]
    );

    let bad = root.sources().with_env("KEYLIME_VERIFIER_PORT", "eighty");
    let err = VerifierConfig::load_from(&bad).expect_err("bad env value");
    match &err {
        ConfigError::InvalidValue { origin, option, .. } => {
            assert_eq!(
                origin,
                &Origin::Env {
                    var: "KEYLIME_VERIFIER_PORT".into()
                }
            );
            assert_eq!(option, "port");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("KEYLIME_VERIFIER_PORT"), "{err}");
}

#[test]
fn config_env_var_reads_only_that_file() {
    let root = Root::new();
    root.write("etc/keylime/registrar.conf", REGISTRAR_CONF);
    root.write(
        "etc/keylime/registrar.conf.d/50-port",
        "[registrar]\nport = 5555\n",
    );
    let only = root.write("elsewhere/reg.conf", "[registrar]\ntls_port = 9891\n");

    let sources = root
        .sources()
        .with_env("KEYLIME_REGISTRAR_CONFIG", only.display().to_string());
    assert_eq!(
        sources
            .service_files(ServiceComponent::Registrar)
            .expect("files"),
        vec![only.clone()]
    );
    let r = RegistrarConfig::load_from(&sources).expect("loads");
    assert_eq!(r.tls_port, 9891);
    assert_eq!(
        r.port, 8890,
        "neither the base file nor the snippet was read"
    );
    assert_eq!(r.ip, "127.0.0.1");

    // A name that does not exist falls back to the installed files (upstream).
    let missing = root
        .sources()
        .with_env("KEYLIME_REGISTRAR_CONFIG", "/nonexistent/reg.conf");
    assert_eq!(
        RegistrarConfig::load_from(&missing).expect("fallback").port,
        5555
    );
}

fn file_line(err: &ConfigError) -> (PathBuf, usize) {
    match err {
        ConfigError::MalformedLine { path, line, .. }
        | ConfigError::MissingSectionHeader { path, line, .. }
        | ConfigError::DuplicateOption { path, line, .. } => (path.clone(), *line),
        ConfigError::InvalidValue {
            origin: Origin::File { path, line },
            ..
        } => (path.clone(), *line),
        other => panic!("error without file and line: {other}"),
    }
}

#[test]
fn malformed_files_name_file_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[verifier]\nport = 8881\nthis line has no delimiter\n",
            3,
            "expected `[section]`",
        ),
        (
            "[verifier]\n\nenable_agent_mtls = maybe\n",
            3,
            "enable_agent_mtls",
        ),
        ("[verifier]\nport = 88x1\n", 2, "port"),
        ("[verifier]\nport = 70000\n", 2, "0 to 65535"),
        (
            "# comment\nport = 8881\n[verifier]\n",
            2,
            "before any [section]",
        ),
        ("[verifier]\nmode = pull\nmode = push\n", 3, "already set"),
        (
            "[verifier]\nseverity_policy = [{'event_id': '.*'}]\n",
            2,
            "severity_label",
        ),
        ("[verifier]\nrequest_timeout = soon\n", 2, "seconds"),
        ("[revocations]\nzmq_port = -1\n", 2, "zmq_port"),
        (
            "[verifier]\ndatabase_url = oracle://db/x\n",
            2,
            "unsupported database",
        ),
        (
            "[verifier]\nserver_cert = mine.crt\n",
            2,
            "tls_dir = generate",
        ),
    ];
    for (text, line, needle) in cases {
        let root = Root::new();
        let path = root.write("etc/keylime/verifier.conf", text);
        let err = VerifierConfig::load_from(&root.sources()).expect_err(text);
        assert_eq!(file_line(&err), (path.clone(), *line), "{text:?}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:{line}:", path.display())),
            "{message}"
        );
        assert!(
            message.contains(needle),
            "{message} should mention {needle}"
        );
    }
}

#[test]
fn bad_snippet_is_reported_with_its_own_name() {
    let root = Root::new();
    root.write("etc/keylime/registrar.conf", REGISTRAR_CONF);
    let snippet = root.write(
        "etc/keylime/registrar.conf.d/99-bad",
        "[registrar]\nauto_migrate_db = sometimes\n",
    );
    let err = RegistrarConfig::load_from(&root.sources()).expect_err("bad bool");
    assert_eq!(file_line(&err), (snippet, 2));
}

#[test]
fn registrar_and_tenant_tls_settings() {
    let root = Root::new();
    root.write(
        "etc/keylime/registrar.conf",
        "[registrar]\ntls_dir = generate\ndatabase_url = mysql+pymysql://kl:pw@db/registrar?charset=utf8\ntpm_identity = ek_cert\n",
    );
    root.write(
        "etc/keylime/tenant.conf",
        "[tenant]\ntls_dir = /etc/keylime/certs\ntrusted_server_ca = ['ca.crt', '/other/ca.crt']\nclient_cert = tenant.crt\naccept_tpm_hash_algs = sha256\n",
    );
    let sources = root.sources();
    let r = RegistrarConfig::load_from(&sources).expect("registrar");
    assert_eq!(r.tls_dir_path(), kl("reg_ca"));
    assert_eq!(r.server_tls().cert, Some(kl("reg_ca/server-cert.crt")));
    assert_eq!(
        r.database_url,
        DatabaseUrl::Mysql("mysql://kl:pw@db/registrar?charset=utf8".into())
    );
    assert_eq!(r.tpm_identity, TpmIdentity::EkCert);

    let t = TenantConfig::load_from(&sources).expect("tenant");
    let tls = t.client_tls();
    assert_eq!(tls.tls_dir, PathBuf::from("/etc/keylime/certs"));
    assert_eq!(
        tls.cert,
        Some(PathBuf::from("/etc/keylime/certs/tenant.crt"))
    );
    assert_eq!(
        tls.peer,
        PeerVerification::TrustedCas(vec![
            "/etc/keylime/certs/ca.crt".into(),
            "/other/ca.crt".into()
        ])
    );
    assert_eq!(t.accept_tpm_hash_algs, vec!["sha256"]);

    root.write(
        "etc/keylime/tenant.conf.d/1",
        "[tenant]\ntls_dir = generate\ntrusted_server_ca = all\n",
    );
    let err = TenantConfig::load_from(&sources).expect_err("generate is not for the tenant");
    assert!(
        err.to_string().contains("only supported by the verifier"),
        "{err}"
    );
}

#[test]
fn trusted_ca_all_disables_verification() {
    let root = Root::new();
    root.write(
        "etc/keylime/verifier.conf",
        "[verifier]\ntls_dir = default\ntrusted_client_ca = all\n",
    );
    let v = VerifierConfig::load_from(&root.sources()).expect("loads");
    assert_eq!(v.trusted_client_ca, TrustedCaSetting::All);
    assert_eq!(v.server_tls().peer, PeerVerification::Disabled);
}

#[test]
fn logging_levels_and_unknown_sections() {
    let root = Root::new();
    root.write(
        "etc/keylime/logging.conf",
        "[logging]\nversion = 2.6\n\n[loggers]\nkeys = root,keylime\n\n[formatter_formatter]\nformat = %(asctime)s.%(msecs)03d - %(name)s - %(levelname)s - %(message)s %(reqidf)s\n\n[logger_root]\nlevel = WARNING\nhandlers = consoleHandler\n\n[logger_keylime]\nlevel = DEBUG\nqualname = keylime\nhandlers =\n",
    );
    let log = LoggingConfig::load_from(&root.sources()).expect("loads");
    assert_eq!(log.root_level, LogLevel::Warning);
    assert_eq!(log.level(), LogLevel::Debug);
    assert_eq!(log.filter_directive(), "warn,keylime=debug");

    let env = root
        .sources()
        .with_env("KEYLIME_LOGGING_LOGGER_KEYLIME_LEVEL", "error");
    assert_eq!(
        LoggingConfig::load_from(&env).expect("env").level(),
        LogLevel::Error
    );
}
