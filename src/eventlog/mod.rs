//! The event log: every committed transaction, durably, in commit order.
//!
//! It is the one source for live fan-out and for replay. Each change has a
//! [`Position`]: the commit's end LSN and its index within the transaction.
//! The replication slot is acknowledged only up to what [`EventLog::append`]
//! has made durable (invariant 1: flush LSN ≤ durable log LSN).
//!
//! - [`position`]: [`Position`], its text form and ordering.
//! - [`event`]: the stored transaction and change types.
//! - [`record`]: checksummed on-disk framing.
//! - [`segment`]: one segment file: scan with torn-tail recovery, append, read.
//! - [`file_log`]: [`FileLog`], the local-disk implementation with group
//!   commit, a sparse index, an in-memory tail and retention.
//!
//! The log is behind the [`EventLog`] trait so a replicated backend on an
//! existing distributed log can replace the local one.

pub mod event;
pub mod file_log;
pub mod position;
pub mod record;
pub mod segment;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

pub use event::{Change, ColumnInfo, Op, RelationInfo, Txn};
pub use file_log::{FileLog, LogOptions};
pub use fluxbase_replication::Lsn;
pub use position::Position;

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("event log {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be encoded or decoded.
    #[error("event log record at {path}:{offset}: {message}")]
    Corrupt {
        /// The segment.
        path: std::path::PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// An append would go backwards.
    #[error("append out of order: {new} is not after the log head {head}")]
    OutOfOrder {
        /// The transaction's LSN.
        new: Lsn,
        /// The head.
        head: Lsn,
    },
    /// The position is older than what the log retains.
    #[error("position {requested} is older than the oldest retained change {oldest}; resnapshot and resume from now")]
    Expired {
        /// Asked for.
        requested: Position,
        /// Oldest retained.
        oldest: Position,
    },
    /// The log's writer has stopped.
    #[error("the event log is closed")]
    Closed,
    /// A transaction is being written in parts and this append does not close it.
    #[error("transaction {xid} is being written in parts; only its own parts or its closing append may follow")]
    OpenTransaction {
        /// The open transaction.
        xid: u32,
    },
}

/// What the log holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    /// Position just before the oldest retained change (resume from here replays everything).
    pub oldest: Option<Position>,
    /// Position of the newest durable change.
    pub head: Option<Position>,
    /// LSN up to which everything is durable (≥ head's LSN; advanced by idle keepalives too).
    pub durable: Lsn,
}

/// A durable, ordered log of committed transactions.
pub trait EventLog: Send + Sync + 'static {
    /// Appends transactions (in commit order, each after the head) and
    /// returns once they are durable, with the new durable LSN. When parts
    /// of a transaction were appended ([`EventLog::append_part`]), the first
    /// transaction must be that one's remaining changes (same `xid`, its
    /// commit LSN): it makes the whole transaction durable and visible.
    fn append(&self, txns: Vec<Txn>) -> BoxFuture<'_, Result<Lsn, LogError>>;

    /// Stores a leading part of a large transaction still being received,
    /// with Begin's LSN as `lsn`: not durable, not visible, not counted in
    /// the bounds until the closing [`EventLog::append`]. Parts of one
    /// transaction come in order; the log numbers their changes.
    fn append_part(&self, part: Txn) -> BoxFuture<'_, Result<(), LogError>>;

    /// Drops the parts of a transaction that will not be closed (the
    /// replication session ended; the server sends it again whole).
    fn discard_parts(&self) -> BoxFuture<'_, Result<(), LogError>>;

    /// Records that everything up to `lsn` is durable although no
    /// transaction ends there (an idle keepalive position); never moves back.
    fn mark_durable(&self, lsn: Lsn);

    /// Transactions (or parts of large ones) containing changes after
    /// `after`, oldest first, stopping once they hold `max_changes` changes
    /// (at least one is returned when there is one); `Expired` when `after`
    /// is older than retention. A returned `Txn` may start before `after`:
    /// skip its changes at or before it.
    fn read_after(
        &self,
        after: Position,
        max_changes: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Txn>>, LogError>>;

    /// `Expired` when `after` is older than retention, without reading.
    fn check_position(&self, after: Position) -> Result<(), LogError> {
        match self.bounds().oldest {
            Some(oldest) if !oldest.lsn.is_zero() && after < oldest => Err(LogError::Expired {
                requested: after,
                oldest,
            }),
            _ => Ok(()),
        }
    }

    /// The current bounds.
    fn bounds(&self) -> Bounds;

    /// Notified whenever the head or durable LSN moves.
    fn watch(&self) -> watch::Receiver<Bounds>;
}

impl std::fmt::Debug for dyn EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventLog({:?})", self.bounds())
    }
}
