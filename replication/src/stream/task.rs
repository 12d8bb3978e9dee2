//! The stream task: one loop that owns the socket, reads and decodes,
//! assembles, queues events for the consumer, and sends status updates as
//! [`crate::ack`] decides — independently of how fast the consumer is.

use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{StreamConfig, StreamError, StreamEvent, StreamStats};
use crate::ack::{
    decide, next_deadline, should_skip, AckState, FeedbackPolicy, SentStatus, StatusPositions,
};
use crate::client::{ClientError, CopyBothStream};
use crate::pgoutput::Decoder;
use crate::txn::{Assembled, TxnAssembler};
use crate::walsender::{ServerMessage, StandbyStatusUpdate};
use crate::PgTimestamp;

/// What one turn of the loop selected.
enum Step {
    Continue,
    Stop,
    Frame(Option<Bytes>),
}

pub(super) struct StreamTask {
    copy: CopyBothStream,
    decoder: Decoder,
    assembler: TxnAssembler,
    events: mpsc::Sender<StreamEvent>,
    /// An event read but not yet accepted by the channel. While it is set
    /// the socket is not read.
    pending: Option<StreamEvent>,
    durable_rx: watch::Receiver<crate::Lsn>,
    durable_closed: bool,
    stats_tx: watch::Sender<StreamStats>,
    shutdown_rx: oneshot::Receiver<()>,
    policy: FeedbackPolicy,
    idle_ack: bool,
    receive_timeout: Option<std::time::Duration>,
    /// Last time a message arrived, or reading resumed after a pause for
    /// the consumer.
    last_heard: Instant,
    state: AckState,
    last: SentStatus,
}

impl StreamTask {
    pub(super) fn new(
        copy: CopyBothStream,
        streaming: bool,
        config: &StreamConfig,
        events: mpsc::Sender<StreamEvent>,
        durable_rx: watch::Receiver<crate::Lsn>,
        stats_tx: watch::Sender<StreamStats>,
        shutdown_rx: oneshot::Receiver<()>,
    ) -> Self {
        let start = config.start_lsn;
        StreamTask {
            copy,
            decoder: Decoder::new(streaming),
            assembler: config
                .parts
                .map_or_else(TxnAssembler::new, TxnAssembler::with_parts),
            events,
            pending: None,
            durable_rx,
            durable_closed: false,
            stats_tx,
            shutdown_rx,
            policy: config.feedback,
            idle_ack: config.idle_ack,
            receive_timeout: config.receive_timeout,
            last_heard: Instant::now(),
            state: AckState {
                durable: start,
                received: start,
                delivered: start,
                txn_open: false,
                idle_keepalive: None,
            },
            // Seeded with the start position: nothing below it is ever
            // reported, and the first update waits for news or the interval.
            last: SentStatus {
                positions: StatusPositions {
                    write: start,
                    flush: start,
                    apply: start,
                },
                at: Instant::now().into_std(),
            },
        }
    }

    pub(super) async fn run(mut self) -> Result<(), StreamError> {
        let result = match self.run_loop().await {
            Ok(()) => self.close().await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, "replication stream ended");
        }
        result
    }

    /// Runs until shutdown is asked or the consumer goes away (`Ok`), or
    /// the stream fails.
    async fn run_loop(&mut self) -> Result<(), StreamError> {
        loop {
            self.refresh_durable();
            self.send_status(false).await?;
            let mut deadline = next_deadline(&self.policy, &self.state, Some(&self.last))
                .map(Instant::from_std)
                .unwrap_or_else(Instant::now);
            // Silence is only meaningful while we are reading the socket.
            if let (Some(limit), None) = (self.receive_timeout, &self.pending) {
                let expires = self.last_heard + limit;
                if Instant::now() >= expires {
                    return Err(ClientError::Timeout(
                        "waiting for the server (no reply to a reply-requested status update)",
                    )
                    .into());
                }
                deadline = deadline.min(expires);
            }
            let step = tokio::select! {
                biased;
                _ = &mut self.shutdown_rx => Step::Stop,
                changed = self.durable_rx.changed(), if !self.durable_closed => {
                    if changed.is_err() {
                        self.durable_closed = true;
                    }
                    Step::Continue
                }
                () = tokio::time::sleep_until(deadline) => Step::Continue,
                permit = self.events.reserve(), if self.pending.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(ev) = self.pending.take() {
                            permit.send(ev);
                        }
                        // Reading resumes now; silence is counted from here.
                        self.last_heard = Instant::now();
                        Step::Continue
                    }
                    // The consumer dropped the receiver: end cleanly.
                    Err(_) => Step::Stop,
                },
                frame = self.copy.recv(), if self.pending.is_none() => Step::Frame(frame?),
            };
            match step {
                Step::Continue => {}
                Step::Stop => return Ok(()),
                Step::Frame(Some(payload)) => {
                    self.last_heard = Instant::now();
                    self.handle(payload).await?;
                }
                Step::Frame(None) => return Err(StreamError::EndedByServer),
            }
        }
    }

    fn refresh_durable(&mut self) {
        let reported = *self.durable_rx.borrow_and_update();
        if reported > self.state.durable {
            self.state.durable = reported;
            self.stats_tx.send_modify(|s| s.durable = reported);
        }
    }

    async fn handle(&mut self, payload: Bytes) -> Result<(), StreamError> {
        match ServerMessage::decode(&payload)? {
            ServerMessage::XLogData(x) => {
                self.state.received = self.state.received.max(x.wal_end).max(x.wal_start);
                self.state.idle_keepalive = None;
                let msg = self.decoder.decode(&x.data)?;
                let done = self.assembler.push(msg)?;
                self.state.txn_open = !self.assembler.is_idle();
                let event = match done {
                    None => None,
                    Some(Assembled::Transaction(t)) => Some(StreamEvent::Transaction(t)),
                    Some(Assembled::Message(m)) => Some(StreamEvent::Message(m)),
                    Some(Assembled::Part(p)) => Some(StreamEvent::Part(p)),
                };
                if let Some(ev) = event {
                    self.refresh_durable();
                    // A part belongs to a stored transaction when its commit
                    // record starts below the durable LSN (the stored
                    // transaction's end is past it).
                    let duplicate = match &ev {
                        StreamEvent::Part(p) => p.final_lsn < self.state.durable,
                        other => should_skip(other.position(), self.state.durable),
                    };
                    if duplicate {
                        tracing::debug!(position = %ev.position(), durable = %self.state.durable, "skipping already durable event");
                        self.stats_tx.send_modify(|s| s.skipped += 1);
                    } else {
                        if !matches!(ev, StreamEvent::Part(_)) {
                            self.state.delivered = self.state.delivered.max(ev.position());
                        }
                        let is_txn = matches!(ev, StreamEvent::Transaction(_));
                        self.stats_tx.send_modify(|s| {
                            s.delivered = self.state.delivered;
                            s.transactions += u64::from(is_txn);
                        });
                        self.pending = Some(ev);
                    }
                }
                let received = self.state.received;
                self.stats_tx.send_modify(|s| s.received = received);
            }
            ServerMessage::Keepalive(k) => {
                self.state.received = self.state.received.max(k.wal_end);
                let idle = self.assembler.is_idle();
                if idle && self.idle_ack {
                    self.state.idle_keepalive = Some(k.wal_end);
                }
                let received = self.state.received;
                self.stats_tx.send_modify(|s| {
                    s.received = received;
                    s.keepalives += 1;
                });
                if idle && self.pending.is_none() {
                    // Informational; never blocks.
                    let _ = self
                        .events
                        .try_send(StreamEvent::Idle { wal_end: k.wal_end });
                }
                if k.reply_requested {
                    self.refresh_durable();
                    self.send_status(true).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends a status update if the policy says so (always when `force`).
    /// A heartbeat sent after a status interval of silence from the server
    /// asks it to reply, so that a dead connection is noticed
    /// ([`StreamConfig::receive_timeout`]).
    async fn send_status(&mut self, force: bool) -> Result<(), StreamError> {
        let tokio_now = Instant::now();
        let now = tokio_now.into_std();
        let ask_reply = self.pending.is_none()
            && tokio_now.duration_since(self.last_heard) >= self.policy.status_interval;
        let Some(p) = decide(&self.policy, &self.state, Some(&self.last), now, force) else {
            return Ok(());
        };
        let update = StandbyStatusUpdate {
            write: p.write,
            flush: p.flush,
            apply: p.apply,
            client_time: PgTimestamp::now(),
            reply_requested: ask_reply,
        };
        self.copy.send_status(&update).await?;
        tracing::trace!(write = %p.write, flush = %p.flush, "sent standby status update");
        self.last = SentStatus {
            positions: p,
            at: now,
        };
        self.stats_tx.send_modify(|s| {
            s.flushed = p.flush;
            s.last_status_at = Some(SystemTime::now());
        });
        Ok(())
    }

    /// Last status update (flush = durable), then CopyDone and Terminate.
    async fn close(mut self) -> Result<(), StreamError> {
        self.refresh_durable();
        self.send_status(true).await?;
        self.copy.close().await?;
        Ok(())
    }
}
