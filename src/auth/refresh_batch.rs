//! Refresh-token grants coalesced into batches: the grants that arrive
//! while a batch is in flight go together in the next one, one statement
//! (`fluxbase.auth_refresh_many()`, migrations `0205`, `0206`) and one
//! transaction for all of them.
//!
//! Why: much of a lone grant's database cost is the transaction around it
//! (snapshot, commit and its WAL flush, a backend woken per grant), not its
//! work. pgbench on two cores runs about 2,400 grants/s one per transaction
//! and 5,300/s sixteen per transaction. Nothing waits for a timer: an idle
//! server runs a lone grant at once, and batches only form while the
//! database is busy.
//!
//! Invariants:
//! - each grant gets exactly what `fluxbase.auth_refresh()` alone would give
//!   it after the grants before it in its batch (the common grants, with
//!   disjoint sessions, rotated together; the others by that function, once
//!   per grant, in order), and no answer is sent before the batch has
//!   committed;
//! - a batch that fails as a whole (a deadlock, a lost connection) committed
//!   nothing, so its grants are run again each on its own: one bad grant
//!   never fails the others;
//! - grants in a batch are ordered by token, so two batches lock token rows
//!   in the same order.

use std::sync::{Arc, OnceLock, Weak};

use deadpool_postgres::GenericClient;
use tokio::sync::oneshot;
use tokio_postgres::types::Type;

use super::errors::AuthError;
use super::tokens::Rotation;
use super::{db_of, AuthConfig};
use crate::app::AppState;

/// Most grants in one batch.
const MAX_BATCH: usize = 64;

/// Batches in flight at once (each on its own connection): two, so the
/// database works on one batch while the next one's grants gather.
const WORKERS: usize = 2;

const MANY_SQL: &str = "select ord, outcome, session_id, user_id, aal, amr, refresh_token, user_json
   from fluxbase.auth_refresh_many($1, $2, $3, $4, $5, $6)";

const ONE_SQL: &str = "select outcome, session_id, user_id, aal, amr, refresh_token, user_json
   from fluxbase.auth_refresh($1, $2, $3, $4, $5, $6)";

/// One grant waiting for its batch.
struct Grant {
    token: String,
    next: String,
    reply: oneshot::Sender<Result<Rotation, AuthError>>,
}

/// The queue of grants and its workers, started on first use.
#[derive(Debug, Default)]
pub struct RefreshBatcher {
    queue: OnceLock<flume::Sender<Grant>>,
}

impl RefreshBatcher {
    /// Rotates `token` (to `next` when rotation is on) in the next batch.
    pub async fn rotate(&self, state: &Arc<AppState>, token: String, next: String) -> Result<Rotation, AuthError> {
        let queue = self.queue.get_or_init(|| start(state));
        let (reply, answer) = oneshot::channel();
        queue
            .send_async(Grant { token, next, reply })
            .await
            .map_err(|_| AuthError::Internal("the refresh queue is closed".into()))?;
        answer.await.map_err(|_| AuthError::Internal("the refresh batch was dropped".into()))?
    }
}

/// Starts the workers. They hold the server weakly and stop when the
/// batcher (the queue's only sender) is dropped.
fn start(state: &Arc<AppState>) -> flume::Sender<Grant> {
    let (tx, rx) = flume::unbounded();
    for _ in 0..WORKERS {
        tokio::spawn(work(rx.clone(), Arc::downgrade(state)));
    }
    tx
}

async fn work(queue: flume::Receiver<Grant>, state: Weak<AppState>) {
    while let Ok(first) = queue.recv_async().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(g) => batch.push(g),
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else { return };
        run(&state, batch).await;
    }
}

/// Runs one batch and answers every grant in it.
async fn run(state: &AppState, mut batch: Vec<Grant>) {
    let cfg = &state.config.auth;
    if batch.len() == 1 {
        if let Some(g) = batch.pop() {
            run_alone(state, cfg, g).await;
        }
        return;
    }
    batch.sort_by(|a, b| a.token.cmp(&b.token));
    match rotate_many(state, cfg, &batch).await {
        Ok(mut answers) => {
            for (g, answer) in batch.into_iter().zip(answers.iter_mut()) {
                let result = answer.take().ok_or_else(|| AuthError::Internal("no answer for a refresh grant".into()));
                let _ = g.reply.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, grants = batch.len(), "refresh batch failed; running its grants one by one");
            for g in batch {
                run_alone(state, cfg, g).await;
            }
        }
    }
}

/// One grant in a transaction of its own, answered.
async fn run_alone(state: &AppState, cfg: &AuthConfig, g: Grant) {
    let result = match db_of(state).await {
        Ok(db) => rotate_one(&db, cfg, &g.token, &g.next).await,
        Err(e) => Err(e),
    };
    let _ = g.reply.send(result);
}

/// The batch in one statement; answers in the batch's order.
async fn rotate_many(state: &AppState, cfg: &AuthConfig, batch: &[Grant]) -> Result<Vec<Option<Rotation>>, AuthError> {
    let db = db_of(state).await?;
    let stmt = db
        .prepare_typed_cached(
            MANY_SQL,
            &[Type::TEXT_ARRAY, Type::TEXT_ARRAY, Type::BOOL, Type::FLOAT8, Type::FLOAT8, Type::FLOAT8],
        )
        .await?;
    let tokens: Vec<&str> = batch.iter().map(|g| g.token.as_str()).collect();
    let nexts: Vec<&str> = batch.iter().map(|g| g.next.as_str()).collect();
    let (reuse, timebox, inactivity) = limits(cfg);
    let rows = db.query(&stmt, &[&tokens, &nexts, &cfg.refresh_token_rotation, &reuse, &timebox, &inactivity]).await?;
    let mut answers: Vec<Option<Rotation>> = batch.iter().map(|_| None).collect();
    for row in &rows {
        let ord: i32 = row.try_get("ord").map_err(AuthError::internal)?;
        let slot = usize::try_from(ord).ok().and_then(|o| o.checked_sub(1)).and_then(|i| answers.get_mut(i));
        if let Some(slot) = slot {
            *slot = Some(Rotation::from_row(row)?);
        }
    }
    Ok(answers)
}

/// One grant, `fluxbase.auth_refresh()` on `db`: as its own transaction,
/// or inside the caller's (the access-token hook's).
pub async fn rotate_one(db: &impl GenericClient, cfg: &AuthConfig, token: &str, next: &str) -> Result<Rotation, AuthError> {
    let stmt = db
        .prepare_typed_cached(ONE_SQL, &[Type::TEXT, Type::TEXT, Type::BOOL, Type::FLOAT8, Type::FLOAT8, Type::FLOAT8])
        .await?;
    let (reuse, timebox, inactivity) = limits(cfg);
    let row = db.query_one(&stmt, &[&token, &next, &cfg.refresh_token_rotation, &reuse, &timebox, &inactivity]).await?;
    Rotation::from_row(&row)
}

/// The reuse interval, session lifetime and inactivity limit, in seconds.
fn limits(cfg: &AuthConfig) -> (f64, f64, f64) {
    (cfg.refresh_token_reuse_interval as f64, cfg.sessions_timebox as f64, cfg.sessions_inactivity_timeout as f64)
}
