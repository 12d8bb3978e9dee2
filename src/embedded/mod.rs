//! The embedded PostgreSQL cluster: the database Fluxbase creates, starts and
//! supervises itself when no `database.url` is configured.
//!
//! - [`binaries`] finds PostgreSQL's server programs.
//! - [`layout`] decides where the cluster lives and as which user it runs
//!   (PostgreSQL refuses root, so root runs it as `postgres`).
//! - [`initdb`] creates the cluster on first start.
//! - [`pidfile`] recovers from a stale `postmaster.pid` left by a crash.
//! - [`postmaster`] spawns and stops the `postgres` process.
//! - [`supervisor`] keeps it running: waits until it accepts connections,
//!   restarts it if it dies, stops it cleanly on shutdown.
//!
//! Invariant: no `postgres` process outlives Fluxbase. A clean shutdown stops
//! it (fast mode); if Fluxbase is killed, the kernel delivers the child's
//! parent-death signal (SIGQUIT, immediate shutdown) and the next start
//! recovers the stale pid file.

pub mod binaries;
pub mod initdb;
pub mod layout;
pub mod pidfile;
pub mod postmaster;
pub mod supervisor;

pub use supervisor::{ClusterState, EmbeddedCluster};

use std::path::PathBuf;

/// Anything that stops the embedded cluster from being created or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// PostgreSQL's server programs are not installed.
    #[error("PostgreSQL server binaries not found ({searched}). Install them with `apt-get install postgresql` (Debian/Ubuntu), or set FLUXBASE_EMBEDDED_BIN_DIR, or give an external database with --database-url")]
    BinariesNotFound {
        /// Where we looked.
        searched: String,
    },
    /// Running as root but no unprivileged user exists to run PostgreSQL.
    #[error("running as root, but there is no `postgres` user to run PostgreSQL as (PostgreSQL refuses to run as root). Install the `postgresql` package, which creates it, or run Fluxbase as an ordinary user")]
    NoClusterUser,
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PostgreSQL program failed.
    #[error("{program} failed ({status}): {output}")]
    Program {
        /// Which program.
        program: String,
        /// Its exit status.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// The cluster did not accept connections in time.
    #[error("PostgreSQL did not accept connections within {secs} s; last lines of its log {log}:\n{tail}")]
    StartTimeout {
        /// The timeout.
        secs: u64,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// The cluster exited while starting.
    #[error("PostgreSQL exited while starting ({status}); last lines of its log {log}:\n{tail}")]
    ExitedAtStart {
        /// Its exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// Another live PostgreSQL owns the data directory and would not stop.
    #[error("PostgreSQL process {pid} still holds {path} and did not stop")]
    Busy {
        /// Its pid.
        pid: i32,
        /// The data directory.
        path: PathBuf,
    },
    /// Cluster metadata in the data directory is unreadable.
    #[error("{0}")]
    DataDir(#[from] crate::datadir::DataDirError),
    /// The supervisor thread could not be started or stopped.
    #[error("cluster supervisor: {0}")]
    Supervisor(String),
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
