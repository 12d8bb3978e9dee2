//! `GET /changes/v1/stream`: the SSE change stream.
//!
//! Each connection has a task that *pulls* from the log from its own
//! position (the in-memory tail serves live readers), so a slow client only
//! delays itself and never grows memory: it is bounded by one small channel.
//! Changes are filtered by table and by RLS; the position advances past
//! hidden changes too, and only visible ones are sent with their `id`.
//!
//! Events are rendered straight into SSE text (the JSON written from the
//! stored transaction without an intermediate value tree) and sent in
//! chunks of many events, so a replay costs little more than reading the
//! log. The first read is small so the first event leaves at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use warp::reply::Response;
use warp::{Rejection, Reply};

use super::tables::TableFilter;
use super::ChangesCore;
use crate::app::AppState;
use crate::eventlog::{Change, LogError, Lsn, Op, Position, Txn};
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::rls::Verdict;

/// Chunks of rendered events buffered per connection.
const CHANNEL: usize = 8;
/// Changes read from the log per step (the first step reads fewer).
const READ_BATCH: usize = 4096;
const FIRST_READ: usize = 64;
/// A chunk is handed to the connection once it is this large.
const CHUNK_BYTES: usize = 32 * 1024;
/// A comment line is sent after this long without events.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

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
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("invalid query string: {e}"),
            )
        })?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let tables = TableFilter::parse(get("tables"))?;
        let from_text = last_event_id
            .filter(|s| !s.trim().is_empty())
            .or(get("from"));
        let from = match from_text.map(str::trim) {
            None | Some("now") | Some("") => None,
            Some("start") | Some("beginning") => Some(Position::START),
            Some(p) => Some(p.parse::<Position>().map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_position", e.to_string())
                    .with_hint("from=now, or a position from an event id")
            })?),
        };
        let until = get("until")
            .map(|u| {
                u.parse::<Lsn>()
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_lsn", e.to_string()))
            })
            .transpose()?;
        let filter = crate::realtime::filter::Filter::parse(get("filter").unwrap_or(""))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_filter", e))?;
        Ok(StreamQuery {
            tables,
            from,
            until,
            filter,
        })
    }
}

/// The route handler.
pub async fn handle(
    state: Arc<AppState>,
    caller: Caller,
    raw: String,
    last_event_id: Option<String>,
) -> Result<Response, Rejection> {
    let ready = state.require_ready().map_err(warp::reject::custom)?;
    let core = ready.changes.clone().ok_or_else(|| {
        warp::reject::custom(ApiError::unavailable(
            "change streams are disabled ([replication] enabled = false)",
        ))
    })?;
    let q = StreamQuery::parse(&raw, last_event_id.as_deref()).map_err(warp::reject::custom)?;
    let start = match q.from {
        None => core
            .log
            .bounds()
            .head
            .unwrap_or(Position::end_of(core.log.bounds().durable)),
        Some(p) => {
            // Refuse expired positions before the stream starts: 410, not an SSE error.
            if let Err(LogError::Expired { oldest, .. }) = core.log.check_position(p) {
                return Err(warp::reject::custom(
                    ApiError::new(
                        StatusCode::GONE,
                        "position_expired",
                        format!(
                            "position {p} is older than the log's retention (oldest: {oldest})"
                        ),
                    )
                    .with_hint("Resnapshot the data, then stream from=now"),
                ));
            }
            p
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL);
    tokio::spawn(pump(core, caller, q, start, tx));
    let mut res = warp::reply::stream(SseBody(rx)).into_response();
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    h.insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    Ok(res)
}

/// The response body: chunks of rendered events.
struct SseBody(mpsc::Receiver<Bytes>);

impl futures_util::Stream for SseBody {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

/// Events rendered as SSE text, handed over in chunks.
struct SseOut {
    buf: Vec<u8>,
    tx: mpsc::Sender<Bytes>,
}

impl SseOut {
    /// Starts an event; the caller writes its data, then [`SseOut::end_event`].
    fn begin_event(&mut self, id: Option<Position>, event: &str) {
        use std::io::Write;
        if let Some(id) = id {
            let _ = writeln!(self.buf, "id: {id}");
        }
        let _ = write!(self.buf, "event: {event}\ndata: ");
    }

    fn end_event(&mut self) {
        self.buf.extend_from_slice(b"\n\n");
    }

    fn event(&mut self, id: Option<Position>, event: &str, data: &Value) {
        self.begin_event(id, event);
        let _ = serde_json::to_writer(&mut self.buf, data);
        self.end_event();
    }

    /// Sends what is buffered; false once the client has gone.
    async fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return !self.tx.is_closed();
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.buf.reserve(CHUNK_BYTES + 4096);
        self.tx.send(chunk).await.is_ok()
    }

    /// Sends when a chunk's worth is buffered.
    async fn maybe_flush(&mut self) -> bool {
        self.buf.len() < CHUNK_BYTES || self.flush().await
    }
}

/// Reads the log from `pos` and sends visible changes until the client leaves.
async fn pump(
    core: Arc<ChangesCore>,
    caller: Caller,
    q: StreamQuery,
    mut pos: Position,
    tx: mpsc::Sender<Bytes>,
) {
    let mut watch = core.log.watch();
    let mut out = SseOut {
        buf: Vec::with_capacity(CHUNK_BYTES + 4096),
        tx,
    };
    let mut batch = FIRST_READ;
    loop {
        let txns = match core.log.read_after(pos, batch).await {
            Ok(t) => t,
            Err(e) => {
                let code = if matches!(e, LogError::Expired { .. }) {
                    "position_expired"
                } else {
                    "log_error"
                };
                out.event(
                    None,
                    "error",
                    &json!({"code": code, "message": e.to_string()}),
                );
                let _ = out.flush().await;
                return;
            }
        };
        batch = READ_BATCH;
        let progressed = !txns.is_empty();
        for txn in txns {
            if q.until.is_some_and(|u| txn.lsn > u) {
                end_event(&mut out, pos);
                let _ = out.flush().await;
                return;
            }
            for i in 0..txn.changes.len() {
                let p = txn.position(i);
                if p <= pos {
                    continue;
                }
                pos = p;
                if !visible_event(&core, &caller, &q, &txn, i, &mut out).await {
                    continue;
                }
                if !out.maybe_flush().await {
                    return;
                }
            }
            pos = pos.max(txn.last_position());
        }
        if progressed {
            continue;
        }
        if !out.flush().await {
            return;
        }
        if let Some(u) = q.until {
            if core.log.bounds().durable >= u {
                end_event(&mut out, pos);
                let _ = out.flush().await;
                return;
            }
        }
        tokio::select! {
            changed = watch.changed() => if changed.is_err() { return },
            () = out.tx.closed() => return,
            () = tokio::time::sleep(KEEP_ALIVE) => {
                out.buf.extend_from_slice(b":\n\n");
            }
        }
    }
}

fn end_event(out: &mut SseOut, pos: Position) {
    out.event(None, "end", &json!({"position": pos.to_string()}));
}

/// Renders change `i` into `out` if the caller may see it (false when hidden).
async fn visible_event(
    core: &ChangesCore,
    caller: &Caller,
    q: &StreamQuery,
    txn: &Txn,
    i: usize,
    out: &mut SseOut,
) -> bool {
    let Some(change) = txn.changes.get(i) else {
        return false;
    };
    let id = txn.position(i);
    match change.op {
        Op::Gap => {
            let data = json!({"position": id.to_string(), "type": "GAP", "message": "changes were lost (the replication slot was invalidated); resnapshot"});
            out.event(Some(id), "gap", &data);
            return true;
        }
        Op::Message => {
            // Logical messages carry no table, so no policy: service role only.
            if !caller.is_service_role() {
                return false;
            }
        }
        _ => {
            let Some(rel) = txn.relation(change) else {
                return false;
            };
            if !q.tables.matches(&rel.schema, &rel.table) {
                return false;
            }
            let row = match change.op {
                Op::Delete => change.old_record.as_ref(),
                _ => change.record.as_ref(),
            };
            if !q.filter.0.is_empty() && !row.is_some_and(|r| q.filter.matches(r)) {
                return false;
            }
        }
    }
    let mut left_view = false;
    if !caller.is_service_role() && change.op != Op::Message {
        let Some(rel) = txn.relation(change) else {
            return false;
        };
        match rls_view(core, caller, &rel.schema, &rel.table, id, change).await {
            View::Full => {}
            View::Hidden => return false,
            // The row moved out of the caller's view: say so without the new image.
            View::MovedOut => left_view = true,
        }
    }
    let mark = out.buf.len();
    out.begin_event(Some(id), "change");
    if !txn.write_change_json(i, left_view, &mut out.buf) {
        out.buf.truncate(mark);
        return false;
    }
    out.end_event();
    true
}

enum View {
    Full,
    MovedOut,
    Hidden,
}

async fn rls_view(
    core: &ChangesCore,
    caller: &Caller,
    schema: &str,
    table: &str,
    pos: Position,
    change: &Change,
) -> View {
    let empty = Map::new();
    let check = |row: &Map<String, Value>, old: bool| {
        let row = row.clone();
        async move {
            core.evaluator
                .verdict_at(caller, schema, table, pos, old, &row)
                .await
                == Verdict::Visible
        }
    };
    match change.op {
        Op::Insert => view_if(check(change.record.as_ref().unwrap_or(&empty), false).await),
        Op::Delete => view_if(check(change.old_record.as_ref().unwrap_or(&empty), true).await),
        Op::Update => {
            if check(change.record.as_ref().unwrap_or(&empty), false).await {
                View::Full
            } else if change.old_record.is_some()
                && check(change.old_record.as_ref().unwrap_or(&empty), true).await
            {
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
        let q = StreamQuery::parse("tables=public.todos&from=0/16B3748:2&until=0/20000", None)
            .expect("valid");
        assert_eq!(q.from, Some(Position::new(Lsn(0x16B3748), 2)));
        assert_eq!(q.until, Some(Lsn(0x20000)));
        let q = StreamQuery::parse("from=now", Some("0/10:1")).expect("valid");
        assert_eq!(
            q.from,
            Some(Position::new(Lsn(0x10), 1)),
            "Last-Event-ID wins"
        );
        assert_eq!(StreamQuery::parse("", None).expect("valid").from, None);
        assert_eq!(
            StreamQuery::parse("filter=id%3Deq.3", None)
                .expect("valid")
                .filter
                .0
                .len(),
            1
        );
        for bad in [
            "from=yesterday",
            "until=x",
            "tables=a;b",
            "tables=a.b.c",
            "filter=id%3Dmatch.x",
        ] {
            let e = StreamQuery::parse(bad, None).expect_err(bad);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
}
