//! `GET /health`: 200 with the state of the database, the replication
//! stream and the event log once the server can serve requests; 503 with
//! the same JSON before that or while the database is down.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use warp::reply::Response;

use crate::app::AppState;
use crate::embedded::ClusterState;

/// Answers `/health`.
pub async fn handle(state: Arc<AppState>) -> Response {
    let (db_state, db_ok) = match state.ready() {
        None => ("starting".to_owned(), false),
        Some(ready) => {
            let cluster = ready.cluster.as_ref().map(|c| c.borrow().clone());
            match cluster {
                Some(ClusterState::Running) | None => {
                    let ok = tokio::time::timeout(Duration::from_secs(2), async {
                        let conn = ready.pool.get().await.ok()?;
                        conn.simple_query("select 1").await.ok()
                    })
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                    (if ok { "up" } else { "down" }.to_owned(), ok)
                }
                Some(other) => (other.as_str().to_owned(), false),
            }
        }
    };
    let embedded = state.config.database.url.is_empty();
    let changes = state.ready().and_then(|r| r.changes.clone());
    let (replication, event_log, repl_ok) = match &changes {
        None if state.ready().is_some() => (json!({"state": "disabled"}), json!({"state": "disabled"}), true),
        None => (json!({"state": "starting"}), json!({"state": "starting"}), false),
        Some(c) => {
            let ingest = c.ingest.borrow().clone();
            let b = c.log.bounds();
            let mut r = json!({"state": ingest.as_str(), "slot": c.slot});
            if let crate::ingest::IngestState::Reconnecting { error, attempt } = &ingest {
                r["error"] = json!(error);
                r["attempt"] = json!(attempt);
            }
            let l = json!({
                "state": "ok",
                "head": b.head.map(|p| p.to_string()),
                "durable_lsn": b.durable.to_string(),
            });
            // A reconnecting stream is degraded, not down: reads and writes still work.
            (r, l, true)
        }
    };
    let db_ok = db_ok && repl_ok;
    let body = json!({
        "status": if db_ok { "ok" } else { "unavailable" },
        "version": crate::VERSION,
        "database": {"state": db_state, "embedded": embedded},
        "replication": replication,
        "event_log": event_log,
    });
    let mut res = Response::new(body.to_string().into());
    *res.status_mut() = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    res
}
