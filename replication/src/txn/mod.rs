//! Transaction assembly: turns the decoded pgoutput message sequence of one
//! session into committed transactions whose changes carry resolved table
//! and column names.
//!
//! - [`relcache`]: the Relation (and Type) cache, keyed by OID, replaced on
//!   every Relation message, cleared on reconnect.
//! - [`change`]: the output types ([`Transaction`], [`Change`],
//!   [`RelationInfo`]).
//! - [`assembler`]: the state machine ([`TxnAssembler`]) for Begin…Commit and
//!   for streamed chunks (Stream Start…Stop, Stream Commit/Abort).
//!
//! Invariants: only committed transactions come out; each change is resolved
//! against the relation cache *as of its position in the stream* (a Relation
//! arriving mid-transaction after an ALTER applies to later changes only);
//! nothing from a previous session is needed or kept after
//! [`TxnAssembler::reset`].
//!
//! Memory: with `streaming` off (Fluxbase's setting) the walsender spills
//! large transactions to its own disk and sends each one only once it has
//! committed. [`TxnAssembler::new`] buffers that transaction whole until its
//! Commit; [`TxnAssembler::with_parts`] hands it over in bounded
//! [`TransactionPart`]s instead (the consumer stores them and makes them
//! visible at the Commit), so memory is bounded whatever the transaction's
//! size. With `streaming` on, chunks of several open transactions are
//! buffered here until their Stream Commit: callers that enable it must
//! accept that memory grows with the largest concurrent transactions.

pub mod assembler;
pub mod change;
pub mod relcache;

pub use assembler::{AssembleError, Assembled, PartLimits, TxnAssembler};
pub use change::{
    Change, ChangeOp, ColumnInfo, NonTransactionalMessage, RelationInfo, Transaction,
    TransactionPart,
};
pub use relcache::RelationCache;

#[cfg(test)]
mod tests;
