//! Configuration: defaults, an optional TOML file, `FLUXBASE_*` environment
//! variables and command-line flags, merged in that order and validated once
//! at start.
//!
//! Every key of the file can also be set from the environment as
//! `FLUXBASE_<SECTION>_<KEY>` (or `FLUXBASE_<KEY>` for top-level keys), so
//! `[database] url` is `FLUXBASE_DATABASE_URL` and `[jwt] secret` is
//! `FLUXBASE_JWT_SECRET`. A value that does not fit its key is a
//! [`ConfigError`] naming the key, the value and what is allowed; the CLI
//! turns it into exit status 2.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value outside what it allows.
    #[error("invalid value {value:?} for `{key}`: {allowed}")]
    Invalid {
        /// Dotted key, e.g. `server.port`.
        key: String,
        /// The value as given.
        value: String,
        /// What the key accepts.
        allowed: String,
    },
    /// A key that Fluxbase does not know.
    #[error("unknown configuration key `{key}` (from {source_name}); known keys: {known}")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// Where it came from (file path or environment variable).
        source_name: String,
        /// Comma-separated list of valid keys.
        known: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has a wrongly typed key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and position).
        message: String,
    },
}

/// The whole configuration of one Fluxbase instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for secrets, runtime state and (by default) the embedded cluster.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds.
    pub host: String,
    /// Port the HTTP server binds (0 picks a free one).
    pub port: u16,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Database settings.
    pub database: DatabaseConfig,
    /// The embedded PostgreSQL cluster (used when `database.url` is unset).
    pub embedded: EmbeddedConfig,
    /// JWT signing.
    pub jwt: JwtConfig,
    /// Logging.
    pub log: LogConfig,
    /// The replication consumer and the publication it reads.
    pub replication: crate::ingest::publication::ReplicationConfig,
    /// The event log.
    pub eventlog: EventLogConfig,
    /// `[rest]`: the PostgREST-compatible API.
    #[serde(default)]
    pub rest: crate::rest::RestConfig,
    /// The auth server (`/auth/v1`).
    pub auth: crate::auth::AuthConfig,
    /// Object storage (`/storage/v1`).
    pub storage: crate::storage::StorageConfig,
    /// `[realtime]`: limits of `/realtime/v1`.
    pub realtime: crate::realtime::config::RealtimeConfig,
}

/// `[eventlog]`: where and how long committed changes are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventLogConfig {
    /// Directory of the log; empty means `<data_dir>/eventlog`.
    pub dir: String,
    /// Retain at most this many bytes.
    pub max_bytes: u64,
    /// Retain at most this many hours.
    pub max_age_hours: u64,
    /// Segment file size.
    pub segment_bytes: u64,
    /// Bytes of recent changes kept in memory for live readers.
    pub tail_bytes: u64,
    /// fsync each group commit (turn off only for throwaway logs).
    pub fsync: bool,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            dir: String::new(),
            max_bytes: 1 << 30,
            max_age_hours: 7 * 24,
            segment_bytes: 64 << 20,
            tail_bytes: 64 << 20,
            fsync: true,
        }
    }
}

/// `[server]`: HTTP limits and behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Largest request body accepted by the JSON APIs, in bytes.
    pub max_body_bytes: u64,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Public URL clients use, if it differs from `http://host:port`.
    pub public_url: String,
    /// Threads HTTP connections are served on; 0 means one per core.
    pub http_threads: u32,
}

/// `[database]`: where the data lives and how we connect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://` URL of an external database; empty means the embedded cluster.
    pub url: String,
    /// Maximum connections in the pool.
    pub pool_size: u32,
    /// Seconds to wait for a pooled connection before failing the request.
    pub pool_timeout_secs: u64,
}

/// `[embedded]`: the private cluster Fluxbase runs itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// TCP port on loopback (0: reuse the last one, or pick a free one).
    pub port: u16,
    /// Directory with `initdb`, `postgres` and `pg_ctl`; empty means search.
    pub bin_dir: String,
    /// Whether PostgreSQL fsyncs (turn off only for throwaway test clusters).
    pub fsync: bool,
    /// `max_connections` of the cluster.
    pub max_connections: u32,
    /// `shared_buffers`, in PostgreSQL's unit syntax.
    pub shared_buffers: String,
    /// Seconds to wait for the cluster to accept connections.
    pub start_timeout_secs: u64,
    /// Run the backends of REST sessions under Linux's `SCHED_BATCH`
    /// policy, so that a backend woken by a request does not preempt the
    /// connection thread that sent it (see `database::backend_policy`).
    pub batch_scheduling: bool,
}

/// `[jwt]`: the HS256 secret that signs API keys and access tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The secret; empty means generate one on first start and keep it in the data dir.
    pub secret: String,
    /// Algorithm of access tokens: `HS256` (the secret), `RS256` or `ES256`.
    pub algorithm: String,
    /// PEM private keys for RS256/ES256, comma-separated file paths; the
    /// first signs, all verify. Empty with ES256: one is generated in the data dir.
    pub signing_keys: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig { secret: String::new(), algorithm: "HS256".into(), signing_keys: String::new() }
    }
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `auto` (pretty on a terminal, JSON otherwise), `pretty` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `fluxbase=debug,warn`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./.fluxbase"),
            host: "127.0.0.1".into(),
            port: 54321,
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            embedded: EmbeddedConfig::default(),
            jwt: JwtConfig::default(),
            log: LogConfig::default(),
            replication: Default::default(),
            eventlog: EventLogConfig::default(),
            rest: crate::rest::RestConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            storage: crate::storage::StorageConfig::default(),
            realtime: crate::realtime::config::RealtimeConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { max_body_bytes: 10 * 1024 * 1024, shutdown_grace_secs: 10, public_url: String::new(), http_threads: 0 }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: String::new(), pool_size: 32, pool_timeout_secs: 10 }
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            port: 0,
            bin_dir: String::new(),
            fsync: true,
            max_connections: 200,
            shared_buffers: "128MB".into(),
            start_timeout_secs: 60,
            batch_scheduling: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "auto".into(), level: "info".into() }
    }
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if any), then the
    /// `FLUXBASE_*` variables of `env`, then `overrides`; then validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<defaults>"),
            message: e.to_string(),
        })?;
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
            check_known_keys(&table, &defaults, &path.display().to_string())?;
        }
        apply_env(&mut table, &defaults, env)?;
        let mut config: Config = table.try_into().map_err(|e: toml::de::Error| ConfigError::Parse {
            path: file.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("<environment>")),
            message: e.to_string(),
        })?;
        if let Some(d) = &overrides.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(h) = &overrides.host {
            config.host = h.clone();
        }
        if let Some(p) = overrides.port {
            config.port = p;
        }
        if let Some(u) = &overrides.database_url {
            config.database.url = u.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every value against what it allows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: &dyn std::fmt::Display, allowed: &str| ConfigError::Invalid {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", &"", "a directory path"));
        }
        if self.host.parse::<IpAddr>().is_err() && self.host != "localhost" {
            return Err(invalid("host", &self.host, "an IP address such as 127.0.0.1 or 0.0.0.0, or localhost"));
        }
        if !self.database.url.is_empty() {
            self.database
                .url
                .parse::<tokio_postgres::Config>()
                .map_err(|e| invalid("database.url", &redact_url(&self.database.url), &format!("a postgres:// URL ({e})")))?;
        }
        if !(1..=10_000).contains(&self.database.pool_size) {
            return Err(invalid("database.pool_size", &self.database.pool_size, "an integer from 1 to 10000"));
        }
        if !(1..=3600).contains(&self.database.pool_timeout_secs) {
            return Err(invalid("database.pool_timeout_secs", &self.database.pool_timeout_secs, "an integer from 1 to 3600"));
        }
        if !(1024..=1 << 40).contains(&self.server.max_body_bytes) {
            return Err(invalid("server.max_body_bytes", &self.server.max_body_bytes, "an integer from 1024 to 2^40"));
        }
        if let Err((key, value, allowed)) = self.rest.validate() {
            return Err(ConfigError::Invalid { key, value, allowed });
        }
        if let Err((key, value, allowed)) = self.realtime.validate() {
            return Err(ConfigError::Invalid { key, value, allowed });
        }
        if self.server.http_threads > 1024 {
            return Err(invalid("server.http_threads", &self.server.http_threads, "an integer from 0 (one per core) to 1024"));
        }
        if self.server.shutdown_grace_secs > 3600 {
            return Err(invalid("server.shutdown_grace_secs", &self.server.shutdown_grace_secs, "an integer from 0 to 3600"));
        }
        let url = &self.server.public_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(invalid("server.public_url", &self.server.public_url, "an http:// or https:// URL, or empty"));
        }
        if !(10..=10_000).contains(&self.embedded.max_connections) {
            return Err(invalid("embedded.max_connections", &self.embedded.max_connections, "an integer from 10 to 10000"));
        }
        let sb = &self.embedded.shared_buffers;
        let digits = sb.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &sb[digits.len()..];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !["", "kB", "MB", "GB", "TB"].contains(&unit) {
            return Err(invalid("embedded.shared_buffers", sb, "a size such as 128MB (units kB, MB, GB, TB)"));
        }
        if !(1..=3600).contains(&self.embedded.start_timeout_secs) {
            return Err(invalid("embedded.start_timeout_secs", &self.embedded.start_timeout_secs, "an integer from 1 to 3600"));
        }
        if !self.jwt.secret.is_empty() && self.jwt.secret.len() < 32 {
            return Err(invalid("jwt.secret", &"<hidden>", "at least 32 characters (or empty to generate one)"));
        }
        let r = &self.replication;
        if !["all", "listed"].contains(&r.mode.as_str()) {
            return Err(invalid("replication.mode", &r.mode, "all or listed"));
        }
        let slot_ok = |s: &str| !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !r.slot.is_empty() && !slot_ok(&r.slot) {
            return Err(invalid("replication.slot", &r.slot, "1-63 lower-case letters, digits and underscores"));
        }
        if r.publication.is_empty() || r.publication.len() > 63 {
            return Err(invalid("replication.publication", &r.publication, "a name of 1-63 characters"));
        }
        if let Some(bad) = r.schemas.iter().find(|s| s.is_empty() || s.len() > 63) {
            return Err(invalid("replication.schemas", bad, "schema names of 1-63 characters"));
        }
        let e = &self.eventlog;
        if e.segment_bytes < 4096 || e.segment_bytes > 1 << 32 {
            return Err(invalid("eventlog.segment_bytes", &e.segment_bytes, "an integer from 4096 to 2^32"));
        }
        if e.max_bytes < e.segment_bytes {
            return Err(invalid("eventlog.max_bytes", &e.max_bytes, "at least eventlog.segment_bytes"));
        }
        if e.max_age_hours == 0 {
            return Err(invalid("eventlog.max_age_hours", &e.max_age_hours, "a positive number of hours"));
        }
        if !["HS256", "RS256", "ES256"].contains(&self.jwt.algorithm.as_str()) {
            return Err(invalid("jwt.algorithm", &self.jwt.algorithm, "one of HS256, RS256, ES256"));
        }
        if self.jwt.algorithm == "RS256" && self.jwt.signing_keys.trim().is_empty() {
            return Err(invalid("jwt.signing_keys", &"", "at least one PEM file for RS256"));
        }
        if let Err((key, value, allowed)) = self.storage.check() {
            return Err(ConfigError::Invalid { key, value, allowed });
        }
        if !["auto", "pretty", "json"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", &self.log.format, "one of auto, pretty, json"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", &self.log.level, "a tracing filter such as info, debug or fluxbase=debug,warn"));
        }
        self.auth.validate()?;
        Ok(())
    }

    /// The base URL clients use to reach the API.
    pub fn api_url(&self, bound_port: u16) -> String {
        if !self.server.public_url.is_empty() {
            return self.server.public_url.trim_end_matches('/').to_owned();
        }
        let host = match self.host.as_str() {
            "0.0.0.0" => "127.0.0.1",
            "::" => "[::1]",
            h if h.contains(':') => return format!("http://[{h}]:{bound_port}"),
            h => h,
        };
        format!("http://{host}:{bound_port}")
    }

    /// Seconds in-flight requests get on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }

    /// How many HTTP connection threads to run: `server.http_threads`, or
    /// one per core the process may use.
    pub fn http_threads(&self) -> usize {
        match self.server.http_threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n as usize,
        }
    }
}

/// Replaces the password of a `postgres://` URL with `***` for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Names every known key, dotted, for error messages.
fn known_keys(defaults: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (k, v) in defaults {
        match v {
            toml::Value::Table(t) => keys.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
            _ => keys.push(k.clone()),
        }
    }
    keys.sort();
    keys
}

fn check_known_keys(table: &toml::Table, defaults: &toml::Table, source: &str) -> Result<(), ConfigError> {
    let unknown = |key: String| ConfigError::UnknownKey {
        key,
        source_name: source.to_owned(),
        known: known_keys(defaults).join(", "),
    };
    for (k, v) in table {
        match (defaults.get(k), v) {
            (None, _) => return Err(unknown(k.clone())),
            (Some(toml::Value::Table(d)), toml::Value::Table(t)) => {
                if let Some(sub) = t.keys().find(|sub| !d.contains_key(*sub)) {
                    return Err(unknown(format!("{k}.{sub}")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Environment variables that start with `FLUXBASE_` but are not config keys.
const NON_CONFIG_VARS: &[&str] = &["FLUXBASE_CONFIG", "FLUXBASE_SHOW_SECRETS", "FLUXBASE_LOG"];

/// Finds the dotted key a `FLUXBASE_*` variable names, using the defaults as the schema.
fn env_key(var: &str, defaults: &toml::Table) -> Option<(Option<String>, String)> {
    let name = var.strip_prefix("FLUXBASE_")?.to_ascii_lowercase();
    if let Some(v) = defaults.get(&name) {
        if !v.is_table() {
            return Some((None, name));
        }
    }
    for (section, v) in defaults {
        let toml::Value::Table(t) = v else { continue };
        if let Some(key) = name.strip_prefix(&format!("{section}_")) {
            if t.contains_key(key) {
                return Some((Some(section.clone()), key.to_owned()));
            }
        }
    }
    None
}

fn apply_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let vars: BTreeMap<String, String> = env.into_iter().filter(|(k, _)| k.starts_with("FLUXBASE_")).collect();
    for (var, raw) in vars {
        if NON_CONFIG_VARS.contains(&var.as_str()) || var.starts_with("FLUXBASE_TEST_") {
            continue;
        }
        let Some((section, key)) = env_key(&var, defaults) else {
            return Err(ConfigError::UnknownKey {
                key: var.clone(),
                source_name: "environment".into(),
                known: known_keys(defaults)
                    .iter()
                    .map(|k| format!("FLUXBASE_{}", k.replace('.', "_").to_ascii_uppercase()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let dotted = match &section {
            Some(s) => format!("{s}.{key}"),
            None => key.clone(),
        };
        let default = match &section {
            Some(s) => defaults.get(s).and_then(|t| t.get(&key)),
            None => defaults.get(&key),
        };
        let value = match default {
            Some(toml::Value::Integer(_)) => raw.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| {
                ConfigError::Invalid { key: dotted.clone(), value: raw.clone(), allowed: "an integer".into() }
            })?,
            Some(toml::Value::Boolean(_)) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: dotted,
                        value: raw,
                        allowed: "true or false".into(),
                    })
                }
            },
            // Lists come from the environment comma-separated.
            Some(toml::Value::Array(_)) => toml::Value::Array(
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.to_owned())).collect(),
            ),
            _ => toml::Value::String(raw),
        };
        match section {
            Some(s) => {
                let entry = table.entry(s).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key, value);
                }
            }
            None => {
                table.insert(key, value);
            }
        }
    }
    // Integers out of a field's range are caught here with the key named.
    for (k, v) in table.iter() {
        if let toml::Value::Integer(i) = v {
            if k == "port" && !(0..=65535).contains(i) {
                return Err(ConfigError::Invalid { key: k.clone(), value: i.to_string(), allowed: "a port from 0 to 65535".into() });
            }
        }
        if let toml::Value::Table(t) = v {
            for (sub, sv) in t {
                if let toml::Value::Integer(i) = sv {
                    if *i < 0 {
                        return Err(ConfigError::Invalid {
                            key: format!("{k}.{sub}"),
                            value: i.to_string(),
                            allowed: "a non-negative integer".into(),
                        });
                    }
                    if sub == "port" && *i > 65535 {
                        return Err(ConfigError::Invalid {
                            key: format!("{k}.{sub}"),
                            value: i.to_string(),
                            allowed: "a port from 0 to 65535".into(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env(&[]), &Overrides::default()).expect("defaults load");
        assert_eq!(c.port, 54321);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.data_dir, PathBuf::from("./.fluxbase"));
    }

    #[test]
    fn environment_sets_top_level_and_section_keys() {
        let c = Config::load(
            None,
            env(&[
                ("FLUXBASE_PORT", "8080"),
                ("FLUXBASE_DATA_DIR", "/tmp/x"),
                ("FLUXBASE_DATABASE_URL", "postgres://u:p@localhost/db"),
                ("FLUXBASE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("FLUXBASE_EMBEDDED_FSYNC", "off"),
                ("FLUXBASE_EMBEDDED_BATCH_SCHEDULING", "false"),
                ("FLUXBASE_DATABASE_POOL_SIZE", "7"),
                ("FLUXBASE_REPLICATION_SCHEMAS", "public, app"),
                ("OTHER", "ignored"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(c.port, 8080);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.database.url, "postgres://u:p@localhost/db");
        assert_eq!(c.jwt.secret.len(), 32);
        assert!(!c.embedded.fsync);
        assert!(!c.embedded.batch_scheduling);
        assert_eq!(c.database.pool_size, 7);
        assert_eq!(c.replication.schemas, vec!["public", "app"]);
    }

    #[test]
    fn flags_override_environment_which_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "port = 1000\nhost = \"0.0.0.0\"\n[database]\npool_size = 3\n").expect("write");
        let c = Config::load(
            Some(&file),
            env(&[("FLUXBASE_PORT", "2000")]),
            &Overrides { port: Some(3000), ..Overrides::default() },
        )
        .expect("loads");
        assert_eq!(c.port, 3000);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.database.pool_size, 3);
        let c = Config::load(Some(&file), env(&[("FLUXBASE_PORT", "2000")]), &Overrides::default()).expect("loads");
        assert_eq!(c.port, 2000);
    }

    fn load_err(vars: &[(&str, &str)]) -> String {
        match Config::load(None, env(vars), &Overrides::default()) {
            Ok(_) => panic!("{vars:?} should be rejected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_values_name_key_value_and_allowed() {
        let m = load_err(&[("FLUXBASE_PORT", "abc")]);
        assert!(m.contains("port") && m.contains("abc") && m.contains("integer"), "{m}");
        let m = load_err(&[("FLUXBASE_PORT", "70000")]);
        assert!(m.contains("port") && m.contains("70000") && m.contains("65535"), "{m}");
        let m = load_err(&[("FLUXBASE_LOG_FORMAT", "xml")]);
        assert!(m.contains("log.format") && m.contains("xml") && m.contains("auto, pretty, json"), "{m}");
        let m = load_err(&[("FLUXBASE_HOST", "not a host")]);
        assert!(m.contains("host") && m.contains("not a host"), "{m}");
        let m = load_err(&[("FLUXBASE_DATABASE_URL", "mysql://x")]);
        assert!(m.contains("database.url"), "{m}");
        let m = load_err(&[("FLUXBASE_JWT_SECRET", "short")]);
        assert!(m.contains("jwt.secret") && m.contains("32") && !m.contains("short"), "{m}");
        let m = load_err(&[("FLUXBASE_EMBEDDED_FSYNC", "maybe")]);
        assert!(m.contains("embedded.fsync") && m.contains("maybe"), "{m}");
        let m = load_err(&[("FLUXBASE_DATABASE_POOL_SIZE", "0")]);
        assert!(m.contains("database.pool_size") && m.contains("1 to 10000"), "{m}");
        let m = load_err(&[("FLUXBASE_EMBEDDED_SHARED_BUFFERS", "lots")]);
        assert!(m.contains("embedded.shared_buffers"), "{m}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let m = load_err(&[("FLUXBASE_PROT", "1")]);
        assert!(m.contains("FLUXBASE_PROT") && m.contains("FLUXBASE_PORT"), "{m}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "[database]\nurll = \"x\"\n").expect("write");
        let e = Config::load(Some(&file), env(&[]), &Overrides::default()).expect_err("unknown key");
        assert!(e.to_string().contains("database.urll"), "{e}");
        std::fs::write(&file, "port = \"x\"\n").expect("write");
        let e = Config::load(Some(&file), env(&[]), &Overrides::default()).expect_err("wrong type");
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn api_url_uses_loopback_for_wildcard() {
        let mut c = Config { host: "0.0.0.0".into(), ..Config::default() };
        assert_eq!(c.api_url(5), "http://127.0.0.1:5");
        c.server.public_url = "https://api.example.com/".into();
        assert_eq!(c.api_url(5), "https://api.example.com");
    }
}
