//! The HTTP accept loop: binds, serves connections (HTTP/1.1 and h2c, with
//! upgrades for WebSockets) through the edge on the connection threads
//! ([`super::threads`]), and shuts down gracefully:
//! stop accepting, let in-flight requests finish within the grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::threads::ConnectionThreads;
use crate::app::AppState;

/// A listener that could not be bound, said in one line.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {reason}")]
pub struct BindError {
    /// The address.
    pub addr: String,
    /// Why, with the fix.
    pub reason: String,
}

/// Binds `host:port`.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, BindError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr).await.map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the port is already in use (is another Fluxbase running?); choose another with --port or FLUXBASE_PORT".to_owned()
            }
            std::io::ErrorKind::PermissionDenied => "permission denied; use a port above 1023".to_owned(),
            std::io::ErrorKind::AddrNotAvailable => "no such local address; check --host".to_owned(),
            _ => e.to_string(),
        };
        BindError { addr, reason }
    })
}

/// Serves until `shutdown` completes, then drains for at most `grace`.
/// Connections are accepted here and served on `threads`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    routes: super::router::Routes,
    threads: Arc<ConnectionThreads>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The socket leaves this runtime and joins its thread's.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "accepted connection lost");
                continue;
            }
        };
        let state = Arc::clone(&state);
        let routes = routes.clone();
        let watcher = graceful.watcher();
        threads.spawn(move || async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "accepted connection lost");
                    return;
                }
            };
            let svc = hyper::service::service_fn(move |req| super::edge::handle(Arc::clone(&state), routes.clone(), req, peer));
            let conn = builder().serve_connection_with_upgrades(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("HTTP server draining in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(secs = grace.as_secs(), "grace period over; closing remaining connections");
    }
}

fn builder() -> &'static auto::Builder<TokioExecutor> {
    static BUILDER: std::sync::OnceLock<auto::Builder<TokioExecutor>> = std::sync::OnceLock::new();
    BUILDER.get_or_init(|| auto::Builder::new(TokioExecutor::new()))
}
