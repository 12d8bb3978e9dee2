//! `/changes/v1`: change streams for servers and the SDK.
//!
//! - `GET /changes/v1/stream?tables=public.todos,public.items&from=<position>|now&until=<lsn>`:
//!   Server-Sent Events, one `change` event per visible change, its
//!   position as the SSE `id` (so `Last-Event-ID` resumes exactly after it).
//!   RLS applies with the caller's JWT; the service key sees everything.
//!   A position older than retention gets 410. With `until`, the stream
//!   ends (`event: end`) once the log has passed that LSN: read-your-writes.
//! - `GET /changes/v1/wait?lsn=<lsn>&timeout_ms=`: returns once the log has
//!   passed the LSN (a write's `X-Fluxbase-Lsn`), 408 on timeout.
//! - `GET /changes/v1/status` (service key): slot, flush LSN, log bounds, lag.

pub mod status;
pub mod stream;
pub mod tables;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::app::AppState;
use crate::eventlog::EventLog;
use crate::ingest::IngestState;
use crate::rls::PolicyEvaluator;

/// What the change-stream endpoints share.
#[derive(Debug)]
pub struct ChangesCore {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// Visibility checks.
    pub evaluator: PolicyEvaluator,
    /// The ingest loop's state.
    pub ingest: tokio::sync::watch::Receiver<IngestState>,
    /// Slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// Live fan-out of the log to subscribers.
    pub hub: Arc<crate::fanout::Hub>,
}

/// The `/changes/v1` routes.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let base = warp::path("changes").and(warp::path("v1"));
    let stream = base
        .and(warp::path("stream"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state.clone())
        .and(crate::http::with_caller(Arc::clone(&state)))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("last-event-id"))
        .and_then(stream::handle);
    let wait = base
        .and(warp::path("wait"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(status::wait);
    let status = base
        .and(warp::path("status"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state)
        .and(crate::http::with_caller(state))
        .and_then(status::handle);
    stream.or(wait).unify().or(status).unify().boxed()
}
