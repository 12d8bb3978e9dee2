//! [`AckHandle`] (how the event log reports "durable up to LSN") and
//! [`StreamStats`] (what the stream has received, persisted and reported).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::Lsn;

/// Reports the event log's durable LSN to a running
/// [`ReplicationStream`](super::ReplicationStream). Cheap to clone; give one
/// to whatever fsyncs the event log.
#[derive(Debug, Clone)]
pub struct AckHandle {
    tx: Arc<watch::Sender<Lsn>>,
}

impl AckHandle {
    pub(crate) fn new(initial: Lsn) -> (Self, watch::Receiver<Lsn>) {
        let (tx, rx) = watch::channel(initial);
        (AckHandle { tx: Arc::new(tx) }, rx)
    }

    /// Everything up to and including `lsn` (a transaction's commit end LSN
    /// or a message's LSN) is durably stored. Lower values than already
    /// reported are ignored. Never call it before the data is durable: the
    /// slot will release WAL up to it.
    pub fn report_durable(&self, lsn: Lsn) {
        self.tx.send_if_modified(|cur| {
            if lsn > *cur {
                *cur = lsn;
                true
            } else {
                false
            }
        });
    }

    /// The highest LSN reported so far (or the start LSN).
    pub fn durable(&self) -> Lsn {
        *self.tx.borrow()
    }
}

/// A snapshot of the stream's positions, for health and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Highest WAL position received from the server.
    pub received: Lsn,
    /// Position of the last event handed to the consumer.
    pub delivered: Lsn,
    /// The durable LSN reported through [`AckHandle`].
    pub durable: Lsn,
    /// The flush LSN last sent to the server (what the slot may confirm).
    pub flushed: Lsn,
    /// When the last status update was sent.
    pub last_status_at: Option<SystemTime>,
    /// Committed transactions delivered.
    pub transactions: u64,
    /// Transactions and messages dropped as already durable (dedupe).
    pub skipped: u64,
    /// Keepalives received.
    pub keepalives: u64,
}
