//! One WebSocket connection: reads frames, keeps its joined channels, and
//! writes everything through one bounded queue (a socket that cannot keep
//! up is closed, never allowed to grow memory or block others).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use warp::ws::{Message, WebSocket};

use super::frame::{Msg, Vsn};
use super::pg_changes::{Binding, Forwarder};
use super::topics::Member;
use super::Realtime;
use crate::eventlog::Position;
use crate::http::apikey::ApiKey;
use crate::http::caller::Caller;

/// Frames queued per socket.
const OUT_QUEUE: usize = 1024;
/// A socket silent for this long (no heartbeat) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest text frame accepted.
const MAX_FRAME: usize = 1 << 20;

struct Channel {
    join_ref: Option<String>,
    expiry: Option<tokio::task::JoinHandle<()>>,
    caller: watch::Sender<Caller>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
    broadcast_ack: bool,
    presence_key: String,
    private: bool,
}

/// Serves one socket until it closes.
pub async fn serve(rt: Arc<Realtime>, ws: WebSocket, vsn: Vsn, key: ApiKey) {
    let conn = rt.next_conn();
    rt.stats.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (expired_tx, mut expired_rx) = mpsc::channel::<(String, Option<String>)>(16);
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::channel::<Msg>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = m.event == "__close";
            if close {
                let _ = sink.send(Message::close()).await;
                break;
            }
            if sink.send(Message::text(m.encode(vsn))).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut channels: HashMap<String, Channel> = HashMap::new();
    loop {
        let next = tokio::select! {
            f = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => f,
            Some((topic, join_ref)) = expired_rx.recv() => {
                // The channel's token expired: tell the client and close the channel.
                if channels.get(&topic).is_some_and(|c| c.join_ref == join_ref) {
                    send_system_error(&out, &topic, "Token has expired").await;
                    close_channel(&rt, conn, &out, &mut channels, &topic).await;
                }
                continue;
            }
        };
        let frame = match next {
            Ok(Some(Ok(f))) => f,
            _ => break,
        };
        if out.capacity() == 0 {
            // The client is not reading: cut it loose rather than buffer without bound.
            tracing::warn!(conn, "realtime socket fell behind; closing it");
            break;
        }
        let msg = if frame.is_text() {
            let text = frame.to_str().unwrap_or("");
            if text.len() > MAX_FRAME {
                send_system_error(&out, "phoenix", "message too large").await;
                continue;
            }
            Msg::decode_text(text, vsn)
        } else if frame.is_binary() {
            Msg::decode_binary(frame.as_bytes())
        } else if frame.is_close() {
            break;
        } else {
            continue;
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(conn, error = %e, "malformed realtime frame");
                send_system_error(&out, "phoenix", &e.to_string()).await;
                continue;
            }
        };
        handle(&rt, conn, key, &out, &expired_tx, &mut channels, msg).await;
    }
    for (topic, ch) in channels.drain() {
        leave_channel(&rt, conn, &topic, ch);
    }
    rt.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    drop(out);
    let _ = writer.await;
}

async fn send_system_error(out: &mpsc::Sender<Msg>, topic: &str, message: &str) {
    let payload = json!({"extension": "system", "status": "error", "message": message, "channel": topic.strip_prefix("realtime:").unwrap_or(topic)});
    let _ = out.send(Msg::new(None, None, topic, "system", payload)).await;
}

/// Ends a channel from the server's side: `phx_close` with the join ref, as Phoenix does.
async fn close_channel(rt: &Realtime, conn: u64, out: &mpsc::Sender<Msg>, channels: &mut HashMap<String, Channel>, topic: &str) {
    if let Some(ch) = channels.remove(topic) {
        let close = Msg::new(ch.join_ref.as_deref(), ch.join_ref.as_deref(), topic, "phx_close", json!({}));
        leave_channel(rt, conn, topic, ch);
        let _ = out.send(close).await;
    }
}

fn leave_channel(rt: &Realtime, conn: u64, topic: &str, ch: Channel) {
    if let Some(f) = ch.forwarder {
        f.abort();
    }
    if let Some(e) = ch.expiry {
        e.abort();
    }
    rt.stats.channels.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    rt.topics.leave(topic, conn);
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// Sleeps until the caller's token expires, then reports the channel.
fn expiry_timer(caller: &Caller, topic: &str, join_ref: Option<String>, tx: &mpsc::Sender<(String, Option<String>)>) -> Option<tokio::task::JoinHandle<()>> {
    let exp = caller.claims.get("exp").and_then(Value::as_i64)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let wait = Duration::from_secs(u64::try_from(exp.saturating_sub(now)).unwrap_or(0));
    let (tx, topic) = (tx.clone(), topic.to_owned());
    Some(tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let _ = tx.send((topic, join_ref)).await;
    }))
}

async fn handle(
    rt: &Arc<Realtime>,
    conn: u64,
    key: ApiKey,
    out: &mpsc::Sender<Msg>,
    expired: &mpsc::Sender<(String, Option<String>)>,
    channels: &mut HashMap<String, Channel>,
    msg: Msg,
) {
    if msg.topic == "phoenix" {
        if msg.event == "heartbeat" {
            let _ = out.send(msg.reply("ok", json!({}))).await;
        }
        return;
    }
    match msg.event.as_str() {
        "phx_join" => join(rt, conn, key, out, expired, channels, msg).await,
        "phx_leave" => {
            let _ = out.send(msg.reply("ok", json!({}))).await;
            close_channel(rt, conn, out, channels, &msg.topic).await;
        }
        "access_token" => {
            let Some(ch) = channels.get_mut(&msg.topic) else { return };
            let token = msg.payload.get("access_token").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() || token.starts_with("sb_") {
                return;
            }
            match Caller::resolve(Some(token), key, &rt.keys) {
                Ok(c) => {
                    if let Some(e) = ch.expiry.take() {
                        e.abort();
                    }
                    ch.expiry = expiry_timer(&c, &msg.topic, ch.join_ref.clone(), expired);
                    ch.caller.send_replace(c);
                }
                Err(e) => {
                    send_system_error(out, &msg.topic, &format!("Invalid token: {}", e.message)).await;
                    close_channel(rt, conn, out, channels, &msg.topic).await;
                }
            }
        }
        "broadcast" => {
            let Some(ch) = channels.get(&msg.topic) else {
                let _ = out.send(msg.reply("error", json!({"reason": "unmatched topic"}))).await;
                return;
            };
            let caller = ch.caller.borrow().clone();
            if ch.private && !rt.can_write(&caller, &msg.topic).await {
                let _ = out.send(msg.reply("error", json!({"reason": "Unauthorized: You do not have permissions to write to this Channel topic"}))).await;
                return;
            }
            let mut payload = msg.payload.clone();
            if let Value::Object(o) = &mut payload {
                o.entry("type").or_insert(Value::String("broadcast".into()));
            }
            rt.topics.broadcast(&msg.topic, Some(conn), payload);
            if ch.broadcast_ack {
                let _ = out.send(msg.reply("ok", json!({}))).await;
            }
        }
        "presence" => {
            let Some(ch) = channels.get(&msg.topic) else {
                let _ = out.send(msg.reply("error", json!({"reason": "unmatched topic"}))).await;
                return;
            };
            match msg.payload.get("event").and_then(Value::as_str) {
                Some("track") => {
                    let p = msg.payload.get("payload").cloned().unwrap_or(json!({}));
                    if !p.is_object() {
                        let _ = out.send(msg.reply("error", json!({"reason": "Presence track payload must be a map"}))).await;
                        return;
                    }
                    rt.topics.track(&msg.topic, conn, &ch.presence_key, &p);
                    let _ = out.send(msg.reply("ok", json!({}))).await;
                }
                Some("untrack") => {
                    rt.topics.untrack(&msg.topic, conn);
                    let _ = out.send(msg.reply("ok", json!({}))).await;
                }
                _ => {
                    let _ = out.send(msg.reply("error", json!({"reason": "unknown presence event"}))).await;
                }
            }
        }
        other => {
            let _ = out.send(msg.reply("error", json!({"reason": format!("unknown event {other:?}")}))).await;
        }
    }
}

async fn join(
    rt: &Arc<Realtime>,
    conn: u64,
    key: ApiKey,
    out: &mpsc::Sender<Msg>,
    expired: &mpsc::Sender<(String, Option<String>)>,
    channels: &mut HashMap<String, Channel>,
    msg: Msg,
) {
    let reject = |reason: String| msg.reply("error", json!({"reason": reason}));
    let name = msg.topic.strip_prefix("realtime:").unwrap_or("");
    if name.is_empty() {
        let _ = out.send(reject("TopicNameRequired: You must provide a topic name".into())).await;
        return;
    }
    if !channels.contains_key(&msg.topic) && channels.len() >= rt.limits.channels_per_socket {
        let _ = out.send(reject("ChannelRateLimitReached: Too many channels".into())).await;
        return;
    }
    if let Some(old) = channels.remove(&msg.topic) {
        leave_channel(rt, conn, &msg.topic, old);
    }
    let config = msg.payload.get("config").cloned().unwrap_or(json!({}));
    let token = msg
        .payload
        .get("access_token")
        .or_else(|| msg.payload.get("user_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.starts_with("sb_") && !t.is_empty());
    let caller = match Caller::resolve(token, key, &rt.keys) {
        Ok(c) => c,
        Err(e) => {
            let _ = out.send(reject(format!("InvalidJWTToken: {}", e.message))).await;
            return;
        }
    };
    let private = flag(config.get("private"), false);
    if private && !rt.can_read(&caller, &msg.topic).await {
        let _ = out.send(reject(format!("Unauthorized: You do not have permissions to read from this Channel topic: {name}"))).await;
        return;
    }
    let mut bindings = Vec::new();
    if let Some(list) = config.get("postgres_changes").and_then(Value::as_array) {
        for entry in list {
            match Binding::parse(entry) {
                Ok(b) => bindings.push(b),
                Err(e) => {
                    let _ = out.send(reject(format!("Unable to subscribe to changes with given parameters: {e}"))).await;
                    return;
                }
            }
        }
    }
    let since = match config.get("since").and_then(Value::as_str) {
        None => None,
        Some(s) => match s.parse::<Position>() {
            Ok(p) => Some(p),
            Err(e) => {
                let _ = out.send(reject(format!("InvalidSince: {e}"))).await;
                return;
            }
        },
    };
    let broadcast = config.get("broadcast").cloned().unwrap_or(json!({}));
    let presence = config.get("presence").cloned().unwrap_or(json!({}));
    let presence_enabled = flag(presence.get("enabled"), true);
    let presence_key = presence
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let expiry = expiry_timer(&caller, &msg.topic, msg.join_ref.clone(), expired);
    let (caller_tx, caller_rx) = watch::channel(caller);
    let mut forwarder = None;
    if !bindings.is_empty() {
        let Some(core) = rt.changes.clone() else {
            let _ = out.send(reject("postgres_changes are disabled on this server ([replication] enabled = false)".into())).await;
            return;
        };
        let keys: Vec<(String, String)> = bindings.iter().map(|b| (b.schema.clone(), b.table.clone())).collect();
        let sub = core.hub.subscribe(keys);
        let f = Forwarder { core, bindings: bindings.clone(), caller: caller_rx, topic: msg.topic.clone(), out: out.clone(), since };
        forwarder = Some(tokio::spawn(f.run(sub)));
    }
    let echo: Vec<Value> = bindings.iter().map(|b| b.echo.clone()).collect();
    let _ = out.send(msg.reply("ok", json!({"postgres_changes": echo}))).await;
    rt.topics.join(
        &msg.topic,
        Member { conn, out: out.clone(), self_broadcast: flag(broadcast.get("self"), false), presence: presence_enabled },
    );
    if !bindings.is_empty() {
        let payload = json!({"channel": name, "extension": "postgres_changes", "message": "Subscribed to PostgreSQL", "status": "ok"});
        let _ = out.send(Msg::new(msg.join_ref.as_deref(), None, &msg.topic, "system", payload)).await;
    }
    if presence_enabled {
        let state = rt.topics.presence_state(&msg.topic);
        let _ = out.send(Msg::new(msg.join_ref.as_deref(), None, &msg.topic, "presence_state", state)).await;
    }
    rt.stats.channels.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    channels.insert(
        msg.topic.clone(),
        Channel {
            join_ref: msg.join_ref.clone(),
            expiry,
            caller: caller_tx,
            forwarder,
            broadcast_ack: flag(broadcast.get("ack"), false),
            presence_key,
            private,
        },
    );
}
