//! PostgreSQL logical replication for Fluxbase.
//!
//! This crate owns everything that knows the walsender wire format: the
//! replication-mode client, the pgoutput decoder and the acknowledgement
//! rules. It knows nothing of HTTP or of Fluxbase's event log.
//!
//! # Layout
//! - [`lsn`]: the [`Lsn`] type (a WAL position) and its text form `X/X`.
//! - [`timestamp`]: [`PgTimestamp`], µs since 2000-01-01.
//! - [`codec`]: the bounds-checked [`Reader`](codec::Reader) and
//!   [`DecodeError`].
//! - [`pgoutput`]: spec-shaped decode/encode of every pgoutput message
//!   (protocol 1–2, streaming behind a flag).
//! - [`walsender`]: XLogData, Primary keepalive, Standby status update.
//! - [`client`]: the walsender client (TCP/Unix, trust/password/MD5/SCRAM,
//!   replication commands, CopyBoth) and `postgres://` URL parsing.
//! - [`txn`]: relation cache and assembly of committed transactions.
//! - [`ack`]: the acknowledgement policy as pure functions.
//! - [`stream`]: [`ReplicationStream`], all of the above behind an async API.
//! - [`backoff`]: reconnect delays for the caller's retry loop.
//!
//! # Invariants
//! - The decoder never panics on input; malformed bytes are a
//!   [`DecodeError`].
//! - The flush LSN sent to PostgreSQL is never ahead of the durable LSN the
//!   event log reported, except by the idle rule (see [`ack`]).
//! - Only committed transactions are yielded, each change resolved against
//!   the relation cache as of its position in the stream.
//!
//! # Use by the server
//! ```no_run
//! use fluxbase_replication::{ConnectParams, PgOutputOptions, ReplicationClient, ReplicationStream, StreamConfig, StreamEvent};
//! # async fn run(durable: fluxbase_replication::Lsn) -> Result<(), Box<dyn std::error::Error>> {
//! let params: ConnectParams = "postgres://postgres:secret@/app?host=/run/pg".parse()?;
//! let client = ReplicationClient::connect(&params).await?;
//! let config = StreamConfig { start_lsn: durable, ..StreamConfig::default() };
//! let mut stream = ReplicationStream::start(client, "fluxbase", &PgOutputOptions::new(["fluxbase"]), config).await?;
//! while let Some(event) = stream.recv().await? {
//!     if let StreamEvent::Transaction(txn) = &event {
//!         // ... append txn to the event log and fsync ...
//!         stream.report_durable(txn.end_lsn);
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod ack;
pub mod backoff;
pub mod client;
pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod lsn;
pub mod pgoutput;
pub mod stream;
pub mod timestamp;
pub mod txn;
pub mod walsender;

#[cfg(test)]
mod test_fixtures;

pub use client::{
    ClientError, ConnectParams, CreatedSlot, PgOutputOptions, ReplicationClient, SlotInfo,
    SlotOptions, SystemIdentity,
};
pub use codec::DecodeError;
pub use lsn::Lsn;
pub use stream::{
    AckHandle, ReplicationStream, StreamConfig, StreamError, StreamEvent, StreamStats,
};
pub use timestamp::PgTimestamp;
pub use txn::{Change, ChangeOp, PartLimits, RelationInfo, Transaction, TransactionPart};
