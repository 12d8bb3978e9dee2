//! The shared connection pool, and single connections for admin work.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::DatabaseError;
use crate::config::redact_url;

/// The pool handlers borrow connections from.
pub type Pool = deadpool_postgres::Pool;

/// Builds a pool for `url` (connections are opened lazily).
pub fn build(url: &str, size: u32, wait: Duration, app: &str) -> Result<Pool, DatabaseError> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| DatabaseError::Connect {
        url: redact_url(url),
        message: e.to_string(),
    })?;
    cfg.application_name(app);
    cfg.connect_timeout(Duration::from_secs(10));
    let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(mgr)
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| DatabaseError::Pool(e.to_string()))
}

/// Opens one connection, driving it on a background task.
pub async fn connect_one(url: &str, app: &str) -> Result<tokio_postgres::Client, DatabaseError> {
    let connect_err = |message: String| DatabaseError::Connect { url: redact_url(url), message };
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| connect_err(e.to_string()))?;
    cfg.application_name(app);
    cfg.connect_timeout(Duration::from_secs(10));
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| connect_err(crate::migrate::describe(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "admin connection closed");
        }
    });
    Ok(client)
}
