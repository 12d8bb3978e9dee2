//! The database Fluxbase talks to: the connection pool and the start-up
//! checks of an external database.
//!
//! - [`pool`] builds the `deadpool-postgres` pool every handler borrows from.
//! - [`session`] is a pipelined session (a whole request, one Sync) and
//!   [`session_pool`] the pool of them REST requests run on.
//! - [`backend_policy`] moves the embedded cluster's REST backends to
//!   `SCHED_BATCH`.
//! - [`preflight`] checks that an external server can do what Fluxbase
//!   needs (version, `wal_level`, REPLICATION) and says exactly what to
//!   change when it cannot.

pub mod backend_policy;
pub mod pool;
pub mod preflight;
pub mod session;
pub mod session_pool;

pub use pool::{connect_one, Pool};
pub use session_pool::{SessionOptions, SessionPool, SessionPools};

/// Errors reaching or checking the database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The database cannot be reached.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// Why.
        message: String,
    },
    /// The database is reachable but unsuitable; the text says what to change.
    #[error("the database at {url} cannot be used by Fluxbase:\n{problems}")]
    Unsuitable {
        /// The URL, password hidden.
        url: String,
        /// One line per problem, each with its fix.
        problems: String,
    },
    /// The pool could not be built.
    #[error("connection pool: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
