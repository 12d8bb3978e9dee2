//! The ingest loop: WAL → event log, with acknowledgement only after durability.
//!
//! One task owns the replication connection. Each session: make sure the slot
//! exists (a lost or missing slot is recreated and a `GAP` event tells
//! clients to resnapshot), start streaming from the log's durable LSN, then
//! repeatedly take every transaction that has arrived (group commit),
//! convert it, append it, and only then report the new durable LSN to the
//! stream (invariant 1). Transactions at or below the durable LSN are
//! dropped (they were already stored before a restart). Any failure ends the
//! session; the loop reconnects with backoff and resumes from the slot.

use std::sync::Arc;
use std::time::Duration;

use fluxbase_replication::backoff::Backoff;
use fluxbase_replication::client::{
    ConnectParams, PgOutputOptions, ReplicationClient, SlotOptions,
};
use fluxbase_replication::{Lsn, PartLimits, ReplicationStream, StreamConfig, StreamEvent};
use futures_util::FutureExt;
use tokio::sync::watch;

use super::convert;
use super::types::TypeCache;
use crate::database::Pool;
use crate::eventlog::{Change, EventLog, Op, Txn};

/// Most transactions appended in one group commit.
const MAX_BATCH: usize = 512;

/// What the ingest loop is doing, for `/health` and `/changes/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestState {
    /// Connecting for the first time.
    Starting,
    /// Streaming.
    Streaming,
    /// The last session failed; retrying.
    Reconnecting {
        /// Consecutive failures.
        attempt: u32,
        /// The last error.
        error: String,
    },
    /// Stopped on request.
    Stopped,
}

impl IngestState {
    /// A short word.
    pub fn as_str(&self) -> &'static str {
        match self {
            IngestState::Starting => "starting",
            IngestState::Streaming => "streaming",
            IngestState::Reconnecting { .. } => "reconnecting",
            IngestState::Stopped => "stopped",
        }
    }
}

/// Settings of the ingest loop.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Database URL (a role with REPLICATION).
    pub url: String,
    /// Replication slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
}

/// Handle of the running ingest loop.
#[derive(Debug)]
pub struct Ingest {
    state: watch::Receiver<IngestState>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The slot's name.
    pub slot: String,
}

/// Errors of one session.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Client(#[from] fluxbase_replication::ClientError),
    #[error(transparent)]
    Stream(#[from] fluxbase_replication::StreamError),
    #[error(transparent)]
    Log(#[from] crate::eventlog::LogError),
    #[error(transparent)]
    Db(#[from] crate::database::DatabaseError),
    #[error("bad replication URL: {0}")]
    Config(String),
}

impl Ingest {
    /// Starts the loop.
    pub fn spawn(opts: IngestOptions, pool: Pool, log: Arc<dyn EventLog>) -> Ingest {
        let (state_tx, state) = watch::channel(IngestState::Starting);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let slot = opts.slot.clone();
        let task = tokio::spawn(run(opts, pool, log, state_tx, shutdown_rx));
        Ingest {
            state,
            shutdown,
            task: Some(task),
            slot,
        }
    }

    /// The live state.
    pub fn state(&self) -> watch::Receiver<IngestState> {
        self.state.clone()
    }

    /// Stops streaming (a last status update is sent) and waits.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

async fn run(
    opts: IngestOptions,
    pool: Pool,
    log: Arc<dyn EventLog>,
    state: watch::Sender<IngestState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let types = TypeCache::default();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut attempt = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match session(&opts, &pool, log.as_ref(), &types, &state, &mut shutdown).await {
            Ok(()) => break,
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "replication session ended; reconnecting");
                state.send_replace(IngestState::Reconnecting {
                    attempt,
                    error: e.to_string(),
                });
                let delay = backoff.next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
        if matches!(*state.borrow(), IngestState::Streaming) {
            backoff.reset();
            attempt = 0;
        }
    }
    state.send_replace(IngestState::Stopped);
}

async fn session(
    opts: &IngestOptions,
    pool: &Pool,
    log: &dyn EventLog,
    types: &TypeCache,
    state: &watch::Sender<IngestState>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let mut params =
        ConnectParams::from_url(&opts.url).map_err(|e| SessionError::Config(e.to_string()))?;
    params.application_name = "fluxbase-ingest".into();
    let mut client = ReplicationClient::connect(&params).await?;
    // Parts of a transaction the last session did not finish: it comes again whole.
    log.discard_parts().await?;
    ensure_slot(&mut client, opts, log).await?;
    let start = log.bounds().durable;
    // Large transactions arrive in parts and go to the log as they come: bounded memory.
    let config = StreamConfig {
        start_lsn: start,
        parts: Some(PartLimits::default()),
        ..StreamConfig::default()
    };
    let mut stream = ReplicationStream::start(
        client,
        &opts.slot,
        &PgOutputOptions::new([opts.publication.clone()]),
        config,
    )
    .await?;
    state.send_replace(IngestState::Streaming);
    tracing::info!(slot = %opts.slot, from = %start, "streaming changes into the event log");
    loop {
        let first = tokio::select! {
            ev = stream.recv() => ev?,
            _ = shutdown.changed() => {
                let _ = stream.shutdown().await;
                return Ok(());
            }
        };
        let Some(first) = first else { return Ok(()) };
        // Group commit: everything that is already waiting goes in one append.
        let mut events = vec![first];
        while events.len() < MAX_BATCH {
            match stream.recv().now_or_never() {
                Some(Ok(Some(ev))) => events.push(ev),
                Some(Err(e)) => return Err(e.into()),
                _ => break,
            }
        }
        let durable = log.bounds().durable;
        let mut batch: Vec<Txn> = Vec::new();
        let mut idle: Option<Lsn> = None;
        for ev in events {
            match ev {
                StreamEvent::Transaction(t) => {
                    if t.end_lsn <= durable || batch.last().is_some_and(|b| t.end_lsn <= b.lsn) {
                        continue;
                    }
                    types.load(pool, convert::type_oids(&t.changes)).await?;
                    let txn = convert::transaction(&t, types);
                    if !txn.changes.is_empty() || t.earlier_changes > 0 {
                        batch.push(txn);
                    }
                }
                StreamEvent::Part(p) => {
                    // Whatever came before it is complete: store it first.
                    if !batch.is_empty() {
                        let durable = log.append(std::mem::take(&mut batch)).await?;
                        stream.report_durable(durable);
                    }
                    types.load(pool, convert::type_oids(&p.changes)).await?;
                    log.append_part(convert::part(&p, types)).await?;
                }
                StreamEvent::Message(m) => {
                    if m.lsn <= durable || batch.last().is_some_and(|b| m.lsn <= b.lsn) {
                        continue;
                    }
                    batch.push(Txn {
                        lsn: m.lsn,
                        first: 0,
                        xid: 0,
                        commit_time_us: fluxbase_replication::PgTimestamp::now().unix_micros(),
                        relations: vec![],
                        changes: vec![convert::message_change(&m.prefix, &m.content)],
                    });
                }
                StreamEvent::Idle { wal_end } => idle = Some(wal_end),
            }
        }
        if !batch.is_empty() {
            let durable = log.append(batch).await?;
            // Invariant 1: only now may the slot move.
            stream.report_durable(durable);
        }
        if let Some(wal_end) = idle {
            // No transaction open and everything received is durable.
            log.mark_durable(wal_end);
        }
    }
}

/// Makes sure the slot exists and is usable; records a gap when changes were lost.
async fn ensure_slot(
    client: &mut ReplicationClient,
    opts: &IngestOptions,
    log: &dyn EventLog,
) -> Result<(), SessionError> {
    let info = client.slot_info(&opts.slot).await?;
    let lost = match &info {
        Some(i) if i.is_lost() => {
            tracing::error!(slot = %opts.slot, "replication slot was invalidated (wal_status = lost): changes were lost; recreating it and recording a gap");
            client.drop_slot(&opts.slot, true).await?;
            true
        }
        Some(_) => return Ok(()),
        None => !log.bounds().durable.is_zero(),
    };
    let created = client
        .create_slot(&opts.slot, &SlotOptions::default())
        .await?;
    tracing::info!(slot = %opts.slot, consistent_point = %created.consistent_point, "created replication slot");
    if lost {
        let head = log.bounds().durable;
        let lsn = created.consistent_point.max(Lsn(head.0 + 1));
        let gap = Txn {
            lsn,
            first: 0,
            xid: 0,
            commit_time_us: fluxbase_replication::PgTimestamp::now().unix_micros(),
            relations: vec![],
            changes: vec![Change {
                op: Op::Gap,
                rel: None,
                record: None,
                old_record: None,
                unchanged_toast: vec![],
                message: None,
            }],
        };
        log.append(vec![gap]).await?;
    }
    Ok(())
}

/// The default slot name for a database: `fluxbase_<db>`, as PostgreSQL allows.
pub fn default_slot_name(dbname: &str) -> String {
    let mut s: String = format!("fluxbase_{dbname}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(63);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid() {
        assert_eq!(default_slot_name("postgres"), "fluxbase_postgres");
        assert_eq!(default_slot_name("My-DB"), "fluxbase_my_db");
        assert_eq!(default_slot_name(&"x".repeat(100)).len(), 63);
    }
}
