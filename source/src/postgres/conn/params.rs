//! Connection parameters from a `postgres://` URL, with libpq's meanings.

use std::path::PathBuf;

use headwater_core::{Secret, SecretUrl};

use crate::postgres::error::{PgError, PgResult};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, plain otherwise (libpq's default).
    #[default]
    Prefer,
    /// TLS, without checking the certificate (checks the chain when a root
    /// certificate is given, as libpq does).
    Require,
    /// TLS, the chain must lead to `sslrootcert`; the host name is not checked.
    VerifyCa,
    /// TLS, the chain and the host name are checked.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> PgResult<Self> {
        Ok(match text {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PgError::Url {
                    reason: format!("sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"),
                })
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Tcp {
        host: String,
        port: u16,
    },
    /// A unix-domain socket directory; the socket is `{dir}/.s.PGSQL.{port}`.
    Unix {
        dir: PathBuf,
        port: u16,
    },
}

impl Host {
    pub fn is_unix(&self) -> bool {
        matches!(self, Host::Unix { .. })
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Tcp { host, port } => write!(f, "{host}:{port}"),
            Host::Unix { dir, port } => write!(f, "{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnParams {
    pub host: Host,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: String,
    pub connect_timeout: std::time::Duration,
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl ConnParams {
    /// Parses `postgres://user:pass@host:port/db?sslmode=…&sslrootcert=…`.
    /// The host may be a socket directory, percent-encoded
    /// (`%2Fvar%2Frun%2Fpostgresql`) or given as `?host=/var/run/postgresql`.
    pub fn from_url(url: &SecretUrl) -> PgResult<Self> {
        let parsed = url::Url::parse(url.expose()).map_err(|e| PgError::Url {
            reason: format!("`{url}` is not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(PgError::Url {
                reason: format!("`{url}` is not a postgres:// URL"),
            });
        }
        let mut host = parsed.host_str().map(decode).unwrap_or_default();
        let mut port = parsed.port().unwrap_or(5432);
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut application_name = "headwater".to_owned();
        let mut user = decode(parsed.username());
        let mut password = parsed.password().map(|p| Secret::new(decode(p)));
        let mut dbname = decode(parsed.path().trim_start_matches('/'));
        let mut connect_timeout = std::time::Duration::from_secs(10);
        for (key, value) in parsed.query_pairs() {
            let value = value.into_owned();
            match &*key {
                "host" => host = value,
                "port" => {
                    port = value.parse().map_err(|_| PgError::Url {
                        reason: format!("port `{value}` is not a number"),
                    })?
                }
                "sslmode" => sslmode = Some(SslMode::parse(&value)?),
                "sslrootcert" => sslrootcert = Some(PathBuf::from(value)),
                "application_name" => application_name = value,
                "user" => user = value,
                "password" => password = Some(Secret::new(value)),
                "dbname" => dbname = value,
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| PgError::Url {
                        reason: format!("connect_timeout `{value}` is not a number of seconds"),
                    })?;
                    connect_timeout = std::time::Duration::from_secs(secs.max(1));
                }
                _ => {}
            }
        }
        if user.is_empty() {
            user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".to_owned());
        }
        if dbname.is_empty() {
            dbname = user.clone();
        }
        let host = if host.is_empty() {
            Host::Unix {
                dir: PathBuf::from("/var/run/postgresql"),
                port,
            }
        } else if host.starts_with('/') {
            Host::Unix {
                dir: PathBuf::from(host),
                port,
            }
        } else {
            Host::Tcp { host, port }
        };
        // libpq: no TLS over a unix socket.
        let sslmode = match (sslmode, host.is_unix()) {
            (_, true) => SslMode::Disable,
            (Some(mode), false) => mode,
            (None, false) => SslMode::Prefer,
        };
        Ok(ConnParams {
            host,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            application_name,
            connect_timeout,
        })
    }

    /// Where it connects, for messages (no credentials).
    pub fn target(&self) -> String {
        format!("{}/{}", self.host, self.dbname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> ConnParams {
        ConnParams::from_url(&SecretUrl::new(url)).unwrap()
    }

    #[test]
    fn tcp_url() {
        let p = parse(
            "postgres://repl:s%40cret@db.example:6543/shop?sslmode=verify-full&sslrootcert=/ca.pem",
        );
        assert_eq!(
            p.host,
            Host::Tcp {
                host: "db.example".into(),
                port: 6543
            }
        );
        assert_eq!(p.user, "repl");
        assert_eq!(p.password.unwrap().expose(), "s@cret");
        assert_eq!(p.dbname, "shop");
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!(p.sslrootcert.unwrap(), PathBuf::from("/ca.pem"));
    }

    #[test]
    fn socket_urls() {
        let p = parse("postgres://u@%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(
            p.host,
            Host::Unix {
                dir: "/var/run/postgresql".into(),
                port: 5432
            }
        );
        assert_eq!(p.sslmode, SslMode::Disable);
        let p = parse("postgres://u@localhost/db?host=/tmp&port=5433");
        assert_eq!(
            p.host,
            Host::Unix {
                dir: "/tmp".into(),
                port: 5433
            }
        );
        assert_eq!(p.host.to_string(), "/tmp/.s.PGSQL.5433");
    }

    #[test]
    fn rejects_bad_sslmode() {
        assert!(ConnParams::from_url(&SecretUrl::new("postgres://u@h/db?sslmode=maybe")).is_err());
        assert!(ConnParams::from_url(&SecretUrl::new("mysql://u@h/db")).is_err());
    }
}
