//! Upstream's path and URL conventions for the services
//! (keylime/keylime `web_util.py`, `models/base/db.py`).
//!
//! * Relative paths are relative to `$KEYLIME_DIR` (for `tls_dir`) or to the
//!   TLS directory (for certificate, key and CA file names).
//! * `tls_dir = generate` → `$KEYLIME_DIR/cv_ca` (verifier) or `reg_ca`
//!   (registrar); `tls_dir = default` → `$KEYLIME_DIR/cv_ca` for every
//!   service, the registrar included (it shares the verifier's CA).
//! * `trusted_*_ca = default` → `[$KEYLIME_DIR/cv_ca/cacert.crt]` whatever
//!   `tls_dir` is; `all` turns peer verification off.
//! * `database_url = sqlite` → `$KEYLIME_DIR/cv_data.sqlite` (verifier) or
//!   `reg_data.sqlite` (registrar); SQLAlchemy URLs are normalised.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::values;

/// The verifier's CA directory name, also used by `tls_dir = default`.
pub const VERIFIER_CA_DIR: &str = "cv_ca";
/// The registrar's generated CA directory name.
pub const REGISTRAR_CA_DIR: &str = "reg_ca";
/// CA certificate file name inside a CA directory.
pub const CA_CERT_FILE: &str = "cacert.crt";

/// `base.join(value)` unless `value` is absolute.
pub fn resolve_in(base: &Path, value: impl AsRef<Path>) -> PathBuf {
    let value = value.as_ref();
    if value.is_absolute() {
        value.to_path_buf()
    } else {
        base.join(value)
    }
}

/// The `tls_dir` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsDirSetting {
    /// `generate`: create a CA and certificates on first start.
    Generate,
    /// `default`: use `$KEYLIME_DIR/cv_ca`, which must exist.
    Default,
    /// Any other value: a directory, relative to `$KEYLIME_DIR` unless absolute.
    Path(PathBuf),
}

impl TlsDirSetting {
    /// Parses the option text.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match values::unquote(raw) {
            "" => Err("tls_dir must not be empty (use generate, default or a directory)".into()),
            "generate" => Ok(TlsDirSetting::Generate),
            "default" => Ok(TlsDirSetting::Default),
            other => Ok(TlsDirSetting::Path(PathBuf::from(other))),
        }
    }

    /// The directory this setting names. `generate_dir` is the directory
    /// `generate` uses for the service (`cv_ca` or `reg_ca`).
    pub fn resolve(&self, keylime_dir: &Path, generate_dir: &str) -> PathBuf {
        match self {
            TlsDirSetting::Generate => keylime_dir.join(generate_dir),
            TlsDirSetting::Default => keylime_dir.join(VERIFIER_CA_DIR),
            TlsDirSetting::Path(p) => resolve_in(keylime_dir, p),
        }
    }
}

/// The `trusted_client_ca` / `trusted_server_ca` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedCaSetting {
    /// `default`: `$KEYLIME_DIR/cv_ca/cacert.crt`.
    Default,
    /// `all`: do not verify the peer's certificate.
    All,
    /// A list of files, relative to the TLS directory unless absolute.
    Paths(Vec<String>),
}

impl TrustedCaSetting {
    /// Parses `default`, `all`, a Python list or a comma list.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match values::unquote(raw) {
            "default" => Ok(TrustedCaSetting::Default),
            "all" => Ok(TrustedCaSetting::All),
            _ => values::parse_list(raw).map(TrustedCaSetting::Paths),
        }
    }

    /// Resolves to the CA files to trust, or to no verification.
    pub fn resolve(&self, keylime_dir: &Path, tls_dir: &Path) -> PeerVerification {
        match self {
            TrustedCaSetting::Default => PeerVerification::TrustedCas(vec![
                keylime_dir.join(VERIFIER_CA_DIR).join(CA_CERT_FILE),
            ]),
            TrustedCaSetting::All => PeerVerification::Disabled,
            TrustedCaSetting::Paths(paths) => {
                PeerVerification::TrustedCas(paths.iter().map(|p| resolve_in(tls_dir, p)).collect())
            }
        }
    }
}

/// How a TLS endpoint checks its peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerVerification {
    /// Require a peer certificate chaining to one of these CA files.
    TrustedCas(Vec<PathBuf>),
    /// `all`: accept any peer certificate (insecure).
    Disabled,
}

/// The files one TLS role (server or client) of a service uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The resolved TLS directory.
    pub tls_dir: PathBuf,
    /// Certificate file; `None` when the option is empty.
    pub cert: Option<PathBuf>,
    /// Private key file; `None` when the option is empty.
    pub key: Option<PathBuf>,
    /// Password of the private key; `None` when empty (key not encrypted).
    pub key_password: Option<String>,
    /// Peer verification.
    pub peer: PeerVerification,
}

impl TlsFiles {
    /// Resolves the options of one role. `default_stem` is `server` or `client`
    /// (giving `server-cert.crt` / `server-private.pem`).
    pub fn resolve(
        keylime_dir: &Path,
        tls_dir: PathBuf,
        default_stem: &str,
        cert: &str,
        key: &str,
        key_password: &str,
        trusted_ca: &TrustedCaSetting,
    ) -> Self {
        let file = |value: &str, default_name: String| match value {
            "" => None,
            "default" => Some(tls_dir.join(default_name)),
            other => Some(resolve_in(&tls_dir, other)),
        };
        TlsFiles {
            cert: file(cert, format!("{default_stem}-cert.crt")),
            key: file(key, format!("{default_stem}-private.pem")),
            key_password: (!key_password.is_empty()).then(|| key_password.to_string()),
            peer: trusted_ca.resolve(keylime_dir, &tls_dir),
            tls_dir,
        }
    }
}

/// The `database_url` option, resolved.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL in `postgresql://…` form (usable by sqlx).
    Postgres(String),
    /// A MySQL/MariaDB URL in `mysql://…` form (usable by sqlx).
    Mysql(String),
}

impl DatabaseUrl {
    /// Parses the option. `sqlite` alone means `keylime_dir/default_file`;
    /// `sqlite:///<path>` is SQLAlchemy's form (`sqlite:////abs/file` for an
    /// absolute path; a relative path is taken relative to `keylime_dir`).
    /// SQLAlchemy driver suffixes (`postgresql+psycopg2://`,
    /// `mysql+pymysql://`, …) are dropped.
    pub fn parse(raw: &str, keylime_dir: &Path, default_file: &str) -> Result<Self, String> {
        let text = values::unquote(raw);
        if text == "sqlite" {
            return Ok(DatabaseUrl::Sqlite(keylime_dir.join(default_file)));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            let shown = if text.contains('@') {
                "a value that is not a URL (hidden: it may hold a password)".to_string()
            } else {
                format!("{text:?}")
            };
            return Err(format!(
                "expected `sqlite` or a URL such as sqlite:////var/lib/keylime/cv_data.sqlite or postgresql://user@host/db, found {shown}"
            ));
        };
        let dialect = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        match dialect.as_str() {
            "sqlite" => {
                let path = rest.strip_prefix('/').unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() {
                    return Err("in-memory SQLite (`sqlite://`) cannot hold keylime state; give a file path".into());
                }
                Ok(DatabaseUrl::Sqlite(resolve_in(keylime_dir, path)))
            }
            "postgresql" | "postgres" => Ok(DatabaseUrl::Postgres(format!("postgresql://{rest}"))),
            "mysql" | "mariadb" => Ok(DatabaseUrl::Mysql(format!("mysql://{rest}"))),
            _ => Err(format!(
                "unsupported database dialect {scheme:?} (use sqlite, postgresql or mysql)"
            )),
        }
    }

    /// A URL sqlx understands (`sqlite://<path>?mode=rwc` for files).
    pub fn sqlx_url(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            DatabaseUrl::Postgres(url) | DatabaseUrl::Mysql(url) => url.clone(),
        }
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Shows the URL with any password replaced by `***` (safe for logs).
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:///{}", path.display()),
            DatabaseUrl::Postgres(url) | DatabaseUrl::Mysql(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `database_pool_sz_ovfl = <size>,<max overflow>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSize {
    /// Connections kept open.
    pub size: u32,
    /// Extra connections allowed under load.
    pub max_overflow: u32,
}

impl PoolSize {
    /// Parses `5,10`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = values::unquote(raw);
        let bad = || format!("expected `<pool size>,<max overflow>` such as 5,10, found {raw:?}");
        let (size, overflow) = text.split_once(',').ok_or_else(bad)?;
        Ok(PoolSize {
            size: size.trim().parse().map_err(|_| bad())?,
            max_overflow: overflow.trim().parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KD: &str = "/var/lib/keylime";

    #[test]
    fn tls_dir_forms() {
        let kd = Path::new(KD);
        assert_eq!(
            TlsDirSetting::parse("generate").map(|s| s.resolve(kd, "reg_ca")),
            Ok(kd.join("reg_ca"))
        );
        assert_eq!(
            TlsDirSetting::parse("default").map(|s| s.resolve(kd, "reg_ca")),
            Ok(kd.join("cv_ca"))
        );
        assert_eq!(
            TlsDirSetting::parse("mine").map(|s| s.resolve(kd, "cv_ca")),
            Ok(kd.join("mine"))
        );
        assert_eq!(
            TlsDirSetting::parse("/etc/pki").map(|s| s.resolve(kd, "cv_ca")),
            Ok(PathBuf::from("/etc/pki"))
        );
        assert!(TlsDirSetting::parse("").is_err());
    }

    #[test]
    fn trusted_ca_forms() {
        let kd = Path::new(KD);
        let tls = Path::new("/tls");
        assert_eq!(
            TrustedCaSetting::parse("default").map(|s| s.resolve(kd, tls)),
            Ok(PeerVerification::TrustedCas(vec![
                kd.join("cv_ca/cacert.crt")
            ]))
        );
        assert_eq!(
            TrustedCaSetting::parse("all").map(|s| s.resolve(kd, tls)),
            Ok(PeerVerification::Disabled)
        );
        assert_eq!(
            TrustedCaSetting::parse("['a.crt', '/abs/b.crt']").map(|s| s.resolve(kd, tls)),
            Ok(PeerVerification::TrustedCas(vec![
                "/tls/a.crt".into(),
                "/abs/b.crt".into()
            ]))
        );
    }

    #[test]
    fn database_urls() {
        let kd = Path::new(KD);
        let p = |s: &str| DatabaseUrl::parse(s, kd, "cv_data.sqlite");
        assert_eq!(
            p("sqlite"),
            Ok(DatabaseUrl::Sqlite(kd.join("cv_data.sqlite")))
        );
        assert_eq!(
            p("sqlite:////srv/kl.db"),
            Ok(DatabaseUrl::Sqlite("/srv/kl.db".into()))
        );
        assert_eq!(
            p("sqlite:///kl.db"),
            Ok(DatabaseUrl::Sqlite(kd.join("kl.db")))
        );
        assert_eq!(
            p("postgresql+psycopg2://kl:pw@db:5432/verifier"),
            Ok(DatabaseUrl::Postgres(
                "postgresql://kl:pw@db:5432/verifier".into()
            ))
        );
        assert_eq!(
            p("postgres://db/v"),
            Ok(DatabaseUrl::Postgres("postgresql://db/v".into()))
        );
        assert_eq!(
            p("mysql+pymysql://keylime:keylime@keylime_db:3306/verifier?charset=utf8"),
            Ok(DatabaseUrl::Mysql(
                "mysql://keylime:keylime@keylime_db:3306/verifier?charset=utf8".into()
            ))
        );
        assert!(p("oracle://x").is_err());
        assert!(p("sqlite://").is_err());
        assert!(p("nonsense").is_err());
    }

    #[test]
    fn database_url_display_hides_password() {
        let url = DatabaseUrl::Postgres("postgresql://kl:secret@db/v".into());
        assert_eq!(url.to_string(), "postgresql://kl:***@db/v");
        assert!(!format!("{url:?}").contains("secret"));
        let e = DatabaseUrl::parse("pg:/kl:secret@db", Path::new(KD), "x").expect_err("bad");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn pool_size() {
        assert_eq!(
            PoolSize::parse("5,10"),
            Ok(PoolSize {
                size: 5,
                max_overflow: 10
            })
        );
        assert!(PoolSize::parse("5").is_err());
    }

    #[test]
    fn tls_files_defaults_and_names() {
        let kd = Path::new(KD);
        let files = TlsFiles::resolve(
            kd,
            kd.join("cv_ca"),
            "server",
            "default",
            "my.key",
            "",
            &TrustedCaSetting::Default,
        );
        assert_eq!(files.cert, Some(kd.join("cv_ca/server-cert.crt")));
        assert_eq!(files.key, Some(kd.join("cv_ca/my.key")));
        assert_eq!(files.key_password, None);
        let files = TlsFiles::resolve(
            kd,
            kd.join("cv_ca"),
            "client",
            "",
            "default",
            "pw",
            &TrustedCaSetting::All,
        );
        assert_eq!(files.cert, None);
        assert_eq!(files.key, Some(kd.join("cv_ca/client-private.pem")));
        assert_eq!(files.key_password.as_deref(), Some("pw"));
        assert_eq!(files.peer, PeerVerification::Disabled);
    }
}
