//! The HTTP surface: routes, the edge every request passes through, errors,
//! CORS, the API-key gate, health and metrics.
//!
//! - [`server`]: accept loop and graceful shutdown; [`router`]: which service's routes see a request.
//! - [`edge`]: request ids, CORS, limits, the gate, error rendering, metrics, logs.
//! - [`error`]: [`error::ApiError`] and the per-service error shapes.
//! - [`apikey`]: the gate's rules; [`caller`]: the database identity a request acts as.
//! - [`cors`], [`health`], [`metrics`].

pub mod apikey;
pub mod caller;
pub mod cors;
pub mod edge;
pub mod error;
pub mod health;
pub mod metrics;
pub mod router;
pub mod server;
pub mod threads;

use std::convert::Infallible;
use std::sync::Arc;

use http::StatusCode;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::app::AppState;
use error::ApiError;

/// Extracts the [`caller::Caller`] of a request (verifying its JWT), for
/// routes that touch user data.
pub fn with_caller(state: Arc<AppState>) -> impl Filter<Extract = (caller::Caller,), Error = Rejection> + Clone {
    warp::ext::optional::<apikey::ApiKey>()
        .and(warp::header::optional::<String>("authorization"))
        .and_then(move |key: Option<apikey::ApiKey>, auth: Option<String>| {
            let state = Arc::clone(&state);
            async move {
                let bearer = auth.as_deref().and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
                });
                caller::Caller::resolve(bearer, key.unwrap_or(apikey::ApiKey::Anon), &state.keys).map_err(warp::reject::custom)
            }
        })
}

/// Every route of the server, dispatched by service (see [`router`]).
pub fn routes(state: Arc<AppState>) -> router::Routes {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let health = warp::path!("health")
        .and(warp::get().or(warp::head()).unify())
        .and(with_state.clone())
        .then(health::handle);
    let metrics = warp::path!("metrics").and(warp::get()).and(with_state.clone()).then(|s: Arc<AppState>| async move {
        refresh_gauges(&s).await;
        let mut res = Response::new(s.metrics.encode().into());
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        res
    });
    let root = warp::path::end().and(warp::get()).map(|| {
        warp::reply::json(&serde_json::json!({"name": "fluxbase", "version": crate::VERSION})).into_response()
    });
    let own = health.or(metrics).unify().or(root).unify();
    let recovered = |f: BoxedFilter<(Response,)>| f.recover(recover).unify().boxed();
    router::Routes::new(
        vec![
            ("rest", recovered(crate::rest::routes(Arc::clone(&state)))),
            ("auth", recovered(crate::auth::routes(Arc::clone(&state)))),
            ("storage", recovered(crate::storage::routes(Arc::clone(&state)))),
            ("realtime", recovered(crate::realtime::routes(Arc::clone(&state)))),
            ("changes", recovered(crate::changes::routes(Arc::clone(&state)))),
        ],
        recovered(own.boxed()),
    )
}

async fn refresh_gauges(state: &AppState) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(ready) = state.ready() else { return };
    let m = &state.metrics;
    let s = ready.pool.status();
    m.db_pool_size.set(s.size as i64);
    m.db_pool_available.set(s.available as i64);
    m.db_pool_waiting.set(s.waiting as i64);
    let Some(c) = &ready.changes else { return };
    let durable = c.log.bounds().durable;
    m.eventlog_durable_lsn.set(i64::try_from(durable.0).unwrap_or(i64::MAX));
    m.replication_streaming.set(i64::from(matches!(*c.ingest.borrow(), crate::ingest::IngestState::Streaming)));
    m.fanout_subscribers.set(c.hub.stats.subscribers.load(Relaxed) as i64);
    m.fanout_delivered.set(c.hub.stats.delivered.load(Relaxed) as i64);
    m.fanout_cut_loose.set(c.hub.stats.cut_loose.load(Relaxed) as i64);
    let current = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let conn = ready.pool.get().await.ok()?;
        let row = conn.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.ok()?;
        row.get::<_, String>(0).parse::<crate::eventlog::Lsn>().ok()
    })
    .await
    .ok()
    .flatten();
    if let Some(cur) = current {
        m.replication_lag_bytes.set(i64::try_from(cur.0.saturating_sub(durable.0)).unwrap_or(i64::MAX));
    }
}

/// Turns warp's rejections into [`ApiError`]s.
async fn recover(r: Rejection) -> Result<Response, Infallible> {
    let err = if let Some(e) = r.find::<ApiError>() {
        e.clone()
    } else if r.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no Route matched with those values")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Request body too large")
    } else if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported content type")
    } else if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("Invalid JSON body: {e}"))
    } else if r.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", "Invalid query string")
    } else if let Some(e) = r.find::<warp::reject::MissingHeader>() {
        ApiError::new(StatusCode::BAD_REQUEST, "missing_header", e.to_string())
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_header", e.to_string())
    } else {
        tracing::warn!(rejection = ?r, "unhandled rejection");
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "Bad request")
    };
    Ok(err.into_response())
}
