//! Loading the agent's layered TOML configuration through the public API.

use std::path::PathBuf;

use keylime_config::{
    AgentConfig, ApiVersionsSetting, ConfigError, DEFAULT_IMA_ML_PATH,
    DEFAULT_MEASUREDBOOT_ML_PATH, EkHandleSetting, Origin, Sources, UuidSetting,
};

/// The shipped keylime-agent.conf layout (values as upstream ships them).
const AGENT_CONF: &str = r#"
# Keylime agent configuration
[agent]

# Configuration file version
version = "2.4"

api_versions = "default"
uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

ip = "127.0.0.1"
port = 9002
contact_ip = "127.0.0.1"
contact_port = 9002

registrar_ip = "127.0.0.1"
registrar_port = 8890
registrar_tls_port = 8891
registrar_tls_enabled = false
registrar_tls_ca_cert = "default"

enable_agent_mtls = true
keylime_dir = "/var/lib/keylime"
server_key = "default"
server_key_password = ""
payload_key = "default"
payload_key_password = ""
server_cert = "default"
trusted_client_ca = "default"

enc_keyname = "derived_tci_key"
dec_payload_file = "decrypted_payload"
secure_size = "1m"
extract_payload_zip = true

enable_revocation_notifications = false
revocation_actions_dir = "/usr/libexec/keylime"
revocation_notification_ip = "127.0.0.1"
revocation_notification_port = 8992
revocation_cert = "default"
revocation_actions = ""
payload_script = "autorun.sh"
enable_insecure_payload = false
allow_payload_revocation_actions = true

tpm_hash_alg = "sha256"
tpm_encryption_alg = "rsa"
tpm_signing_alg = "rsassa"
ek_handle = "generate"

enable_iak_idevid = false
iak_idevid_template = "detect"
iak_idevid_asymmetric_alg = "rsa"
iak_idevid_name_alg = "sha256"
idevid_password = ""
idevid_handle = ""
iak_password = ""
iak_handle = ""
iak_cert = "default"
idevid_cert = "default"

tpm_ownerpassword = ""
run_as = "keylime:tss"
agent_data_path = "default"
ima_ml_path = "default"
measuredboot_ml_path = "default"

attestation_interval_seconds = 60
verifier_url = "https://localhost:8881"
verifier_tls_ca_cert = "default"      # default: cv_ca/cacert.crt
registrar_api_versions = "default"
certification_keys_server_identifier = "ak"
uefi_logs_evidence_version = "2.1"
exponential_backoff_initial_delay = 10000
exponential_backoff_max_retries = 5
exponential_backoff_max_delay = 300000
tls_accept_invalid_certs = false
tls_accept_invalid_hostnames = false
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

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    fn sources(&self) -> Sources {
        Sources::isolated(self.dir.path())
    }
}

#[test]
fn defaults_without_any_file() {
    let root = Root::new();
    let a = AgentConfig::load_from(&root.sources()).expect("defaults");
    let kd = PathBuf::from("/var/lib/keylime");
    assert_eq!(
        a.uuid,
        UuidSetting::Fixed("d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into())
    );
    assert_eq!((a.ip.as_str(), a.port), ("127.0.0.1", 9002));
    assert_eq!((a.registrar_port, a.registrar_tls_port), (8890, 8891));
    assert!(!a.registrar_tls_enabled);
    assert!(a.enable_agent_mtls);
    assert_eq!(a.keylime_dir, kd);
    assert_eq!(a.server_key, kd.join("server-private.pem"));
    assert_eq!(a.server_cert, kd.join("server-cert.crt"));
    assert_eq!(a.payload_key, kd.join("payload-private.pem"));
    assert_eq!(a.trusted_client_ca, vec![kd.join("cv_ca/cacert.crt")]);
    assert_eq!(a.registrar_tls_ca_cert, kd.join("cv_ca/cacert.crt"));
    assert_eq!(a.verifier_tls_ca_cert, kd.join("cv_ca/cacert.crt"));
    assert_eq!(a.agent_data_path, kd.join("agent_data.json"));
    assert_eq!(
        a.revocation_cert,
        kd.join("secure/unzipped/RevocationNotifier-cert.crt")
    );
    assert_eq!(a.iak_cert, Some(kd.join("iak-cert.crt")));
    assert_eq!(a.ima_ml_path, PathBuf::from(DEFAULT_IMA_ML_PATH));
    assert_eq!(
        a.measuredboot_ml_path,
        PathBuf::from(DEFAULT_MEASUREDBOOT_ML_PATH)
    );
    assert_eq!(a.ek_handle, EkHandleSetting::Generate);
    assert_eq!(a.api_versions, ApiVersionsSetting::Default);
    assert_eq!(
        a.enabled_api_versions(),
        vec!["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
    );
    assert_eq!(
        (
            a.tpm_hash_alg.as_str(),
            a.tpm_encryption_alg.as_str(),
            a.tpm_signing_alg.as_str()
        ),
        ("sha256", "rsa", "rsassa")
    );
    assert!(!a.enable_revocation_notifications);
    assert_eq!(a.revocation_notification_port, 8992);
    assert!(a.revocation_actions.is_empty());
    assert_eq!(a.attestation_interval_seconds, 60);
    assert_eq!(a.verifier_url, "https://localhost:8881");
    assert_eq!(
        (
            a.exponential_backoff_initial_delay,
            a.exponential_backoff_max_retries,
            a.exponential_backoff_max_delay
        ),
        (10_000, 5, 300_000)
    );
    assert!(!a.tls_accept_invalid_certs && !a.tls_accept_invalid_hostnames);
}

#[test]
fn shipped_file_then_layers_then_environment() {
    let root = Root::new();
    root.write("usr/etc/keylime/agent.conf", AGENT_CONF);
    root.write(
        "usr/etc/keylime/agent.conf.d/10-port.conf",
        "[agent]\nport = 9100\ncontact_port = 9100\n",
    );
    root.write(
        "etc/keylime/agent.conf",
        "[agent]\nport = 9200\nuuid = \"hash_ek\"\nregistrar_ip = \"[::1]\"\n",
    );
    root.write(
        "etc/keylime/agent.conf.d/20-a.conf",
        "[agent]\nport = 9300\ntrusted_client_ca = \"ca1.crt, /abs/ca2.crt\"\n",
    );
    root.write(
        "etc/keylime/agent.conf.d/30-b.conf",
        "[agent]\nport = \"9400\"\nek_handle = \"0x81010001\"\n",
    );
    root.write("etc/keylime/agent.conf.d/.hidden", "[agent]\nport = 1\n");

    let sources = root.sources();
    assert_eq!(
        AgentConfig::files(&sources).expect("files").len(),
        5,
        "hidden snippet skipped"
    );
    let a = AgentConfig::load_from(&sources).expect("layers");
    assert_eq!(a.port, 9400, "later layers win; a quoted number is a port");
    assert_eq!(a.contact_port, 9100);
    assert_eq!(a.uuid, UuidSetting::HashEk);
    assert_eq!(a.registrar_ip, "::1");
    assert_eq!(a.run_as.as_deref(), Some("keylime:tss"));
    assert_eq!(a.version, "2.4");
    assert_eq!(a.ek_handle, EkHandleSetting::Persistent(0x8101_0001));
    assert_eq!(
        a.trusted_client_ca,
        vec![
            PathBuf::from("/var/lib/keylime/ca1.crt"),
            PathBuf::from("/abs/ca2.crt")
        ]
    );

    let env = root
        .sources()
        .with_env("KEYLIME_AGENT_PORT", "9500")
        .with_env("KEYLIME_AGENT_ENABLE_AGENT_MTLS", "false")
        .with_env("KEYLIME_AGENT_API_VERSIONS", "2.5, 2.6")
        .with_env("KEYLIME_AGENT_UUID", "generate")
        .with_env("KEYLIME_AGENT_SOMETHING_NEW", "ignored")
        .with_env("KEYLIME_DIR", "/run/kl");
    let a = AgentConfig::load_from(&env).expect("env");
    assert_eq!(a.port, 9500);
    assert!(!a.enable_agent_mtls);
    assert_eq!(a.enabled_api_versions(), vec!["2.5", "2.6"]);
    assert_eq!(a.uuid, UuidSetting::Generate);
    assert_eq!(
        a.keylime_dir,
        PathBuf::from("/run/kl"),
        "KEYLIME_DIR beats keylime_dir"
    );
    assert_eq!(a.server_cert, PathBuf::from("/run/kl/server-cert.crt"));
}

#[test]
fn agent_config_env_replaces_all_files() {
    let root = Root::new();
    root.write(
        "etc/keylime/agent.conf",
        "[agent]\nport = 9200\ncontact_ip = \"10.1.1.1\"\n",
    );
    let only = root.write("custom/agent.toml", "[agent]\ncontact_port = 7777\n");
    let sources = root
        .sources()
        .with_env("KEYLIME_AGENT_CONFIG", only.display().to_string())
        .with_env("KEYLIME_AGENT_IP", "0.0.0.0");
    assert_eq!(AgentConfig::files(&sources).expect("files"), vec![only]);
    let a = AgentConfig::load_from(&sources).expect("loads");
    assert_eq!(a.contact_port, 7777);
    assert_eq!(a.port, 9002, "/etc/keylime/agent.conf was not read");
    assert_eq!(a.contact_ip, "127.0.0.1");
    assert_eq!(a.ip, "0.0.0.0", "environment still applies last");
}

#[test]
fn missing_agent_config_file_is_an_error() {
    let root = Root::new();
    let sources = root
        .sources()
        .with_env("KEYLIME_AGENT_CONFIG", "/nonexistent/agent.conf");
    let err = AgentConfig::load_from(&sources).expect_err("must exist");
    assert!(
        matches!(&err, ConfigError::MissingAgentConfigFile { path } if path == &PathBuf::from("/nonexistent/agent.conf")),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/agent.conf"), "{err}");
}

#[test]
fn malformed_agent_files_name_file_and_line() {
    let root = Root::new();
    let path = root.write(
        "etc/keylime/agent.conf",
        "[agent]\nport = 9002\nip = \"unterminated\n",
    );
    match AgentConfig::load_from(&root.sources()).expect_err("bad toml") {
        ConfigError::Toml { path: p, line, .. } => {
            assert_eq!(p, path);
            assert_eq!(line, Some(3));
        }
        other => panic!("unexpected {other}"),
    }

    let cases: &[(&str, usize, &str)] = &[
        ("[agent]\n\nport = 70000\n", 3, "0 to 65535"),
        ("[agent]\nenable_agent_mtls = \"perhaps\"\n", 2, "boolean"),
        ("[agent]\nport = true\n", 2, "integer"),
        ("[agent]\nek_handle = \"0xnothex\"\n", 2, "hexadecimal"),
        ("[agent]\nuuid = [1, 2]\n", 2, "string"),
        (
            "[agent]\nenable_revocation_notifications = true\nrevocation_notification_ip = \"\"\n",
            3,
            "must not be empty",
        ),
    ];
    for (text, line, needle) in cases {
        let root = Root::new();
        let path = root.write("etc/keylime/agent.conf", text);
        let err = AgentConfig::load_from(&root.sources()).expect_err(text);
        match &err {
            ConfigError::InvalidValue { origin, .. } => {
                assert_eq!(
                    origin,
                    &Origin::File {
                        path: path.clone(),
                        line: *line
                    },
                    "{text:?}: {err}"
                );
            }
            other => panic!("{text:?}: unexpected {other}"),
        }
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }

    let bad_env = Root::new()
        .sources()
        .with_env("KEYLIME_AGENT_CONTACT_PORT", "x");
    let err = AgentConfig::load_from(&bad_env).expect_err("bad env");
    assert!(
        err.to_string().contains("KEYLIME_AGENT_CONTACT_PORT"),
        "{err}"
    );
}

#[test]
fn other_tables_and_unknown_options_are_ignored() {
    let root = Root::new();
    root.write(
        "etc/keylime/agent.conf",
        "top = 1\n[agent]\nport = 9003\nmeasure_payload_pcr = -1\nbrand_new_option = \"x\"\n[other]\nport = 1\n",
    );
    let a = AgentConfig::load_from(&root.sources()).expect("loads");
    assert_eq!(a.port, 9003);
}
