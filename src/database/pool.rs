//! The shared connection pool, and single connections for admin work.
//!
//! Pool connections are opened and driven on the runtime that built the
//! pool (the main one), whichever thread asked for them: a handler on a
//! connection thread ([`crate::http::threads`]) borrows a connection
//! without that thread becoming the one that drives its socket for the
//! rest of its life.

use std::time::Duration;

use deadpool_postgres::{Connect, Manager, ManagerConfig, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::DatabaseError;
use crate::config::redact_url;

/// The pool handlers borrow connections from.
pub type Pool = deadpool_postgres::Pool;

/// Builds a pool for `url` (connections are opened lazily, on the
/// runtime this is called on).
pub fn build(url: &str, size: u32, wait: Duration, app: &str) -> Result<Pool, DatabaseError> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| DatabaseError::Connect {
        url: redact_url(url),
        message: e.to_string(),
    })?;
    cfg.application_name(app);
    cfg.connect_timeout(Duration::from_secs(10));
    let connect = OnRuntime { runtime: Handle::try_current().ok() };
    let mgr = Manager::from_connect(cfg, connect, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(mgr)
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| DatabaseError::Pool(e.to_string()))
}

/// Opens pool connections on `runtime` (the one that built the pool) and
/// drives them there. Without a runtime, or once it has shut down, a
/// connection is opened on the caller's runtime, as deadpool would.
struct OnRuntime {
    runtime: Option<Handle>,
}

impl Connect for OnRuntime {
    fn connect(&self, cfg: &tokio_postgres::Config) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let cfg = cfg.clone();
        Box::pin(async move {
            if let Some(runtime) = &self.runtime {
                // A join error means that runtime is shutting down (the
                // task cannot panic): fall through to a local connection.
                if let Ok(opened) = runtime.spawn(open(cfg.clone(), runtime.clone())).await {
                    return opened;
                }
            }
            open(cfg, Handle::current()).await
        })
    }
}

/// Opens a connection and drives it on `runtime`.
async fn open(cfg: tokio_postgres::Config, runtime: Handle) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    let (client, conn) = cfg.connect(NoTls).await?;
    Ok((client, runtime.spawn(drive(conn))))
}

/// Drives one pool connection until it closes.
async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::warn!(error = %e, "pool connection closed");
    }
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
