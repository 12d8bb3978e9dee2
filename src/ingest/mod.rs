//! Ingest: the logical replication consumer that feeds the event log.
//!
//! - [`publication`]: the managed publication and its settings.
//! - [`pipeline`]: the loop that streams the WAL into the log and
//!   acknowledges only what the log made durable.
//! - [`convert`]: decoded transactions → the log's [`crate::eventlog::Txn`].
//! - [`values`]: column text → JSON by type; [`types`]: the type catalog.

pub mod convert;
pub mod pipeline;
pub mod publication;
pub mod types;
pub mod values;

pub use pipeline::{default_slot_name, Ingest, IngestOptions, IngestState};
