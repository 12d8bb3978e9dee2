//! One WebSocket connection: reads frames, keeps its joined channels, and
//! writes everything through one bounded queue ([`super::outbox`]: a socket
//! that cannot keep up is told where to resume and closed, never allowed to
//! grow memory or block others). Limits ([`super::limits`]): the socket is
//! charged to its IP, then to its user once a join carries one; joins are
//! rate limited per socket.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::frame::{Msg, Vsn};
use super::limits::{Charge, JoinBucket};
use super::outbox::{self, Outbox, WriterEnd};
use super::groups::{self, Group};
use super::pg_changes::{replay, Binding};
use super::topics::Member;
use super::upgrade::Socket;
use super::Realtime;
use crate::eventlog::Position;
use crate::http::apikey::ApiKey;
use crate::http::caller::Caller;

/// A socket silent for this long (no heartbeat) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Channel {
    join_ref: Option<String>,
    expiry: Option<tokio::task::JoinHandle<()>>,
    caller: watch::Sender<Arc<Caller>>,
    /// Its `postgres_changes` group membership.
    changes: Option<(Arc<Group>, Arc<groups::Member>)>,
    /// Replaying `config.since` (then letting live changes through).
    activation: Option<tokio::task::JoinHandle<()>>,
    broadcast_ack: bool,
    presence_key: String,
    private: bool,
}

/// One connection's state, owned by its reading task.
struct Conn {
    rt: Arc<Realtime>,
    conn: u64,
    key: ApiKey,
    out: Outbox,
    expired: mpsc::Sender<(String, Option<String>)>,
    channels: HashMap<String, Channel>,
    vsn: Vsn,
    charge: Charge,
    joins: JoinBucket,
}

/// Serves one socket until it closes; `charge` is its slot against its IP.
pub async fn serve(rt: Arc<Realtime>, ws: Socket, vsn: Vsn, key: ApiKey, charge: Charge) {
    let conn = rt.next_conn();
    rt.stats.connections.fetch_add(1, Ordering::Relaxed);
    let (expired_tx, mut expired_rx) = mpsc::channel::<(String, Option<String>)>(16);
    let (sink, mut stream) = ws.split();
    let (out, inbox) = outbox::channel(rt.config.send_queue as usize, Arc::clone(&rt.stats.slow_disconnects));
    let mut writer = tokio::spawn(inbox.run(sink, vsn));
    let joins = JoinBucket::new(rt.config.max_joins_per_second);
    let mut c = Conn { rt: Arc::clone(&rt), conn, key, out, expired: expired_tx, channels: HashMap::new(), vsn, charge, joins };
    let mut writer_done = false;
    loop {
        let next = tokio::select! {
            end = &mut writer => {
                writer_done = true;
                if matches!(end, Ok(WriterEnd::CutLoose)) {
                    tracing::warn!(conn, "realtime socket fell behind; told where to resume and closed");
                }
                break;
            }
            f = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => f,
            Some((topic, join_ref)) = expired_rx.recv() => {
                // The channel's token expired: tell the client and close the channel.
                if c.channels.get(&topic).is_some_and(|ch| ch.join_ref == join_ref) {
                    c.system_error(&topic, "Token has expired");
                    c.close_channel(&topic);
                }
                continue;
            }
        };
        let frame = match next {
            Ok(Some(Ok(f))) => f,
            _ => break,
        };
        let msg = match &frame {
            Message::Text(t) => Msg::decode_text(t.as_str(), vsn),
            Message::Binary(b) => Msg::decode_binary(b),
            Message::Close(_) => break,
            // Pings are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        match msg {
            Ok(m) => c.handle(m).await,
            Err(e) => {
                tracing::debug!(conn, error = %e, "malformed realtime frame");
                c.system_error("phoenix", &e.to_string());
            }
        }
    }
    let topics: Vec<String> = c.channels.keys().cloned().collect();
    for topic in topics {
        if let Some(ch) = c.channels.remove(&topic) {
            c.leave_channel(&topic, ch);
        }
    }
    rt.stats.connections.fetch_sub(1, Ordering::Relaxed);
    drop(c);
    if !writer_done {
        let _ = writer.await;
    }
}

impl Conn {
    fn system_error(&self, topic: &str, message: &str) {
        let payload =
            json!({"extension": "system", "status": "error", "message": message, "channel": topic.strip_prefix("realtime:").unwrap_or(topic)});
        self.out.offer(Msg::new(None, None, topic, "system", payload));
    }

    /// Ends a channel from the server's side: `phx_close` with the join ref, as Phoenix does.
    fn close_channel(&mut self, topic: &str) {
        if let Some(ch) = self.channels.remove(topic) {
            let close = Msg::new(ch.join_ref.as_deref(), ch.join_ref.as_deref(), topic, "phx_close", json!({}));
            self.leave_channel(topic, ch);
            self.out.offer(close);
        }
    }

    fn leave_channel(&self, topic: &str, ch: Channel) {
        if let Some((group, member)) = &ch.changes {
            self.rt.groups.leave(group, member);
        }
        if let Some(a) = ch.activation {
            a.abort();
        }
        if let Some(e) = ch.expiry {
            e.abort();
        }
        self.out.untrack(topic);
        self.rt.stats.channels.fetch_sub(1, Ordering::Relaxed);
        self.rt.topics.leave(topic, self.conn);
    }

    /// Charges this socket to the caller's user (JWT `sub`) the first time a
    /// join carries one; false when that user is at its connection limit.
    fn charge_user(&mut self, caller: &Caller) -> bool {
        if matches!(self.charge, Charge::User(_)) {
            return true;
        }
        let Some(sub) = caller.claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            return true;
        };
        match self.rt.per_user.admit(sub.to_owned()) {
            Some(slot) => {
                // The IP slot is released: the socket now counts against its user.
                self.charge = Charge::User(slot);
                true
            }
            None => false,
        }
    }
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// Sleeps until the caller's token expires, then reports the channel.
fn expiry_timer(
    caller: &Caller,
    topic: &str,
    join_ref: Option<String>,
    tx: &mpsc::Sender<(String, Option<String>)>,
) -> Option<tokio::task::JoinHandle<()>> {
    let exp = caller.claims.get("exp").and_then(Value::as_i64)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let wait = Duration::from_secs(u64::try_from(exp.saturating_sub(now)).unwrap_or(0));
    let (tx, topic) = (tx.clone(), topic.to_owned());
    Some(tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let _ = tx.send((topic, join_ref)).await;
    }))
}

impl Conn {
    async fn handle(&mut self, msg: Msg) {
        if msg.topic == "phoenix" {
            if msg.event == "heartbeat" {
                self.out.offer(msg.reply("ok", json!({})));
            }
            return;
        }
        match msg.event.as_str() {
            "phx_join" => self.join(msg).await,
            "phx_leave" => {
                self.out.offer(msg.reply("ok", json!({})));
                self.close_channel(&msg.topic);
            }
            "access_token" => self.access_token(&msg),
            "broadcast" => {
                let Some(ch) = self.channels.get(&msg.topic) else {
                    self.out.offer(msg.reply("error", json!({"reason": "unmatched topic"})));
                    return;
                };
                let caller = ch.caller.borrow().clone();
                let (private, ack) = (ch.private, ch.broadcast_ack);
                if private && !self.rt.can_write(&caller, &msg.topic).await {
                    self.out.offer(msg.reply("error", json!({"reason": "Unauthorized: You do not have permissions to write to this Channel topic"})));
                    return;
                }
                let mut payload = msg.payload.clone();
                if let Value::Object(o) = &mut payload {
                    o.entry("type").or_insert(Value::String("broadcast".into()));
                }
                self.rt.topics.broadcast(&msg.topic, Some(self.conn), payload, msg.binary.clone());
                if ack {
                    self.out.offer(msg.reply("ok", json!({})));
                }
            }
            "presence" => self.presence(&msg),
            other => {
                self.out.offer(msg.reply("error", json!({"reason": format!("unknown event {other:?}")})));
            }
        }
    }

    fn access_token(&mut self, msg: &Msg) {
        let Some(ch) = self.channels.get_mut(&msg.topic) else {
            return;
        };
        let token = msg.payload.get("access_token").and_then(Value::as_str).unwrap_or("");
        if token.is_empty() || token.starts_with("sb_") {
            return;
        }
        match Caller::resolve(Some(token), self.key, &self.rt.keys) {
            Ok(c) => {
                if let Some(e) = ch.expiry.take() {
                    e.abort();
                }
                ch.expiry = expiry_timer(&c, &msg.topic, ch.join_ref.clone(), &self.expired);
                ch.caller.send_replace(Arc::new(c));
                if let Some((group, _)) = &ch.changes {
                    self.rt.groups.caller_changed(group);
                }
            }
            Err(e) => {
                self.system_error(&msg.topic, &format!("Invalid token: {}", e.message));
                self.close_channel(&msg.topic);
            }
        }
    }

    fn presence(&mut self, msg: &Msg) {
        let Some(ch) = self.channels.get(&msg.topic) else {
            self.out.offer(msg.reply("error", json!({"reason": "unmatched topic"})));
            return;
        };
        match msg.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
                let p = msg.payload.get("payload").cloned().unwrap_or(json!({}));
                if !p.is_object() {
                    self.out.offer(msg.reply("error", json!({"reason": "Presence track payload must be a map"})));
                    return;
                }
                self.rt.topics.track(&msg.topic, self.conn, &ch.presence_key, &p);
                self.out.offer(msg.reply("ok", json!({})));
            }
            Some("untrack") => {
                self.rt.topics.untrack(&msg.topic, self.conn);
                self.out.offer(msg.reply("ok", json!({})));
            }
            _ => {
                self.out.offer(msg.reply("error", json!({"reason": "unknown presence event"})));
            }
        }
    }

    async fn join(&mut self, msg: Msg) {
        let reject = |reason: String| msg.reply("error", json!({"reason": reason}));
        let rt = Arc::clone(&self.rt);
        if !self.joins.take() {
            // As the reference: refuse the join, then disconnect the socket.
            rt.stats.joins_rate_limited.fetch_add(1, Ordering::Relaxed);
            self.out.offer(reject("ClientJoinRateLimitReached: Too many joins per second".into()));
            self.out.offer(Msg::new(None, None, "phoenix", "__close", json!({})));
            return;
        }
        let name = msg.topic.strip_prefix("realtime:").unwrap_or("");
        if name.is_empty() {
            self.out.offer(reject("TopicNameRequired: You must provide a topic name".into()));
            return;
        }
        if !self.channels.contains_key(&msg.topic) && self.channels.len() >= rt.config.max_channels_per_connection as usize {
            self.out.offer(reject("ChannelRateLimitReached: Too many channels".into()));
            return;
        }
        if let Some(old) = self.channels.remove(&msg.topic) {
            self.leave_channel(&msg.topic, old);
        }
        let config = msg.payload.get("config").cloned().unwrap_or(json!({}));
        let token = msg
            .payload
            .get("access_token")
            .or_else(|| msg.payload.get("user_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("sb_") && !t.is_empty());
        let caller = match Caller::resolve(token, self.key, &rt.keys) {
            Ok(c) => c,
            Err(e) => {
                self.out.offer(reject(format!("InvalidJWTToken: {}", e.message)));
                return;
            }
        };
        if !self.charge_user(&caller) {
            rt.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            self.out.offer(reject("ConnectionRateLimitReached: Too many connected users".into()));
            return;
        }
        let private = flag(config.get("private"), false);
        if private && !rt.can_read(&caller, &msg.topic).await {
            self.out.offer(reject(format!("Unauthorized: You do not have permissions to read from this Channel topic: {name}")));
            return;
        }
        let mut bindings = Vec::new();
        if let Some(list) = config.get("postgres_changes").and_then(Value::as_array) {
            for entry in list {
                match Binding::parse(entry) {
                    Ok(b) => bindings.push(b),
                    Err(e) => {
                        self.out.offer(reject(format!("Unable to subscribe to changes with given parameters: {e}")));
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
                    self.out.offer(reject(format!("InvalidSince: {e}")));
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
        let expiry = expiry_timer(&caller, &msg.topic, msg.join_ref.clone(), &self.expired);
        let core = if bindings.is_empty() {
            None
        } else {
            let Some(core) = rt.changes.clone() else {
                self.out.offer(reject("postgres_changes are disabled on this server ([replication] enabled = false)".into()));
                return;
            };
            Some(core)
        };
        let (caller_tx, caller_rx) = watch::channel(Arc::new(caller));
        let echo: Vec<Value> = bindings.iter().map(|b| b.echo.clone()).collect();
        self.out.offer(msg.reply("ok", json!({"postgres_changes": echo})));
        rt.topics.join(
            &msg.topic,
            Member { conn: self.conn, out: self.out.clone(), self_broadcast: flag(broadcast.get("self"), false), presence: presence_enabled },
        );
        if !bindings.is_empty() {
            let payload = json!({"channel": name, "extension": "postgres_changes", "message": "Subscribed to PostgreSQL", "status": "ok"});
            self.out.offer(Msg::new(msg.join_ref.as_deref(), None, &msg.topic, "system", payload));
        }
        if presence_enabled {
            let state = rt.topics.presence_state(&msg.topic);
            self.out.offer(Msg::new(msg.join_ref.as_deref(), None, &msg.topic, "presence_state", state));
        }
        // Changes flow only after the join reply: the client drops them before it.
        let mut changes = None;
        let mut activation = None;
        match core {
            None => self.out.track(&msg.topic, None),
            Some(core) => {
                let member = groups::Member::new(&msg.topic, self.vsn, self.out.clone(), caller_rx, groups::HOLD_MAX);
                let (group, start) = rt.groups.join(&core, &bindings, &member);
                // Before any change is queued, a client cut loose resumes where this channel starts.
                self.out.track(&msg.topic, Some(since.unwrap_or(start)));
                let m = Arc::clone(&member);
                activation = Some(tokio::spawn(async move {
                    if let Some(since) = since {
                        if !replay(&core, &bindings, &m, since, start).await {
                            m.out.cut();
                            return;
                        }
                    }
                    m.go_live().await;
                }));
                changes = Some((group, member));
            }
        }
        rt.stats.channels.fetch_add(1, Ordering::Relaxed);
        self.channels.insert(
            msg.topic.clone(),
            Channel {
                join_ref: msg.join_ref.clone(),
                expiry,
                caller: caller_tx,
                changes,
                activation,
                broadcast_ack: flag(broadcast.get("ack"), false),
                presence_key,
                private,
            },
        );
    }
}
