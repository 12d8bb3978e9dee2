//! The acknowledgement policy, as pure functions: what to tell the walsender
//! in each standby status update, when to send it, and which transactions to
//! drop as duplicates after a reconnect.
//!
//! Invariant (Fluxbase invariant 1): the flush LSN we report — which is what
//! advances the slot's `confirmed_flush_lsn` — is never ahead of what the
//! event log has durably stored, with one exception that loses nothing: the
//! *idle rule*. When no transaction is open and everything received has been
//! persisted, the keepalive's WAL end may be reported, because everything
//! before it has been either delivered (and persisted) or skipped by
//! pgoutput as unpublished. Without it the slot would retain WAL forever on a
//! database whose changes are all to unpublished tables.
//!
//! - [`feedback`]: the positions of a status update and when to send one.
//! - [`dedupe`]: [`should_skip`], at-least-once → exactly-once after restart.

pub mod dedupe;
pub mod feedback;

pub use dedupe::should_skip;
pub use feedback::{decide, flush_position, next_deadline, positions, AckState, FeedbackPolicy, SentStatus, StatusPositions};
