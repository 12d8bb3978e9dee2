//! [`AppState`]: what every request handler can reach.
//!
//! The state exists from the moment the HTTP listener is bound; the database
//! part ([`Ready`]) is set once the database is up and migrated. Until then
//! API routes answer 503 and `/health` reports what is still starting.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::config::Config;
use crate::database::{Pool, SessionPools};
use crate::embedded::ClusterState;
use crate::http::error::ApiError;
use crate::http::metrics::Metrics;
use crate::keys::Keys;

/// Shared state of one server.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Signing secret and API keys.
    pub keys: Keys,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    ready: OnceLock<Ready>,
}

/// What exists once the database is up.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The connection pool.
    pub pool: Pool,
    /// Pipelined sessions REST requests run on, a pool per connection thread.
    pub sessions: SessionPools,
    /// The embedded cluster's state, when the database is embedded.
    pub cluster: Option<watch::Receiver<ClusterState>>,
    /// The event log and change streams (absent when replication is off).
    pub changes: Option<Arc<crate::changes::ChangesCore>>,
    /// Realtime state.
    pub realtime: Option<Arc<crate::realtime::Realtime>>,
}

impl AppState {
    /// State for a server whose database is not up yet.
    pub fn new(config: Arc<Config>, keys: Keys) -> AppState {
        AppState { config, keys, metrics: Arc::new(Metrics::new()), ready: OnceLock::new() }
    }

    /// Marks the database part ready. Later calls are ignored.
    pub fn set_ready(&self, ready: Ready) {
        let _ = self.ready.set(ready);
    }

    /// The database part, if up.
    pub fn ready(&self) -> Option<&Ready> {
        self.ready.get()
    }

    /// The database part, or the 503 a request gets while starting.
    pub fn require_ready(&self) -> Result<&Ready, ApiError> {
        self.ready().ok_or_else(|| ApiError::unavailable("Fluxbase is starting; try again shortly"))
    }
}
