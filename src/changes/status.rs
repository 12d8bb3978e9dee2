//! `GET /changes/v1/status` and `GET /changes/v1/wait`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use warp::reply::Response;
use warp::{Rejection, Reply};

use super::ChangesCore;
use crate::app::AppState;
use crate::eventlog::Lsn;
use crate::http::caller::Caller;
use crate::http::error::ApiError;

/// Longest `wait` allowed.
const MAX_WAIT: Duration = Duration::from_secs(60);

fn core(state: &AppState) -> Result<Arc<ChangesCore>, Rejection> {
    state
        .require_ready()
        .map_err(warp::reject::custom)?
        .changes
        .clone()
        .ok_or_else(|| warp::reject::custom(ApiError::unavailable("change streams are disabled ([replication] enabled = false)")))
}

/// Replication and log status (service key only).
pub async fn handle(state: Arc<AppState>, caller: Caller) -> Result<Response, Rejection> {
    if !caller.is_service_role() {
        return Err(warp::reject::custom(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "status needs the service_role key")));
    }
    let core = core(&state)?;
    let bounds = core.log.bounds();
    let ready = state.require_ready().map_err(warp::reject::custom)?;
    let client = ready.pool.get().await.map_err(|e| warp::reject::custom(ApiError::internal(&e)))?;
    let row = client
        .query_opt(
            "select confirmed_flush_lsn::text, restart_lsn::text, wal_status, active, pg_current_wal_lsn()::text,
                    (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
               from pg_replication_slots where slot_name = $1",
            &[&core.slot],
        )
        .await
        .map_err(|e| warp::reject::custom(ApiError::internal(&e)))?;
    let current: Option<String> = match &row {
        Some(r) => r.get(4),
        None => client.query_one("select pg_current_wal_lsn()::text", &[]).await.ok().map(|r| r.get(0)),
    };
    let current_lsn = current.as_deref().and_then(|s| s.parse::<Lsn>().ok()).unwrap_or(Lsn::ZERO);
    let lag_bytes = current_lsn.0.saturating_sub(bounds.durable.0);
    let refusals = crate::ingest::publication::refusals(&client).await.unwrap_or_default();
    let ingest = core.ingest.borrow().clone();
    let error = match &ingest {
        crate::ingest::IngestState::Reconnecting { error, .. } => Some(error.clone()),
        _ => None,
    };
    let body = json!({
        "state": ingest.as_str(),
        "error": error,
        "slot": {
            "name": core.slot,
            "confirmed_flush_lsn": row.as_ref().and_then(|r| r.get::<_, Option<String>>(0)),
            "restart_lsn": row.as_ref().and_then(|r| r.get::<_, Option<String>>(1)),
            "wal_status": row.as_ref().and_then(|r| r.get::<_, Option<String>>(2)),
            "active": row.as_ref().map(|r| r.get::<_, bool>(3)),
        },
        "publication": core.publication,
        "refused_tables": refusals,
        "log": {
            "head": bounds.head.map(|p| p.to_string()),
            "oldest": bounds.oldest.map(|p| p.to_string()),
            "durable_lsn": bounds.durable.to_string(),
        },
        "server_wal_lsn": current,
        "lag_bytes": lag_bytes,
    });
    Ok(warp::reply::json(&body).into_response())
}

/// Waits until the log has passed `lsn` (read-your-writes).
pub async fn wait(state: Arc<AppState>, raw: String) -> Result<Response, Rejection> {
    let core = core(&state)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&raw).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let lsn: Lsn = get("lsn")
        .ok_or_else(|| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_lsn", "lsn is required")))?
        .parse()
        .map_err(|e: fluxbase_replication::lsn::ParseLsnError| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_lsn", e.to_string())))?;
    let timeout = get("timeout_ms")
        .map(|t| t.parse::<u64>().map(Duration::from_millis))
        .transpose()
        .map_err(|_| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_timeout", "timeout_ms must be a number of milliseconds")))?
        .unwrap_or(Duration::from_secs(10))
        .min(MAX_WAIT);
    let mut watch = core.log.watch();
    let reached = tokio::time::timeout(timeout, async {
        loop {
            if watch.borrow_and_update().durable >= lsn {
                return true;
            }
            if watch.changed().await.is_err() {
                return false;
            }
        }
    })
    .await
    .unwrap_or(false);
    if reached {
        Ok(warp::reply::json(&json!({"lsn": core.log.bounds().durable.to_string()})).into_response())
    } else {
        Err(warp::reject::custom(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the change log did not reach {lsn} within {} ms", timeout.as_millis()),
        )))
    }
}
