//! [`ReplicationStream`]: the client, decoder, assembler and ack policy tied
//! together behind an async API that yields committed transactions.
//!
//! One task owns the socket. It reads CopyData, decodes, assembles, drops
//! duplicates ([`should_skip`](crate::ack::should_skip)) and hands events to
//! the consumer through a **bounded** channel. When the channel is full it
//! stops reading the socket (TCP backpressure reaches the walsender) but
//! keeps running: durable-LSN reports are still turned into status updates
//! and a status update still goes out at least every
//! [`FeedbackPolicy::status_interval`], so a slow consumer never makes the
//! walsender time out. Keepalives that ask for a reply are answered as soon
//! as they are read, without waiting for the consumer.
//!
//! Memory: at most `channel_capacity` events are queued plus one pending,
//! plus the transaction being assembled (see [`crate::txn`]).
//!
//! Reconnect: a stream ends on any error; the caller reconnects (see
//! [`crate::backoff`]) with a new [`ReplicationClient`] and starts a new
//! stream at the event log's durable LSN. Caches and partial transactions
//! are per stream, so nothing stale survives a reconnect.

mod handle;
mod task;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use handle::{AckHandle, StreamStats};

use crate::ack::FeedbackPolicy;
use crate::client::{
    ClientError, ConnectParams, CopyBothStream, PgOutputOptions, ReplicationClient,
};
use crate::codec::DecodeError;
use crate::txn::{
    AssembleError, NonTransactionalMessage, PartLimits, Transaction, TransactionPart,
};
use crate::Lsn;

/// Settings of a [`ReplicationStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Where to start: the event log's durable LSN (the server starts at
    /// this or the slot's `confirmed_flush_lsn`, whichever is greater).
    /// Transactions whose commit end LSN is at or below it are dropped as
    /// duplicates, and no status update ever reports less than it.
    pub start_lsn: Lsn,
    /// Status update timing.
    pub feedback: FeedbackPolicy,
    /// Capacity of the event channel to the consumer.
    pub channel_capacity: usize,
    /// Apply the idle rule automatically (acknowledge a keepalive's WAL end
    /// when no transaction is open and everything delivered is durable).
    /// With `false` only reported durable LSNs are acknowledged; the
    /// consumer can still act on [`StreamEvent::Idle`].
    pub idle_ack: bool,
    /// End the stream with [`ClientError::Timeout`] (retryable) when the
    /// server has sent nothing for this long while we were reading. An idle
    /// walsender that gets our heartbeats sends nothing, so after a status
    /// interval of silence the heartbeat asks for a reply; a live server
    /// answers at once. Keep it well above
    /// [`FeedbackPolicy::status_interval`]. `None` disables the check (a dead
    /// peer is then noticed only when a write fails).
    pub receive_timeout: Option<Duration>,
    /// Hand large transactions over in [`StreamEvent::Part`]s past these
    /// limits (bounded memory); `None` delivers every transaction whole.
    pub parts: Option<PartLimits>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            start_lsn: Lsn::ZERO,
            feedback: FeedbackPolicy::default(),
            channel_capacity: 64,
            idle_ack: true,
            receive_timeout: Some(Duration::from_secs(30)),
            parts: None,
        }
    }
}

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A committed transaction. Report its `end_lsn` once it is durable.
    /// When [`Transaction::earlier_changes`] is not 0, its leading changes
    /// came before as [`StreamEvent::Part`]s.
    Transaction(Transaction),
    /// A leading part of a large transaction still being received (only
    /// with [`StreamConfig::parts`]). Store it, but do not acknowledge or
    /// expose it until its [`StreamEvent::Transaction`] arrives; if the
    /// stream ends first, drop the parts: the server sends the transaction
    /// again from its start.
    Part(TransactionPart),
    /// A non-transactional logical message. Report its `lsn` once handled.
    Message(NonTransactionalMessage),
    /// A keepalive arrived while no transaction was open: the server has
    /// nothing to send up to `wal_end`. Informational (dropped when the
    /// channel is full); acknowledging it is automatic with
    /// [`StreamConfig::idle_ack`].
    Idle {
        /// The keepalive's WAL end.
        wal_end: Lsn,
    },
}

impl StreamEvent {
    /// The event's position: what to pass to [`AckHandle::report_durable`]
    /// once it is durable. A part has none of its own: this is its
    /// transaction's commit LSN, below the position to acknowledge.
    pub fn position(&self) -> Lsn {
        match self {
            StreamEvent::Transaction(t) => t.end_lsn,
            StreamEvent::Part(p) => p.final_lsn,
            StreamEvent::Message(m) => m.lsn,
            StreamEvent::Idle { wal_end } => *wal_end,
        }
    }
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Network, server or protocol failure.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A replication message could not be decoded.
    #[error("decoding: {0}")]
    Decode(#[from] DecodeError),
    /// The message sequence broke the protocol's rules.
    #[error("assembling transactions: {0}")]
    Assemble(#[from] AssembleError),
    /// The server ended the copy (CopyDone).
    #[error("the server ended replication")]
    EndedByServer,
    /// The stream task panicked or was cancelled.
    #[error("replication task failed: {0}")]
    Task(String),
}

impl StreamError {
    /// True when reconnecting may help (network trouble, server restart,
    /// slot still busy). Decode and assembly errors are not: they point at
    /// a bug or corruption and would repeat.
    pub fn is_retryable(&self) -> bool {
        match self {
            StreamError::Client(e) => e.is_retryable(),
            StreamError::EndedByServer => true,
            StreamError::Decode(_) | StreamError::Assemble(_) | StreamError::Task(_) => false,
        }
    }
}

/// A running logical replication stream.
#[derive(Debug)]
pub struct ReplicationStream {
    events: mpsc::Receiver<StreamEvent>,
    ack: AckHandle,
    stats: watch::Receiver<StreamStats>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StreamError>>>,
}

impl ReplicationStream {
    /// Connects with `params`, sends START_REPLICATION and starts streaming:
    /// the whole reconnect step of the caller's retry loop.
    pub async fn connect(
        params: &ConnectParams,
        slot: &str,
        options: &PgOutputOptions,
        config: StreamConfig,
    ) -> Result<Self, ClientError> {
        let client = ReplicationClient::connect(params).await?;
        Self::start(client, slot, options, config).await
    }

    /// Sends START_REPLICATION on `client` and starts streaming.
    pub async fn start(
        client: ReplicationClient,
        slot: &str,
        options: &PgOutputOptions,
        config: StreamConfig,
    ) -> Result<Self, ClientError> {
        let copy = client
            .start_replication(slot, config.start_lsn, options)
            .await?;
        Ok(Self::from_copy_both(copy, options.streaming, config))
    }

    /// Starts streaming on a connection already in CopyBoth mode.
    /// `streaming` must match the `streaming` option given to
    /// START_REPLICATION.
    pub fn from_copy_both(copy: CopyBothStream, streaming: bool, config: StreamConfig) -> Self {
        let (ack, durable_rx) = AckHandle::new(config.start_lsn);
        let (events_tx, events) = mpsc::channel(config.channel_capacity.max(1));
        let (stats_tx, stats) = watch::channel(StreamStats {
            durable: config.start_lsn,
            flushed: config.start_lsn,
            ..StreamStats::default()
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let task = task::StreamTask::new(
            copy,
            streaming,
            &config,
            events_tx,
            durable_rx,
            stats_tx,
            shutdown_rx,
        );
        ReplicationStream {
            events,
            ack,
            stats,
            shutdown: Some(shutdown_tx),
            task: Some(tokio::spawn(task.run())),
        }
    }

    /// The next event; `Ok(None)` once the stream was shut down, `Err` with
    /// the reason when it failed. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        if let Some(ev) = self.events.recv().await {
            return Ok(Some(ev));
        }
        let Some(task) = &mut self.task else {
            return Ok(None);
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(r) => r.map(|()| None),
            Err(e) => Err(StreamError::Task(e.to_string())),
        }
    }

    /// Reports that everything up to `lsn` is durable (see
    /// [`AckHandle::report_durable`]).
    pub fn report_durable(&self, lsn: Lsn) {
        self.ack.report_durable(lsn);
    }

    /// A handle for reporting durability from elsewhere.
    pub fn ack_handle(&self) -> AckHandle {
        self.ack.clone()
    }

    /// Current positions and counters.
    pub fn stats(&self) -> StreamStats {
        self.stats.borrow().clone()
    }

    /// Sends a last status update (flush = durable), ends the copy and
    /// closes the connection. Returns the stream's error if it had already
    /// failed.
    pub async fn shutdown(mut self) -> Result<(), StreamError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Let the task finish even if events are queued.
        self.events.close();
        match self.task.take() {
            Some(task) => match task.await {
                Ok(r) => r,
                Err(e) => Err(StreamError::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for ReplicationStream {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
