//! [`SessionPool`]: a pool of pipelined [`PgSession`]s (REST requests run
//! on these; everything else uses the tokio-postgres [`super::Pool`]).

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
}

impl managed::Manager for SessionManager {
    type Type = PgSession;
    type Error = ClientError;

    async fn create(&self) -> Result<PgSession, ClientError> {
        PgSession::connect(&self.params, Duration::from_secs(10)).await
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

/// Builds a pool of at most `size` sessions to `url` (opened lazily).
pub fn build(url: &str, size: u32, wait: Duration, app: &str) -> Result<SessionPool, DatabaseError> {
    let mut params = ConnectParams::from_url(url)
        .map_err(|e| DatabaseError::Connect { url: redact_url(url), message: e.to_string() })?;
    params.application_name = app.to_owned();
    managed::Pool::builder(SessionManager { params })
        .max_size(size as usize)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| DatabaseError::Pool(e.to_string()))
}
