//! PostgreSQL logical replication for Fluxbase.
//!
//! This crate owns everything that knows the walsender wire format: the
//! replication-mode client, the pgoutput decoder and the acknowledgement
//! rules. It knows nothing of HTTP or of Fluxbase's event log.
//!
//! # Layout
//! - [`lsn`]: the [`Lsn`] type (a WAL position) and its text form `X/X`.

pub mod lsn;

pub use lsn::Lsn;
