//! Rate limits shared by every Fluxbase instance on one database: the
//! fixed windows of [`super::ratelimit`] counted in the UNLOGGED table
//! `fluxbase.auth_rate_limits` (migration `0202_auth_rate_limits.sql`), one
//! statement per check, when `[auth] rate_limit_store = "database"` (the
//! default). With `"memory"` each process counts on its own.
//!
//! Fast path: a refusal from the database tells how long the window has
//! left; until then this instance refuses the same (action, key) without a
//! round trip. Only refusals are cached, so a call is never let through on a
//! stale count. The cache is bounded like the in-memory counters.
//!
//! Concurrent checks of one (action, key) in this process go to the database
//! together: while one statement for the key is in flight, later calls
//! wait and the next statement counts all of them at once (`n`), granting
//! the first ones up to what the window has left. The count is exact (no
//! permit is reserved ahead of a call), and one client IP making many calls
//! at once costs one statement per round, not a queue of updates on one
//! row: refresh grants from one address went from about 1,700/s to 2,800/s
//! (`loadtests refresh`, 32 sessions; 3,100/s with `memory`).
//!
//! Windows long over are swept now and then by the instance that happens to
//! make the 4096th check.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use tokio::sync::oneshot;
use tokio_postgres::types::Type;

use super::errors::AuthError;
use super::ratelimit::{Action, MAX_KEYS};
use super::Auth;

/// Count `$5` calls at once (`$3` per `$4` seconds): how many are granted
/// (the first ones, up to what the window has left) and the seconds the
/// window has left. The existing row is locked first, so `granted` is the
/// difference this statement made; when another instance created the row
/// between the lock and the insert, nothing is granted (counted, refused:
/// the safe side of a race that only a key's very first calls can meet).
const TAKE_SQL: &str = "with old as (
    select r.count, r.window_start > now() - make_interval(secs => $4) as live
      from fluxbase.auth_rate_limits r where r.action = $1 and r.key = $2 for update),
  up as (
    insert into fluxbase.auth_rate_limits as r (action, key, window_start, count)
    select $1, $2, now(), least($5, $3) from (select count(*) from old) locked_first
    on conflict (action, key) do update
      set window_start = case when r.window_start <= now() - make_interval(secs => $4) then now() else r.window_start end,
          count = case when r.window_start <= now() - make_interval(secs => $4) then least($5, $3)
                       else greatest(r.count, least(r.count + $5, $3)) end
    returning r.count, r.window_start, (r.xmax = 0) as inserted)
  select case when up.inserted then up.count
              when not exists (select 1 from old) then 0
              when (select live from old) then up.count - (select count from old)
              else up.count end as granted,
         extract(epoch from (up.window_start + make_interval(secs => $4) - now()))::float8 as remaining
    from up";

const PEEK_SQL: &str = "select count from fluxbase.auth_rate_limits
  where action = $1 and key = $2 and window_start > now() - make_interval(secs => $3)";

const SWEEP_SQL: &str = "delete from fluxbase.auth_rate_limits where window_start < now() - interval '1 day'";

/// Checks between two sweeps.
const SWEEP_EVERY: u64 = 4096;

/// The refusal cache and the sweep counter.
#[derive(Debug, Default)]
pub struct SharedLimits {
    refused_until: Mutex<HashMap<(Action, String), Instant>>,
    checks: AtomicU64,
    /// Keys with a statement in flight, and the calls waiting for the next one.
    waiting: Mutex<HashMap<(Action, String), Vec<Waiter>>>,
}

/// A call waiting for its round: granted or not, or the round's error.
type Waiter = oneshot::Sender<Result<bool, String>>;

impl SharedLimits {
    fn refused(&self, action: Action, key: &str, now: Instant) -> bool {
        let Ok(map) = self.refused_until.lock() else { return false };
        map.get(&(action, key.to_owned())).is_some_and(|until| *until > now)
    }

    fn remember_refusal(&self, action: Action, key: &str, until: Instant, now: Instant) {
        let Ok(mut map) = self.refused_until.lock() else { return };
        if map.len() >= MAX_KEYS {
            map.retain(|_, u| *u > now);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        map.insert((action, key.to_owned()), until);
    }
}

impl Auth {
    /// Whether the configured store is the database.
    fn shared_store(&self) -> bool {
        self.config().rate_limit_store == "database"
    }

    /// Counts one call of `action` by `key`; `false` when it is over `limit`
    /// calls per `per`. A limit of 0 means unlimited.
    pub async fn allow(&self, action: Action, key: &str, limit: u32, per: Duration) -> Result<bool, AuthError> {
        if limit == 0 {
            return Ok(true);
        }
        if !self.shared_store() {
            return Ok(self.limits.allow(action, key, limit, per));
        }
        if self.shared.refused(action, key, Instant::now()) {
            return Ok(false);
        }
        let (tx, rx) = oneshot::channel();
        // The first call of a key (none in flight) leads: it starts the rounds.
        let lead = {
            let mut waiting = self.shared.waiting.lock().map_err(|_| AuthError::Internal("rate limits poisoned".into()))?;
            match waiting.entry((action, key.to_owned())) {
                Entry::Occupied(mut w) => {
                    w.get_mut().push(tx);
                    false
                }
                Entry::Vacant(w) => {
                    w.insert(vec![tx]);
                    true
                }
            }
        };
        if lead {
            // Its own task: a caller that hangs up must not strand the others.
            let (auth, key) = (self.clone(), key.to_owned());
            tokio::spawn(async move { auth.count_rounds(action, key, limit, per).await });
        }
        match rx.await {
            Ok(Ok(allowed)) => Ok(allowed),
            Ok(Err(e)) => Err(AuthError::Internal(e)),
            Err(_) => Err(AuthError::Internal("rate-limit round dropped".into())),
        }
    }

    /// Counts the waiting calls of (`action`, `key`) in rounds, one statement
    /// each, until none are left.
    async fn count_rounds(&self, action: Action, key: String, limit: u32, per: Duration) {
        let in_flight = UnstuckOnPanic { shared: &self.shared, id: (action, key.clone()) };
        loop {
            let round = {
                let Ok(mut waiting) = self.shared.waiting.lock() else { return };
                match waiting.get_mut(&in_flight.id) {
                    Some(w) if !w.is_empty() => std::mem::take(w),
                    _ => {
                        waiting.remove(&in_flight.id);
                        return;
                    }
                }
            };
            let n = u32::try_from(round.len()).unwrap_or(u32::MAX);
            let granted = match self.db().await {
                Ok(client) => self.take_shared(&client, action, &key, limit, per, n).await,
                Err(e) => Err(e),
            };
            match granted {
                Ok(granted) => {
                    for (i, w) in round.into_iter().enumerate() {
                        let _ = w.send(Ok((i as u64) < u64::from(granted)));
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    for w in round {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// [`Auth::allow`] counted on `db`, the caller's connection (or
    /// transaction: the count then stands or falls with it).
    pub async fn allow_on(&self, db: &impl GenericClient, action: Action, key: &str, limit: u32, per: Duration) -> Result<bool, AuthError> {
        if limit == 0 {
            return Ok(true);
        }
        if !self.shared_store() {
            return Ok(self.limits.allow(action, key, limit, per));
        }
        if self.shared.refused(action, key, Instant::now()) {
            return Ok(false);
        }
        Ok(self.take_shared(db, action, key, limit, per, 1).await? == 1)
    }

    /// Counts `n` calls on `db`; how many of them are granted.
    async fn take_shared(&self, db: &impl GenericClient, action: Action, key: &str, limit: u32, per: Duration, n: u32) -> Result<u32, AuthError> {
        let now = Instant::now();
        let stmt = db.prepare_typed_cached(TAKE_SQL, &[Type::TEXT, Type::TEXT, Type::INT4, Type::FLOAT8, Type::INT4]).await?;
        let (limit, n) = (i32::try_from(limit).unwrap_or(i32::MAX), i32::try_from(n).unwrap_or(i32::MAX));
        let row = db.query_one(&stmt, &[&action.name(), &key, &limit, &per.as_secs_f64(), &n]).await?;
        let granted: i32 = row.try_get("granted").map_err(AuthError::internal)?;
        let granted = granted.clamp(0, n);
        if granted < n {
            let remaining: Option<f64> = row.try_get("remaining").map_err(AuthError::internal)?;
            if let Some(left) = remaining.filter(|r| r.is_finite() && *r > 0.0) {
                self.shared.remember_refusal(action, key, now + Duration::from_secs_f64(left.min(per.as_secs_f64())), now);
            }
        }
        if self.shared.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Err(e) = db.execute(SWEEP_SQL, &[]).await {
                tracing::warn!(error = %e, "sweeping auth rate limits failed");
            }
        }
        Ok(u32::try_from(granted).unwrap_or(0))
    }

    /// Calls of `action` by `key` counted in the current window, without
    /// counting one (MFA lockout counts failures only).
    pub async fn counted(&self, action: Action, key: &str, per: Duration) -> Result<u32, AuthError> {
        if !self.shared_store() {
            return Ok(self.limits.peek(action, key, per));
        }
        let client = self.db().await?;
        let stmt = client.prepare_typed_cached(PEEK_SQL, &[Type::TEXT, Type::TEXT, Type::FLOAT8]).await?;
        let row = client.query_opt(&stmt, &[&action.name(), &key, &per.as_secs_f64()]).await?;
        let n: i32 = match row {
            Some(r) => r.try_get(0).map_err(AuthError::internal)?,
            None => 0,
        };
        Ok(u32::try_from(n).unwrap_or(0))
    }
}

/// Should a round panic, its key must not stay "in flight" for good (every
/// later call would wait forever): the entry goes, and its waiters get an
/// error. On a normal exit the round has removed the entry itself.
struct UnstuckOnPanic<'a> {
    shared: &'a SharedLimits,
    id: (Action, String),
}

impl Drop for UnstuckOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut waiting) = self.shared.waiting.lock() {
                waiting.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_cached_until_the_window_ends() {
        let s = SharedLimits::default();
        let now = Instant::now();
        assert!(!s.refused(Action::SignIn, "1.2.3.4", now));
        s.remember_refusal(Action::SignIn, "1.2.3.4", now + Duration::from_secs(5), now);
        assert!(s.refused(Action::SignIn, "1.2.3.4", now + Duration::from_secs(4)));
        assert!(!s.refused(Action::SignIn, "1.2.3.4", now + Duration::from_secs(5)), "the window is over");
        assert!(!s.refused(Action::Refresh, "1.2.3.4", now), "other actions are separate");
        assert!(!s.refused(Action::SignIn, "5.6.7.8", now), "other keys are separate");
    }

    #[test]
    fn the_cache_is_bounded() {
        let s = SharedLimits::default();
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            s.remember_refusal(Action::Email, &i.to_string(), now + Duration::from_secs(60), now);
        }
        assert!(s.refused_until.lock().map(|m| m.len()).unwrap_or(usize::MAX) <= MAX_KEYS);
    }
}
