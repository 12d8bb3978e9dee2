//! [`SessionPool`]: a pool of pipelined [`PgSession`]s (REST requests run
//! on these; everything else uses the tokio-postgres [`super::Pool`]), and
//! [`SessionPools`], one such pool per HTTP connection thread.

use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use fluxbase_replication::client::{ClientError, ConnectParams};

use super::session::PgSession;
use super::DatabaseError;
use crate::config::redact_url;

/// Opens and recycles [`PgSession`]s.
#[derive(Debug)]
pub struct SessionManager {
    params: ConnectParams,
    /// Move each new session's backend to `SCHED_BATCH`
    /// ([`super::backend_policy`]); only for the embedded cluster.
    batch_backends: bool,
}

impl managed::Manager for SessionManager {
    type Type = PgSession;
    type Error = ClientError;

    async fn create(&self) -> Result<PgSession, ClientError> {
        let session = PgSession::connect(&self.params, Duration::from_secs(10)).await?;
        if let (true, Some(pid)) = (self.batch_backends, session.backend_pid()) {
            super::backend_policy::try_set_batch(pid);
        }
        Ok(session)
    }

    async fn recycle(&self, session: &mut PgSession, _: &Metrics) -> RecycleResult<ClientError> {
        if session.is_broken() {
            return Err(RecycleError::message("the session's last exchange was cut short"));
        }
        Ok(())
    }
}

/// The pool.
pub type SessionPool = managed::Pool<SessionManager>;

/// How a pool's sessions are opened.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions<'a> {
    /// Most sessions (of all the threads' pools together).
    pub size: u32,
    /// Longest wait for a free session.
    pub wait: Duration,
    /// `application_name`.
    pub app: &'a str,
    /// Move each session's backend to `SCHED_BATCH`
    /// ([`super::backend_policy`]): only where the backends are processes
    /// of this machine, the embedded cluster.
    pub batch_backends: bool,
}

/// One thread's pool: at most `size` sessions to `url` (opened lazily).
fn build(url: &str, size: u32, opts: &SessionOptions<'_>) -> Result<SessionPool, DatabaseError> {
    let mut params = ConnectParams::from_url(url)
        .map_err(|e| DatabaseError::Connect { url: redact_url(url), message: e.to_string() })?;
    params.application_name = opts.app.to_owned();
    managed::Pool::builder(SessionManager { params, batch_backends: opts.batch_backends })
        .max_size(size as usize)
        // The most recently returned session first: a pool grown by a burst
        // keeps reusing its warm backends instead of cycling through all of
        // them (measured at 16 in flight after a burst of 64: PostgreSQL's
        // CPU per GET 63-72 µs against 70-84 µs first in, first out).
        .queue_mode(managed::QueueMode::Lifo)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(opts.wait))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| DatabaseError::Pool(e.to_string()))
}

/// One [`SessionPool`] per HTTP connection thread
/// ([`crate::http::threads`]). A session's socket is driven by the runtime
/// it was opened on, so a request takes sessions from its own thread's pool
/// and never waits on another thread to read its answer.
#[derive(Debug, Clone)]
pub struct SessionPools(Arc<[SessionPool]>);

impl SessionPools {
    /// `threads` pools sharing at most `opts.size` sessions (at least one each).
    pub fn build(url: &str, opts: &SessionOptions<'_>, threads: usize) -> Result<SessionPools, DatabaseError> {
        let threads = threads.max(1);
        let each = opts.size.div_ceil(u32::try_from(threads).unwrap_or(u32::MAX)).max(1);
        let pools = (0..threads).map(|_| build(url, each, opts)).collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPools(pools.into()))
    }

    /// The pool of the connection thread this runs on (the first pool
    /// elsewhere).
    pub fn current(&self) -> &SessionPool {
        let i = crate::http::threads::current().unwrap_or(0);
        &self.0[i % self.0.len()]
    }

    /// Closes every pool.
    pub fn close(&self) {
        self.0.iter().for_each(SessionPool::close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sessions_are_shared_out_among_the_threads() {
        let url = "postgres://u@127.0.0.1:1/db";
        let opts = |size| SessionOptions { size, wait: Duration::from_secs(1), app: "t", batch_backends: false };
        let pools = SessionPools::build(url, &opts(32), 3).expect("pools");
        assert_eq!(pools.0.len(), 3);
        assert!(pools.0.iter().all(|p| p.status().max_size == 11));
        let one = SessionPools::build(url, &opts(2), 4).expect("pools");
        assert!(one.0.iter().all(|p| p.status().max_size == 1));
        assert!(std::ptr::eq(pools.current(), &pools.0[0]));
    }
}
