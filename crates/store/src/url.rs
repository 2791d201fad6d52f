//! `database_url` parsing: maps upstream Keylime's SQLAlchemy-style URLs onto the three
//! backends we support. Owns nothing else; connecting is `Store::connect`'s job.
//!
//! SQLite paths follow SQLAlchemy exactly, so an existing configuration keeps pointing at
//! the same file: `sqlite:////var/lib/keylime/x.sqlite` (four slashes) is absolute,
//! `sqlite:///x.sqlite` (three) is relative to the working directory.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Backend, StoreError};

/// Where the data lives. `Debug` and `Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A `postgres://` URL as sqlx understands it.
    Postgres(String),
    /// A `mysql://` URL as sqlx understands it (MySQL or MariaDB).
    Mysql(String),
}

impl DatabaseUrl {
    /// Parses upstream's `database_url` option.
    ///
    /// * `sqlite` → `default_sqlite` (upstream: the work dir plus the service's file name);
    /// * `sqlite:///rel/x.sqlite`, `sqlite:////abs/x.sqlite` → that file (SQLAlchemy rules);
    /// * `postgresql://…`, `postgres://…`, `postgresql+<driver>://…` → PostgreSQL;
    /// * `mysql://…`, `mysql+<driver>://…`, `mariadb[+<driver>]://…` → MySQL/MariaDB.
    ///
    /// ```
    /// # use keylime_store::DatabaseUrl;
    /// # use std::path::{Path, PathBuf};
    /// let url = DatabaseUrl::parse("sqlite", Path::new("/var/lib/keylime/reg_data.sqlite")).unwrap();
    /// assert_eq!(url, DatabaseUrl::Sqlite(PathBuf::from("/var/lib/keylime/reg_data.sqlite")));
    /// let url = DatabaseUrl::parse("postgresql+psycopg2://k:pw@db/keylime", Path::new("x")).unwrap();
    /// assert_eq!(url, DatabaseUrl::Postgres("postgres://k:pw@db/keylime".into()));
    /// assert!(!format!("{url}").contains("pw"));
    /// ```
    pub fn parse(s: &str, default_sqlite: &Path) -> Result<Self, StoreError> {
        let s = s.trim();
        if s == "sqlite" {
            return Ok(DatabaseUrl::Sqlite(default_sqlite.to_path_buf()));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(StoreError::UnsupportedScheme {
                scheme: s.chars().take_while(|c| *c != ':').take(32).collect(),
            });
        };
        let dialect = scheme
            .split_once('+')
            .map_or(scheme, |(d, _driver)| d)
            .to_ascii_lowercase();
        match dialect.as_str() {
            "sqlite" => parse_sqlite(rest).map(DatabaseUrl::Sqlite),
            "postgresql" | "postgres" => {
                require_host_part(Backend::Postgres, rest)?;
                Ok(DatabaseUrl::Postgres(format!("postgres://{rest}")))
            }
            "mysql" | "mariadb" => {
                require_host_part(Backend::Mysql, rest)?;
                Ok(DatabaseUrl::Mysql(format!("mysql://{rest}")))
            }
            _ => Err(StoreError::UnsupportedScheme {
                scheme: scheme.chars().take(32).collect(),
            }),
        }
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Mysql(_) => Backend::Mysql,
        }
    }
}

fn parse_sqlite(rest: &str) -> Result<PathBuf, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidDatabaseUrl {
        backend: Backend::Sqlite,
        reason: reason.to_string(),
    };
    // SQLAlchemy: "sqlite://" + "/" + path; the path itself may start with "/".
    let Some(path) = rest.strip_prefix('/') else {
        return Err(invalid(
            "expected 'sqlite:///relative/path' or 'sqlite:////absolute/path'",
        ));
    };
    if path.contains('?') {
        return Err(invalid("query parameters are not supported for SQLite"));
    }
    if path.is_empty() {
        return Err(invalid(
            "an in-memory database ('sqlite://') cannot hold registrar state; give a file path",
        ));
    }
    Ok(PathBuf::from(path))
}

fn require_host_part(backend: Backend, rest: &str) -> Result<(), StoreError> {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() && !rest.contains("host=") && !rest.contains("socket=") {
        return Err(StoreError::InvalidDatabaseUrl {
            backend,
            reason: "missing host".to_string(),
        });
    }
    Ok(())
}

/// Replaces the password of `scheme://user:password@host…` with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let redacted = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) if query.to_ascii_lowercase().contains("password") => {
            format!("{path}?***")
        }
        _ => tail.to_string(),
    };
    format!("{scheme}://{redacted}{tail}")
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            DatabaseUrl::Postgres(u) | DatabaseUrl::Mysql(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatabaseUrl, StoreError> {
        DatabaseUrl::parse(s, Path::new("/var/lib/keylime/reg_data.sqlite"))
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            parse("sqlite").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/keylime/reg_data.sqlite".into())
        );
        assert_eq!(
            parse("sqlite:////abs/x.sqlite").unwrap(),
            DatabaseUrl::Sqlite("/abs/x.sqlite".into())
        );
        assert_eq!(
            parse("sqlite:///rel/x.sqlite").unwrap(),
            DatabaseUrl::Sqlite("rel/x.sqlite".into())
        );
        assert!(matches!(
            parse("sqlite://"),
            Err(StoreError::InvalidDatabaseUrl { .. })
        ));
        assert!(matches!(
            parse("sqlite:///"),
            Err(StoreError::InvalidDatabaseUrl { .. })
        ));
        assert!(matches!(
            parse("sqlite:///x?mode=ro"),
            Err(StoreError::InvalidDatabaseUrl { .. })
        ));
    }

    #[test]
    fn postgres_forms() {
        for s in [
            "postgresql://u:p@h:5432/db",
            "postgres://u:p@h:5432/db",
            "postgresql+psycopg2://u:p@h:5432/db",
            "PostgreSQL+psycopg://u:p@h:5432/db",
        ] {
            assert_eq!(
                parse(s).unwrap(),
                DatabaseUrl::Postgres("postgres://u:p@h:5432/db".into()),
                "{s}"
            );
        }
        assert!(matches!(
            parse("postgresql:///db"),
            Err(StoreError::InvalidDatabaseUrl { .. })
        ));
    }

    #[test]
    fn mysql_forms() {
        for s in [
            "mysql://root@h/db?charset=utf8",
            "mysql+pymysql://root@h/db?charset=utf8",
            "mariadb+mariadbconnector://root@h/db?charset=utf8",
        ] {
            assert_eq!(
                parse(s).unwrap(),
                DatabaseUrl::Mysql("mysql://root@h/db?charset=utf8".into()),
                "{s}"
            );
        }
    }

    #[test]
    fn unknown_scheme_is_named() {
        let err = parse("oracle+cx://u@h/db").unwrap_err();
        assert!(err.to_string().contains("'oracle+cx'"), "{err}");
        let err = parse("/var/lib/x.sqlite").unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedScheme { .. }), "{err}");
    }

    #[test]
    fn display_hides_password() {
        let url = parse("postgresql://keylime:s3cret@db.example:5432/k?sslmode=require").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("keylime:***@db.example:5432/k?sslmode=require"),
            "{shown}"
        );
        let url = parse("mysql://root@h/db?password=s3cret").unwrap();
        assert!(!format!("{url}").contains("s3cret"));
    }
}
