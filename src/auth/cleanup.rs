//! Housekeeping of `auth.*`, as GoTrue's cleanup does it: rotated refresh
//! tokens are kept 24 hours (long enough for reuse detection to catch a
//! replay), sessions 72 hours past `not_after`, and, when configured,
//! sessions 24 hours past their lifetime (`sessions_timebox`) or inactivity
//! limit (`sessions_inactivity_timeout`); their tokens go with them
//! (`on delete cascade`). Without it every refresh would leave a row behind
//! for good.
//!
//! Runs after sign-ins and refreshes, at most once a minute per process, in
//! a task of its own so no request waits for it; each statement takes a
//! batch of at most `BATCH` rows (`limit … for update skip locked`), so
//! instances sharing a database never block each other or a sign-in, and
//! repeats while its batches come back full, up to `MAX_BATCHES` a run:
//! a busy server rotates far more than one batch of tokens a minute.
//!
//! Rotated tokens are found through their creation time (a token revoked 24
//! hours ago was created before then): no index covers `revoked` or
//! `updated_at` (migration `0210`), so revoking a token stays a HOT update.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::errors::AuthError;
use super::tokens::now_secs;
use super::{db_of, AuthConfig};
use crate::app::AppState;

/// Seconds between two runs in one process.
const EVERY_SECS: u64 = 60;

/// Most rows one statement removes.
const BATCH: u64 = 1000;

/// Most batches of one statement in one run.
const MAX_BATCHES: u32 = 10;

const REVOKED_TOKENS: &str = "delete from auth.refresh_tokens where id in (
    select id from auth.refresh_tokens
     where created_at < now() - interval '24 hours' and revoked and updated_at < now() - interval '24 hours'
     order by created_at limit 1000 for update skip locked)";

const ENDED_SESSIONS: &str = "delete from auth.sessions where id in (
    select id from auth.sessions where not_after < now() - interval '72 hours'
     limit 1000 for update skip locked)";

const TIMEBOXED_SESSIONS: &str = "delete from auth.sessions where id in (
    select id from auth.sessions where created_at < now() - make_interval(secs => $1) - interval '24 hours'
     limit 1000 for update skip locked)";

const INACTIVE_SESSIONS: &str = "delete from auth.sessions where id in (
    select id from auth.sessions
     where coalesce(refreshed_at, updated_at at time zone 'utc') < (now() at time zone 'utc') - make_interval(secs => $1) - interval '24 hours'
     limit 1000 for update skip locked)";

/// When the last run started (unix seconds).
#[derive(Debug, Default)]
pub struct Cleanup {
    last: AtomicU64,
}

impl Cleanup {
    /// Starts a run in the background unless one started less than a minute ago.
    pub fn maybe_run(&self, state: &Arc<AppState>) {
        let now = u64::try_from(now_secs()).unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        if now < last + EVERY_SECS || self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let state = Arc::clone(state);
        tokio::spawn(async move {
            if let Err(e) = run(&state).await {
                tracing::warn!(error = %e, "auth cleanup failed");
            }
        });
    }
}

/// One run: each statement, batch after batch while they come back full.
async fn run(state: &AppState) -> Result<(), AuthError> {
    let client = db_of(state).await?;
    let cfg: &AuthConfig = &state.config.auth;
    // Each statement with its seconds parameter, if it takes one.
    let mut statements = vec![(REVOKED_TOKENS, None), (ENDED_SESSIONS, None)];
    if cfg.sessions_timebox > 0 {
        statements.push((TIMEBOXED_SESSIONS, Some(cfg.sessions_timebox as f64)));
    }
    if cfg.sessions_inactivity_timeout > 0 {
        statements.push((INACTIVE_SESSIONS, Some(cfg.sessions_inactivity_timeout as f64)));
    }
    let mut removed = 0;
    for (sql, secs) in statements {
        for _ in 0..MAX_BATCHES {
            let n = match &secs {
                Some(secs) => client.execute(sql, &[secs]).await?,
                None => client.execute(sql, &[]).await?,
            };
            removed += n;
            if n < BATCH {
                break;
            }
        }
    }
    if removed > 0 {
        tracing::debug!(removed, "auth cleanup");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_takes_one_batch() {
        for sql in [REVOKED_TOKENS, ENDED_SESSIONS, TIMEBOXED_SESSIONS, INACTIVE_SESSIONS] {
            assert!(sql.contains(&format!("limit {BATCH} for update skip locked")), "{sql}");
        }
    }
}
