//! Topics: who has joined which channel, for broadcast and presence.
//!
//! A member is one joined channel of one socket, with the bounded queue of
//! that socket. Broadcasts are offered to each member's queue without
//! waiting; a full queue cuts that socket loose ([`super::outbox`]): it is
//! never allowed to block the sender.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use dashmap::DashMap;
use serde_json::{json, Map, Value};

use super::frame::Msg;
use super::outbox::Outbox;

/// One joined channel of one socket.
#[derive(Debug, Clone)]
pub struct Member {
    /// The socket.
    pub conn: u64,
    /// The socket's outgoing queue.
    pub out: Outbox,
    /// Receives its own broadcasts.
    pub self_broadcast: bool,
    /// Receives presence.
    pub presence: bool,
}

/// Presence metas by key, each meta tagged with the socket that tracked it.
type PresenceState = HashMap<String, Vec<(u64, Value)>>;

/// Every topic's members and presence.
#[derive(Debug, Default)]
pub struct Topics {
    members: DashMap<String, Vec<Member>>,
    presence: DashMap<String, Mutex<PresenceState>>,
}

impl Topics {
    /// Adds a member (replacing an earlier join of the same socket).
    pub fn join(&self, topic: &str, m: Member) {
        let mut list = self.members.entry(topic.to_owned()).or_default();
        list.retain(|x| x.conn != m.conn);
        list.push(m);
    }

    /// Removes a socket from a topic; returns the presence leaves to announce.
    pub fn leave(&self, topic: &str, conn: u64) {
        if let Some(mut list) = self.members.get_mut(topic) {
            list.retain(|x| x.conn != conn);
        }
        self.members.remove_if(topic, |_, v| v.is_empty());
        self.untrack(topic, conn);
    }

    /// Sends a broadcast to every member but the sender (unless it asked for
    /// its own); `binary` is a binary user payload (then `payload` is `{type, event}`).
    pub fn broadcast(&self, topic: &str, from: Option<u64>, payload: Value, binary: Option<Bytes>) {
        let Some(list) = self.members.get(topic) else {
            return;
        };
        let mut msg = Msg::new(None, None, topic, "broadcast", payload);
        msg.binary = binary;
        for m in list.iter() {
            if Some(m.conn) == from && !m.self_broadcast {
                continue;
            }
            m.out.offer(msg.clone());
        }
    }

    /// Number of members.
    pub fn member_count(&self, topic: &str) -> usize {
        self.members.get(topic).map(|l| l.len()).unwrap_or(0)
    }

    /// The presence state as `presence_state` sends it.
    pub fn presence_state(&self, topic: &str) -> Value {
        let mut out = Map::new();
        if let Some(state) = self.presence.get(topic) {
            if let Ok(s) = state.lock() {
                for (key, metas) in s.iter() {
                    out.insert(key.clone(), json!({"metas": metas.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()}));
                }
            }
        }
        Value::Object(out)
    }

    /// Tracks (or updates) `conn`'s presence under `key`, and announces the diff.
    pub fn track(&self, topic: &str, conn: u64, key: &str, payload: &Value) {
        let phx_ref = uuid::Uuid::new_v4().simple().to_string();
        let mut meta = payload.as_object().cloned().unwrap_or_default();
        meta.insert("phx_ref".into(), Value::String(phx_ref));
        let mut leaves = Map::new();
        {
            let entry = self.presence.entry(topic.to_owned()).or_default();
            let Ok(mut state) = entry.lock() else { return };
            let metas = state.entry(key.to_owned()).or_default();
            if let Some(pos) = metas.iter().position(|(c, _)| *c == conn) {
                let (_, old) = metas.remove(pos);
                if let Some(prev) = old.get("phx_ref") {
                    meta.insert("phx_ref_prev".into(), prev.clone());
                }
                leaves.insert(key.to_owned(), json!({"metas": [old]}));
            }
            metas.push((conn, Value::Object(meta.clone())));
        }
        let joins = json!({key: {"metas": [Value::Object(meta)]}});
        self.diff(topic, joins, Value::Object(leaves));
    }

    /// Removes `conn`'s presence on a topic and announces the leaves.
    pub fn untrack(&self, topic: &str, conn: u64) {
        let mut leaves = Map::new();
        if let Some(entry) = self.presence.get(topic) {
            if let Ok(mut state) = entry.lock() {
                for (key, metas) in state.iter_mut() {
                    let gone: Vec<Value> = metas.iter().filter(|(c, _)| *c == conn).map(|(_, m)| m.clone()).collect();
                    if !gone.is_empty() {
                        metas.retain(|(c, _)| *c != conn);
                        leaves.insert(key.clone(), json!({"metas": gone}));
                    }
                }
                state.retain(|_, metas| !metas.is_empty());
            }
        }
        self.presence.remove_if(topic, |_, s| s.lock().map(|s| s.is_empty()).unwrap_or(true));
        if !leaves.is_empty() {
            self.diff(topic, json!({}), Value::Object(leaves));
        }
    }

    fn diff(&self, topic: &str, joins: Value, leaves: Value) {
        let Some(list) = self.members.get(topic) else {
            return;
        };
        let msg = Msg::new(None, None, topic, "presence_diff", json!({"joins": joins, "leaves": leaves}));
        for m in list.iter().filter(|m| m.presence) {
            m.out.offer(msg.clone());
        }
    }
}
