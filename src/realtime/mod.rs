//! `/realtime/v1`: Supabase Realtime's Phoenix protocol, as realtime-js speaks it.
//!
//! - [`frame`]: vsn 1.0.0 object frames, vsn 2.0.0 array and binary frames.
//! - [`socket`]: one connection: heartbeats, joins, leaves, broadcast,
//!   presence, `access_token` refresh, a bounded outgoing queue.
//! - [`pg_changes`]: `postgres_changes` bindings, one change judged for
//!   them (filters, RLS, the encoded frame), resume (`config.since`).
//! - [`groups`]: live fan-out by group of identical bindings: one hub
//!   subscription, one RLS verdict per audience, one shared frame per change.
//! - [`filter`]: the `column=op.value` filters.
//! - [`topics`]: channel membership and presence.
//! - [`outbox`]: a socket's bounded queue; a client that falls behind is
//!   told where to resume and disconnected.
//! - [`limits`]: connections per user and per IP, joins per second.
//! - [`upgrade`]: the WebSocket handshake, with small per-socket buffers.
//! - [`config`]: the `[realtime]` settings.
//! - `POST /realtime/v1/api/broadcast`: broadcast over HTTP.
//!
//! Resume: a join may carry `config.since` (a position from a previous
//! change's `data.position`); the server replays from the event log what
//! that channel's bindings match after it, then continues live, with no gap
//! and no duplicate at the seam.

pub mod config;
pub mod filter;
pub mod frame;
pub mod groups;
pub mod limits;
pub mod outbox;
pub mod pg_changes;
pub mod socket;
pub mod topics;
pub mod upgrade;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::app::AppState;
use crate::changes::ChangesCore;
use crate::database::Pool;
use crate::http::apikey::ApiKey;
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::keys::Keys;

/// Live counters for `/metrics` and `/realtime/v1/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open sockets.
    pub connections: AtomicU64,
    /// Joined channels.
    pub channels: AtomicU64,
    /// Sockets cut loose for falling behind.
    pub slow_disconnects: Arc<AtomicU64>,
    /// Sockets or joins refused for `max_connections_per_user`/`_per_ip`.
    pub connections_refused: AtomicU64,
    /// Joins refused for `max_joins_per_second`.
    pub joins_rate_limited: AtomicU64,
}

/// Shared realtime state.
pub struct Realtime {
    /// Counters.
    pub stats: Stats,
    /// Anonymous sockets per client IP.
    pub per_ip: Arc<limits::Counter<std::net::IpAddr>>,
    /// Sockets per user (JWT `sub`).
    pub per_user: Arc<limits::Counter<String>>,
    /// Membership and presence.
    pub topics: topics::Topics,
    /// `postgres_changes` fan-out groups.
    pub groups: groups::Groups,
    /// For verifying access tokens.
    pub keys: Keys,
    /// The change pipeline (absent when replication is off).
    pub changes: Option<Arc<ChangesCore>>,
    /// For private-channel checks.
    pub pool: Pool,
    /// Limits.
    pub config: config::RealtimeConfig,
    conns: AtomicU64,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("conns", &self.conns).finish()
    }
}

impl Realtime {
    /// New state.
    pub fn new(keys: Keys, changes: Option<Arc<ChangesCore>>, pool: Pool, config: config::RealtimeConfig) -> Realtime {
        Realtime {
            topics: topics::Topics::default(),
            groups: groups::Groups::default(),
            keys,
            changes,
            pool,
            per_ip: Arc::new(limits::Counter::new(config.max_connections_per_ip)),
            per_user: Arc::new(limits::Counter::new(config.max_connections_per_user)),
            config,
            conns: AtomicU64::new(1),
            stats: Stats::default(),
        }
    }

    fn next_conn(&self) -> u64 {
        self.conns.fetch_add(1, Ordering::Relaxed)
    }

    /// Private channel read check: an RLS SELECT policy on `realtime.messages` for the topic.
    pub async fn can_read(&self, caller: &Caller, topic: &str) -> bool {
        self.private_check(caller, topic, false).await
    }

    /// Private channel write check: an RLS INSERT policy on `realtime.messages`.
    pub async fn can_write(&self, caller: &Caller, topic: &str) -> bool {
        self.private_check(caller, topic, true).await
    }

    async fn private_check(&self, caller: &Caller, topic: &str, write: bool) -> bool {
        if caller.is_service_role() {
            return true;
        }
        let name = topic.strip_prefix("realtime:").unwrap_or(topic);
        let result: Result<bool, tokio_postgres::Error> = async {
            let Ok(mut client) = self.pool.get().await else { return Ok(false) };
            let tx = client.transaction().await?;
            let (role, claims) = caller.apply_params();
            let id: uuid::Uuid = tx
                .query_one(
                    "insert into realtime.messages (topic, extension, private, event) values ($1, 'broadcast', true, 'fluxbase_check') returning id",
                    &[&name],
                )
                .await?
                .get(0);
            tx.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('realtime.topic', $3, true)",
                &[&role, &claims, &name],
            )
            .await?;
            let ok = if write {
                tx.batch_execute("savepoint w").await?;
                let r = tx
                    .execute("insert into realtime.messages (topic, extension, private, event) values ($1, 'broadcast', true, 'fluxbase_check')", &[&name])
                    .await
                    .is_ok();
                r
            } else {
                tx.query_opt("select 1 from realtime.messages where id = $1", &[&id]).await?.is_some()
            };
            let _ = tx.rollback().await;
            Ok(ok)
        }
        .await;
        result.unwrap_or(false)
    }
}

/// The `/realtime/v1` routes.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let ws = warp::path!("realtime" / "v1" / "websocket")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<hyper::upgrade::OnUpgrade>())
        .and(with_state.clone())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::ext::optional::<ApiKey>())
        .and(warp::ext::optional::<crate::http::edge::ClientAddr>())
        .and_then(
            |headers: http::HeaderMap,
             on_upgrade: Option<hyper::upgrade::OnUpgrade>,
             state: Arc<AppState>,
             raw: String,
             key: Option<ApiKey>,
             peer: Option<crate::http::edge::ClientAddr>| async move {
                let bad = |m: &str| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m.to_owned()));
                let accept = upgrade::accept_key(&headers).map_err(|e| bad(e.0))?;
                let on_upgrade = on_upgrade.ok_or_else(|| bad("this connection cannot be upgraded"))?;
                let rt = realtime(&state)?;
                let ip = peer.map(|p| p.0.ip()).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                let Some(slot) = rt.per_ip.admit(ip) else {
                    rt.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
                    // Supabase answers the upgrade with 429 {"error": "Too many connected users"}.
                    let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_connections", "Too many connected users")
                        .with_extra("error", Value::String("Too many connected users".into()));
                    return Err(warp::reject::custom(e));
                };
                let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&raw).unwrap_or_default();
                let vsn = pairs.iter().find(|(k, _)| k == "vsn").map(|(_, v)| v.as_str());
                let vsn = frame::Vsn::parse(vsn)
                    .ok_or_else(|| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_vsn", "unsupported vsn: use 1.0.0 or 2.0.0")))?;
                let key = key.unwrap_or(ApiKey::Anon);
                let config = upgrade::socket_config(rt.config.max_message_bytes as usize);
                tokio::spawn(async move {
                    match upgrade::take_over(on_upgrade, config).await {
                        Ok(socket) => socket::serve(rt, socket, vsn, key, limits::Charge::Ip(slot)).await,
                        Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
                    }
                });
                Ok::<_, Rejection>(upgrade::switching_protocols(&accept))
            },
        );
    let stats = warp::path!("realtime" / "v1" / "stats")
        .and(warp::get())
        .and(with_state.clone())
        .and(crate::http::with_caller(Arc::clone(&state)))
        .and_then(stats);
    let broadcast = warp::path!("realtime" / "v1" / "api" / "broadcast")
        .and(warp::post())
        .and(with_state.clone())
        .and(crate::http::with_caller(Arc::clone(&state)))
        .and(warp::body::json::<Value>())
        .and_then(api_broadcast);
    let send = warp::path!("realtime" / "v1" / "api" / "broadcast" / String / "events" / String)
        .and(warp::post())
        .and(with_state)
        .and(crate::http::with_caller(state))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .and_then(api_send);
    ws.or(broadcast).unify().or(send).unify().or(stats).unify().boxed()
}

fn realtime(state: &AppState) -> Result<Arc<Realtime>, Rejection> {
    state.require_ready().map_err(warp::reject::custom)?.realtime.clone().ok_or_else(|| warp::reject::custom(ApiError::unavailable("realtime is starting")))
}

/// `GET /realtime/v1/stats` (service key): connections, channels, fan-out figures.
async fn stats(state: Arc<AppState>, caller: Caller) -> Result<Response, Rejection> {
    use std::sync::atomic::Ordering::Relaxed;
    if !caller.is_service_role() {
        return Err(warp::reject::custom(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "stats need the service_role key")));
    }
    let rt = realtime(&state)?;
    let hub = rt.changes.as_ref().map(|c| {
        json!({
            "subscribers": c.hub.stats.subscribers.load(Relaxed),
            "delivered": c.hub.stats.delivered.load(Relaxed),
            "cut_loose": c.hub.stats.cut_loose.load(Relaxed),
            "verdict_cache": {"hits": c.evaluator.hits.load(Relaxed), "misses": c.evaluator.misses.load(Relaxed)},
        })
    });
    let body = json!({
        "connections": rt.stats.connections.load(Relaxed),
        "channels": rt.stats.channels.load(Relaxed),
        "users": rt.per_user.keys(),
        "slow_disconnects": rt.stats.slow_disconnects.load(Relaxed),
        "connections_refused": rt.stats.connections_refused.load(Relaxed),
        "joins_rate_limited": rt.stats.joins_rate_limited.load(Relaxed),
        "groups": rt.groups.len(),
        "fanout": hub,
    });
    Ok(warp::reply::json(&body).into_response())
}

/// `POST /realtime/v1/api/broadcast/<topic>/events/<event>[?private=true]`
/// (realtime-js `httpSend`): the body is the payload, JSON, or raw bytes with
/// `Content-Type: application/octet-stream`, which reach vsn 2 sockets as a
/// binary (kind 4) broadcast and, as Supabase does, not vsn 1 sockets.
/// `persist` (storing the message for replay) is refused: not supported.
async fn api_send(
    topic: String,
    event: String,
    state: Arc<AppState>,
    caller: Caller,
    raw: String,
    content_type: Option<String>,
    body: bytes::Bytes,
) -> Result<Response, Rejection> {
    let rt = realtime(&state)?;
    let bad = |m: &str| {
        warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m.to_owned()).with_extra("error", Value::String(m.to_owned())))
    };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned());
    let (Ok(topic), Ok(event)) = (decode(&topic), decode(&event)) else {
        return Err(bad("topic and event must be UTF-8"));
    };
    if topic.is_empty() || event.is_empty() {
        return Err(bad("topic and event are required"));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&raw).unwrap_or_default();
    if pairs.iter().any(|(k, _)| k.starts_with("persist")) {
        return Err(bad("persisting broadcasts is not supported by this server"));
    }
    if body.len() > rt.config.max_message_bytes as usize {
        return Err(bad("payload too large"));
    }
    let private = pairs.iter().any(|(k, v)| k == "private" && v == "true");
    let topic = format!("realtime:{topic}");
    if private && !rt.can_write(&caller, &topic).await {
        return Err(warp::reject::custom(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("cannot write to {topic}"))));
    }
    let binary = content_type.is_some_and(|c| c.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/octet-stream")));
    if binary {
        rt.topics.broadcast(&topic, None, json!({"type": "broadcast", "event": event}), Some(body));
    } else {
        let payload: Value = serde_json::from_slice(&body).map_err(|e| bad(&format!("the payload is not JSON: {e}")))?;
        rt.topics.broadcast(&topic, None, json!({"type": "broadcast", "event": event, "payload": payload}), None);
    }
    let mut res = Response::default();
    *res.status_mut() = StatusCode::ACCEPTED;
    Ok(res)
}

/// `POST /realtime/v1/api/broadcast` with `{"messages": [{topic, event, payload, private}]}`.
async fn api_broadcast(state: Arc<AppState>, caller: Caller, body: Value) -> Result<Response, Rejection> {
    let rt = realtime(&state)?;
    let bad = |m: &str| warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m.to_owned()));
    let messages = body.get("messages").and_then(Value::as_array).ok_or_else(|| bad("messages must be an array"))?;
    if messages.len() > 100 {
        return Err(bad("at most 100 messages per request"));
    }
    for m in messages {
        let topic = m.get("topic").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| bad("each message needs a topic"))?;
        let event = m.get("event").and_then(Value::as_str).ok_or_else(|| bad("each message needs an event"))?;
        let topic = format!("realtime:{topic}");
        let private = m.get("private").and_then(Value::as_bool).unwrap_or(false);
        if private && !rt.can_write(&caller, &topic).await {
            return Err(warp::reject::custom(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("cannot write to {topic}"))));
        }
        let payload = json!({"type": "broadcast", "event": event, "payload": m.get("payload").cloned().unwrap_or(json!({}))});
        rt.topics.broadcast(&topic, None, payload, None);
    }
    let mut res = warp::reply::json(&json!({})).into_response();
    *res.status_mut() = StatusCode::ACCEPTED;
    Ok(res)
}
