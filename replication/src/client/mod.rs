//! A walsender client over TCP or Unix sockets, built on `postgres-protocol`
//! (upstream tokio-postgres cannot enter CopyBoth). Its connection layer
//! ([`socket`], [`connection`], [`auth`] with [`auth::SessionKind::Plain`])
//! also starts ordinary sessions, for callers that pipeline the extended
//! protocol themselves.
//!
//! - [`config`]: [`ConnectParams`] and the `postgres://` URL parser.
//! - [`socket`]: TCP / Unix stream.
//! - [`frame`]: backend message framing (hand-parses CopyBothResponse `'W'`).
//! - [`connection`]: framed reads and writes.
//! - [`auth`]: startup packet and trust / cleartext / MD5 / SCRAM-SHA-256.
//! - [`query`]: simple queries with text results.
//! - [`commands`]: replication commands and their typed results.
//! - [`session`]: [`ReplicationClient`], the command-phase API.
//! - [`copy_both`]: [`CopyBothStream`], the streaming phase.
//! - [`error`]: [`ClientError`] and [`ServerError`] (with SQLSTATE).
//!
//! No TLS: connect over a Unix socket or loopback.

pub mod auth;
pub mod commands;
pub mod config;
pub mod connection;
pub mod copy_both;
pub mod error;
pub mod frame;
pub mod query;
pub mod session;
pub mod socket;

pub use commands::{CreatedSlot, PgOutputOptions, SlotInfo, SlotOptions, SnapshotAction, SystemIdentity};
pub use config::{ConfigError, ConnectParams, Host};
pub use copy_both::CopyBothStream;
pub use error::{ClientError, ServerError};
pub use query::QueryResult;
pub use session::ReplicationClient;
