//! `GET /changes/v1/stream`: the SSE change stream.
//!
//! Each connection has a task that *pulls* from the log from its own
//! position (the in-memory tail serves live readers), so a slow client only
//! delays itself and never grows memory: it is bounded by one small channel.
//! Changes are filtered by table and by RLS; the position advances past
//! hidden changes too, and only visible ones are sent with their `id`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use warp::reply::Response;
use warp::sse::Event;
use warp::{Rejection, Reply};

use super::tables::TableFilter;
use super::ChangesCore;
use crate::app::AppState;
use crate::eventlog::{Change, LogError, Lsn, Op, Position, Txn};
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::rls::Verdict;

/// Events buffered per connection.
const CHANNEL: usize = 256;
/// Transactions read from the log per step.
const READ_BATCH: usize = 64;

/// The parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamQuery {
    /// Which tables.
    pub tables: TableFilter,
    /// Start after this position; `None` means now.
    pub from: Option<Position>,
    /// End once the log has passed this LSN.
    pub until: Option<Lsn>,
    /// Row filter (`column=op.value,...`, as realtime's), on the new row (old row for deletes).
    pub filter: crate::realtime::filter::Filter,
}

impl StreamQuery {
    /// Parses the query string and `Last-Event-ID` (which wins over `from`).
    pub fn parse(raw: &str, last_event_id: Option<&str>) -> Result<StreamQuery, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", format!("invalid query string: {e}")))?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let tables = TableFilter::parse(get("tables"))?;
        let from_text = last_event_id.filter(|s| !s.trim().is_empty()).or(get("from"));
        let from = match from_text.map(str::trim) {
            None | Some("now") | Some("") => None,
            Some("start") | Some("beginning") => Some(Position::START),
            Some(p) => Some(p.parse::<Position>().map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_position", e.to_string()).with_hint("from=now, or a position from an event id")
            })?),
        };
        let until = get("until")
            .map(|u| u.parse::<Lsn>().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_lsn", e.to_string())))
            .transpose()?;
        let filter = crate::realtime::filter::Filter::parse(get("filter").unwrap_or(""))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_filter", e))?;
        Ok(StreamQuery { tables, from, until, filter })
    }
}

/// The route handler.
pub async fn handle(state: Arc<AppState>, caller: Caller, raw: String, last_event_id: Option<String>) -> Result<Response, Rejection> {
    let ready = state.require_ready().map_err(warp::reject::custom)?;
    let core = ready
        .changes
        .clone()
        .ok_or_else(|| warp::reject::custom(ApiError::unavailable("change streams are disabled ([replication] enabled = false)")))?;
    let q = StreamQuery::parse(&raw, last_event_id.as_deref()).map_err(warp::reject::custom)?;
    let start = match q.from {
        None => core.log.bounds().head.unwrap_or(Position::end_of(core.log.bounds().durable)),
        Some(p) => {
            // Refuse expired positions before the stream starts: 410, not an SSE error.
            match core.log.read_after(p, 1).await {
                Err(LogError::Expired { oldest, .. }) => {
                    return Err(warp::reject::custom(
                        ApiError::new(StatusCode::GONE, "position_expired", format!("position {p} is older than the log's retention (oldest: {oldest})"))
                            .with_hint("Resnapshot the data, then stream from=now"),
                    ))
                }
                Err(e) => return Err(warp::reject::custom(ApiError::internal(&e))),
                Ok(_) => p,
            }
        }
    };
    let (tx, rx) = mpsc::channel::<Event>(CHANNEL);
    tokio::spawn(pump(core, caller, q, start, tx));
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let reply = warp::sse::reply(warp::sse::keep_alive().interval(Duration::from_secs(15)).stream(events));
    let mut res = reply.into_response();
    res.headers_mut().insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    Ok(res)
}

/// Reads the log from `pos` and sends visible changes until the client leaves.
async fn pump(core: Arc<ChangesCore>, caller: Caller, q: StreamQuery, mut pos: Position, tx: mpsc::Sender<Event>) {
    let mut watch = core.log.watch();
    loop {
        let txns = match core.log.read_after(pos, READ_BATCH).await {
            Ok(t) => t,
            Err(e) => {
                let code = if matches!(e, LogError::Expired { .. }) { "position_expired" } else { "log_error" };
                let _ = tx.send(Event::default().event("error").data(json!({"code": code, "message": e.to_string()}).to_string())).await;
                return;
            }
        };
        let progressed = !txns.is_empty();
        for txn in txns {
            if q.until.is_some_and(|u| txn.lsn > u) {
                let _ = tx.send(end_event(pos)).await;
                return;
            }
            for i in 0..txn.changes.len() {
                let p = txn.position(i);
                if p <= pos {
                    continue;
                }
                pos = p;
                let Some(event) = visible_event(&core, &caller, &q, &txn, i).await else { continue };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            pos = pos.max(txn.position(txn.changes.len().saturating_sub(1)));
        }
        if progressed {
            continue;
        }
        if let Some(u) = q.until {
            if core.log.bounds().durable >= u {
                let _ = tx.send(end_event(pos)).await;
                return;
            }
        }
        tokio::select! {
            changed = watch.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
        }
    }
}

fn end_event(pos: Position) -> Event {
    Event::default().event("end").data(json!({"position": pos.to_string()}).to_string())
}

/// The SSE event for change `i`, if the caller may see it.
async fn visible_event(core: &ChangesCore, caller: &Caller, q: &StreamQuery, txn: &Txn, i: usize) -> Option<Event> {
    let change = txn.changes.get(i)?;
    let id = txn.position(i).to_string();
    match change.op {
        Op::Gap => {
            let data = json!({"position": id, "type": "GAP", "message": "changes were lost (the replication slot was invalidated); resnapshot"});
            return Some(Event::default().id(id).event("gap").data(data.to_string()));
        }
        Op::Message => {
            // Logical messages carry no table, so no policy: service role only.
            if !caller.is_service_role() {
                return None;
            }
        }
        _ => {
            let rel = txn.relation(change)?;
            if !q.tables.matches(&rel.schema, &rel.table) {
                return None;
            }
            let row = match change.op {
                Op::Delete => change.old_record.as_ref(),
                _ => change.record.as_ref(),
            };
            if !q.filter.0.is_empty() && !row.is_some_and(|r| q.filter.matches(r)) {
                return None;
            }
        }
    }
    let mut data = txn.change_json(i)?;
    if !caller.is_service_role() && change.op != Op::Message {
        let rel = txn.relation(change)?;
        match rls_view(core, caller, &rel.schema, &rel.table, txn.position(i), change).await {
            View::Full => {}
            View::Hidden => return None,
            View::MovedOut => {
                // The row moved out of the caller's view: say so without the new image.
                if let Value::Object(o) = &mut data {
                    o.remove("record");
                    o.insert("left_view".into(), Value::Bool(true));
                }
            }
        }
    }
    Some(Event::default().id(id).event("change").data(data.to_string()))
}

enum View {
    Full,
    MovedOut,
    Hidden,
}

async fn rls_view(core: &ChangesCore, caller: &Caller, schema: &str, table: &str, pos: Position, change: &Change) -> View {
    let empty = Map::new();
    let check = |row: &Map<String, Value>, old: bool| {
        let row = row.clone();
        async move { core.evaluator.verdict_at(caller, schema, table, pos, old, &row).await == Verdict::Visible }
    };
    match change.op {
        Op::Insert => view_if(check(change.record.as_ref().unwrap_or(&empty), false).await),
        Op::Delete => view_if(check(change.old_record.as_ref().unwrap_or(&empty), true).await),
        Op::Update => {
            if check(change.record.as_ref().unwrap_or(&empty), false).await {
                View::Full
            } else if change.old_record.is_some() && check(change.old_record.as_ref().unwrap_or(&empty), true).await {
                View::MovedOut
            } else {
                View::Hidden
            }
        }
        // No row: visible to whoever may read the table at all.
        Op::Truncate => view_if(check(&empty, false).await),
        Op::Message | Op::Gap => View::Full,
    }
}

fn view_if(visible: bool) -> View {
    if visible {
        View::Full
    } else {
        View::Hidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = StreamQuery::parse("tables=public.todos&from=0/16B3748:2&until=0/20000", None).expect("valid");
        assert_eq!(q.from, Some(Position::new(Lsn(0x16B3748), 2)));
        assert_eq!(q.until, Some(Lsn(0x20000)));
        let q = StreamQuery::parse("from=now", Some("0/10:1")).expect("valid");
        assert_eq!(q.from, Some(Position::new(Lsn(0x10), 1)), "Last-Event-ID wins");
        assert_eq!(StreamQuery::parse("", None).expect("valid").from, None);
        assert_eq!(StreamQuery::parse("filter=id%3Deq.3", None).expect("valid").filter.0.len(), 1);
        for bad in ["from=yesterday", "until=x", "tables=a;b", "tables=a.b.c", "filter=id%3Dmatch.x"] {
            let e = StreamQuery::parse(bad, None).expect_err(bad);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
}
