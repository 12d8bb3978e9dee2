//! [`ConnectParams`]: where and as whom the walsender client connects, and
//! the parser for `postgres://` URLs.
//!
//! Accepted URL shape (a subset of libpq's):
//! `postgres[ql]://[user[:password]@][host][:port][/dbname][?param=value&...]`
//! with percent-decoding of user, password, host, dbname and parameter
//! values. Parameters: `host` (a directory starting with `/` means a Unix
//! socket directory), `port`, `user`, `password`, `dbname`,
//! `application_name`, `connect_timeout` (seconds), and `sslmode`
//! (`disable`, `allow`, `prefer` accepted and connect without TLS; anything
//! stronger is refused because this client does not speak TLS). Unknown
//! parameters are an error, so a typo is not silently ignored.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A TCP host name or IP address.
    Tcp(String),
    /// A directory holding the server's Unix socket `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

/// Connection parameters of the walsender client.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnectParams {
    /// TCP host or Unix socket directory.
    pub host: Host,
    /// Port (also names the Unix socket file).
    pub port: u16,
    /// Role to connect as (needs the REPLICATION attribute or superuser).
    pub user: String,
    /// Password, for password, MD5 or SCRAM authentication.
    pub password: Option<String>,
    /// Database whose changes are decoded.
    pub dbname: String,
    /// `application_name`, shown in `pg_stat_replication`.
    pub application_name: String,
    /// Limit on establishing the connection and authenticating.
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Default for ConnectParams {
    fn default() -> Self {
        ConnectParams {
            host: Host::Tcp("localhost".to_owned()),
            port: 5432,
            user: "postgres".to_owned(),
            password: None,
            dbname: "postgres".to_owned(),
            application_name: "fluxbase".to_owned(),
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// A connection URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not start with `postgres://` or `postgresql://`.
    #[error("connection URL must start with postgres:// or postgresql://")]
    Scheme,
    /// A percent escape is malformed or decodes to invalid UTF-8.
    #[error("invalid percent-encoding in {0}")]
    PercentEncoding(&'static str),
    /// The port is not a number in 1..=65535.
    #[error("invalid port {0:?}")]
    Port(String),
    /// A query parameter this client does not know.
    #[error("unsupported connection parameter {0:?}")]
    UnknownParameter(String),
    /// A query parameter has an invalid value.
    #[error("invalid value {value:?} for {name}")]
    InvalidValue {
        /// Parameter name.
        name: String,
        /// The value given.
        value: String,
    },
    /// `sslmode` asks for TLS, which this client does not implement.
    #[error("sslmode={0} requires TLS, which the replication client does not support; use sslmode=disable over loopback or a Unix socket")]
    TlsRequired(String),
    /// Several hosts (`host1,host2`) are not supported.
    #[error("multiple hosts are not supported")]
    MultipleHosts,
}

fn percent_decode(s: &str, what: &'static str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ConfigError::PercentEncoding(what))?;
            let hex = std::str::from_utf8(hex).map_err(|_| ConfigError::PercentEncoding(what))?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| ConfigError::PercentEncoding(what))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConfigError::PercentEncoding(what))
}

fn parse_port(s: &str) -> Result<u16, ConfigError> {
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConfigError::Port(s.to_owned())),
    }
}

fn parse_host(s: &str) -> Host {
    if s.starts_with('/') {
        Host::Unix(PathBuf::from(s))
    } else {
        Host::Tcp(s.to_owned())
    }
}

impl ConnectParams {
    /// Parses a `postgres://` URL (see the module docs for what is accepted).
    /// Missing parts take the [`Default`] values.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or(ConfigError::Scheme)?;
        let mut p = ConnectParams::default();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (rest, None),
        };
        let hostport = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((u, pw)) => (u, Some(pw)),
                    None => (userinfo, None),
                };
                if !user.is_empty() {
                    p.user = percent_decode(user, "user")?;
                }
                if let Some(pw) = pass {
                    p.password = Some(percent_decode(pw, "password")?);
                }
                hostport
            }
            None => authority,
        };
        if hostport.contains(',') {
            return Err(ConfigError::MultipleHosts);
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(ConfigError::InvalidValue {
                name: "host".to_owned(),
                value: hostport.to_owned(),
            })?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, port)) => (h, Some(port)),
                None => (hostport, None),
            }
        };
        if !host.is_empty() {
            p.host = parse_host(&percent_decode(host, "host")?);
        }
        if let Some(port) = port.filter(|s| !s.is_empty()) {
            p.port = parse_port(port)?;
        }
        if let Some(db) = path.filter(|s| !s.is_empty()) {
            p.dbname = percent_decode(db, "dbname")?;
        }
        for pair in query.unwrap_or_default().split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, "parameter name")?;
            let v = percent_decode(v, "parameter value")?;
            match k.as_str() {
                "host" => {
                    if v.contains(',') {
                        return Err(ConfigError::MultipleHosts);
                    }
                    p.host = parse_host(&v);
                }
                "port" => p.port = parse_port(&v)?,
                "user" => p.user = v,
                "password" => p.password = Some(v),
                "dbname" => p.dbname = v,
                "application_name" => p.application_name = v,
                "connect_timeout" => {
                    let secs: u64 =
                        v.parse().map_err(|_| ConfigError::InvalidValue { name: k.clone(), value: v.clone() })?;
                    p.connect_timeout = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "sslmode" => match v.as_str() {
                    "disable" | "allow" | "prefer" => {}
                    _ => return Err(ConfigError::TlsRequired(v)),
                },
                _ => return Err(ConfigError::UnknownParameter(k)),
            }
        }
        Ok(p)
    }

    /// The Unix socket file for a [`Host::Unix`] directory.
    pub fn unix_socket_path(&self) -> Option<PathBuf> {
        match &self.host {
            Host::Unix(dir) => Some(dir.join(format!(".s.PGSQL.{}", self.port))),
            Host::Tcp(_) => None,
        }
    }
}

impl FromStr for ConnectParams {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_url(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_tcp_url() {
        let p = ConnectParams::from_url("postgres://rep%40user:p%3Ass%2Fw@db.example:6543/my%20db?application_name=flux").expect("valid");
        assert_eq!(p.user, "rep@user");
        assert_eq!(p.password.as_deref(), Some("p:ss/w"));
        assert_eq!(p.host, Host::Tcp("db.example".into()));
        assert_eq!(p.port, 6543);
        assert_eq!(p.dbname, "my db");
        assert_eq!(p.application_name, "flux");
    }

    #[test]
    fn parses_a_unix_socket_url() {
        let p = ConnectParams::from_url("postgresql://postgres@/app?host=/var/run/postgresql&port=5433").expect("valid");
        assert_eq!(p.host, Host::Unix("/var/run/postgresql".into()));
        assert_eq!(p.unix_socket_path(), Some(PathBuf::from("/var/run/postgresql/.s.PGSQL.5433")));
        assert_eq!(p.dbname, "app");
        assert_eq!(p.password, None);
        let p = ConnectParams::from_url("postgres://%2Ftmp%2Fsock:5999/db").expect("valid");
        assert_eq!(p.unix_socket_path(), Some(PathBuf::from("/tmp/sock/.s.PGSQL.5999")));
    }

    #[test]
    fn defaults_and_ipv6() {
        let p = ConnectParams::from_url("postgres://").expect("valid");
        assert_eq!(p, ConnectParams::default());
        let p = ConnectParams::from_url("postgres://u@[::1]:7000").expect("valid");
        assert_eq!(p.host, Host::Tcp("::1".into()));
        assert_eq!(p.port, 7000);
        let p = ConnectParams::from_url("postgres://u:@h?sslmode=disable&connect_timeout=0").expect("valid");
        assert_eq!(p.password.as_deref(), Some(""));
        assert_eq!(p.connect_timeout, None);
    }

    #[test]
    fn rejects_bad_urls() {
        assert_eq!(ConnectParams::from_url("mysql://x"), Err(ConfigError::Scheme));
        assert!(matches!(ConnectParams::from_url("postgres://h:99999"), Err(ConfigError::Port(_))));
        assert!(matches!(ConnectParams::from_url("postgres://h:0"), Err(ConfigError::Port(_))));
        assert!(matches!(ConnectParams::from_url("postgres://u%zz@h"), Err(ConfigError::PercentEncoding("user"))));
        assert!(matches!(ConnectParams::from_url("postgres://u%ff@h"), Err(ConfigError::PercentEncoding("user"))));
        assert!(matches!(ConnectParams::from_url("postgres://h?x=1"), Err(ConfigError::UnknownParameter(_))));
        assert!(matches!(ConnectParams::from_url("postgres://h?sslmode=require"), Err(ConfigError::TlsRequired(_))));
        assert!(matches!(ConnectParams::from_url("postgres://a,b/db"), Err(ConfigError::MultipleHosts)));
        assert!(matches!(ConnectParams::from_url("postgres://u%2"), Err(ConfigError::PercentEncoding(_))));
    }

    #[test]
    fn debug_redacts_the_password() {
        let p = ConnectParams { password: Some("hunter2".into()), ..ConnectParams::default() };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
