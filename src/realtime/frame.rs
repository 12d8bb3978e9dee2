//! Phoenix channel frames as realtime-js sends and expects them.
//!
//! `vsn=1.0.0`: JSON objects `{topic, event, payload, ref, join_ref}` (the
//! server never sends `join_ref`). `vsn=2.0.0`: JSON arrays
//! `[join_ref, ref, topic, event, payload]`, plus binary frames: kind 3
//! (a client's user broadcast push) is decoded here. Broadcasts with a JSON
//! payload are sent as text, which realtime-js accepts; a broadcast whose
//! payload is binary (an `ArrayBuffer`) is sent to vsn 2 sockets as a kind 4
//! frame and, as Supabase does, not at all to vsn 1 sockets.

use bytes::Bytes;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Kind of a client's user broadcast push (vsn 2 binary).
const KIND_USER_BROADCAST_PUSH: u8 = 3;
/// Kind of a server's user broadcast (vsn 2 binary).
const KIND_USER_BROADCAST: u8 = 4;
/// Payload encodings of binary broadcasts.
const ENCODING_BINARY: u8 = 0;
const ENCODING_JSON: u8 = 1;

/// An encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl From<Wire> for Message {
    fn from(w: Wire) -> Message {
        match w {
            Wire::Text(t) => Message::Text(t.into()),
            Wire::Binary(b) => Message::Binary(b.into()),
        }
    }
}

/// A `postgres_changes` payload, `{"data":DATA,"ids":[…]}`, around `data`
/// already serialised: the bytes `serde_json` writes for
/// `json!({"ids": ids, "data": data})` (keys in order).
pub fn change_payload(data: &str, ids: &[u32]) -> String {
    let mut out = String::with_capacity(data.len() + 16 + ids.len() * 10);
    out.push_str("{\"data\":");
    out.push_str(data);
    out.push_str(",\"ids\":[");
    for (n, id) in ids.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push_str("]}");
    out
}

/// A server `postgres_changes` frame for `topic` with `payload` spliced in
/// (from [`change_payload`]): byte for byte what [`Msg::encode`] writes for
/// `Msg::new(None, None, topic, "postgres_changes", payload)`, so one
/// serialised payload serves every socket, whatever its topic and version.
pub fn splice_change(vsn: Vsn, topic: &str, payload: &str) -> String {
    let topic = Value::String(topic.to_owned()).to_string();
    let mut out = String::with_capacity(payload.len() + topic.len() + 64);
    match vsn {
        Vsn::V1 => {
            out.push_str("{\"event\":\"postgres_changes\",\"payload\":");
            out.push_str(payload);
            out.push_str(",\"ref\":null,\"topic\":");
            out.push_str(&topic);
            out.push('}');
        }
        Vsn::V2 => {
            out.push_str("[null,null,");
            out.push_str(&topic);
            out.push_str(",\"postgres_changes\",");
            out.push_str(payload);
            out.push(']');
        }
    }
    out
}

/// The serializer version of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vsn {
    /// Object frames.
    V1,
    /// Array frames and binary broadcasts.
    V2,
}

impl Vsn {
    /// From the `vsn` query parameter (`1.0.0` when absent, as old clients).
    pub fn parse(v: Option<&str>) -> Option<Vsn> {
        match v {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            _ => None,
        }
    }
}

/// One message in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    /// The channel's join ref.
    pub join_ref: Option<String>,
    /// This message's ref.
    pub msg_ref: Option<String>,
    /// `realtime:<name>` or `phoenix`.
    pub topic: String,
    /// Event name.
    pub event: String,
    /// Payload.
    pub payload: Value,
    /// A user broadcast's binary payload: then `payload` is `{type, event}`
    /// and these bytes are the user payload.
    pub binary: Option<Bytes>,
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct FrameError(pub String);

fn opt_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Msg {
    /// A server message.
    pub fn new(join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> Msg {
        Msg {
            join_ref: join_ref.map(str::to_owned),
            msg_ref: msg_ref.map(str::to_owned),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            binary: None,
        }
    }

    /// Decodes a text frame.
    pub fn decode_text(text: &str, vsn: Vsn) -> Result<Msg, FrameError> {
        let v: Value = serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))?;
        match (vsn, v) {
            (Vsn::V2, Value::Array(a)) if a.len() == 5 => {
                let topic = a[2].as_str().ok_or_else(|| FrameError("topic must be a string".into()))?.to_owned();
                let event = a[3].as_str().ok_or_else(|| FrameError("event must be a string".into()))?.to_owned();
                Ok(Msg { join_ref: opt_str(&a[0]), msg_ref: opt_str(&a[1]), topic, event, payload: a[4].clone(), binary: None })
            }
            (_, Value::Object(o)) => {
                let topic = o.get("topic").and_then(Value::as_str).ok_or_else(|| FrameError("topic is required".into()))?.to_owned();
                let event = o.get("event").and_then(Value::as_str).ok_or_else(|| FrameError("event is required".into()))?.to_owned();
                Ok(Msg {
                    join_ref: o.get("join_ref").and_then(opt_str),
                    msg_ref: o.get("ref").and_then(opt_str),
                    topic,
                    event,
                    payload: o.get("payload").cloned().unwrap_or(Value::Object(Default::default())),
                    binary: None,
                })
            }
            _ => Err(FrameError("expected [join_ref, ref, topic, event, payload]".into())),
        }
    }

    /// Decodes a binary frame: kind 3, a user broadcast push (vsn 2):
    /// `kind | len(join_ref) | len(ref) | len(topic) | len(event) | len(meta) | encoding`,
    /// the five strings, then the user payload (JSON text or raw bytes).
    pub fn decode_binary(b: &[u8]) -> Result<Msg, FrameError> {
        let err = |m: &str| FrameError(m.to_owned());
        if b.first() != Some(&KIND_USER_BROADCAST_PUSH) {
            return Err(err("unsupported binary frame: only kind 3 (user broadcast push) is accepted"));
        }
        let header = b.get(1..7).ok_or_else(|| err("truncated binary frame"))?;
        let encoding = header[5];
        let mut at = 7;
        let mut take = |n: u8| -> Result<&[u8], FrameError> {
            let n = usize::from(n);
            let s = b.get(at..at + n).ok_or_else(|| err("truncated binary frame"))?;
            at += n;
            Ok(s)
        };
        let s = |x: &[u8]| String::from_utf8(x.to_vec()).map_err(|_| FrameError("invalid UTF-8".into()));
        let join_ref = s(take(header[0])?)?;
        let msg_ref = s(take(header[1])?)?;
        let topic = s(take(header[2])?)?;
        let user_event = s(take(header[3])?)?;
        let _meta = take(header[4])?;
        let body = b.get(at..).unwrap_or_default();
        let (payload, binary) = match encoding {
            ENCODING_JSON => {
                let p: Value = serde_json::from_slice(body).map_err(|e| FrameError(e.to_string()))?;
                (json!({"type": "broadcast", "event": user_event, "payload": p}), None)
            }
            ENCODING_BINARY => (json!({"type": "broadcast", "event": user_event}), Some(Bytes::copy_from_slice(body))),
            other => return Err(FrameError(format!("unknown payload encoding {other}"))),
        };
        Ok(Msg {
            join_ref: Some(join_ref).filter(|s| !s.is_empty()),
            msg_ref: Some(msg_ref).filter(|s| !s.is_empty()),
            topic,
            event: "broadcast".into(),
            payload,
            binary,
        })
    }

    /// Encodes for a socket of version `vsn`; `None` when the message has
    /// no form for it (a binary broadcast to vsn 1).
    pub fn encode(&self, vsn: Vsn) -> Option<Wire> {
        if let Some(bytes) = &self.binary {
            return match vsn {
                Vsn::V1 => None,
                Vsn::V2 => self.encode_user_broadcast(bytes).map(Wire::Binary),
            };
        }
        Some(Wire::Text(match vsn {
            Vsn::V1 => json!({"topic": self.topic, "event": self.event, "payload": self.payload, "ref": self.msg_ref}).to_string(),
            Vsn::V2 => json!([self.join_ref, self.msg_ref, self.topic, self.event, self.payload]).to_string(),
        }))
    }

    /// Kind 4: `kind | len(topic) | len(event) | len(meta) | encoding`, then
    /// topic, event, meta (empty) and the payload bytes.
    fn encode_user_broadcast(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let event = self.payload.get("event").and_then(Value::as_str).unwrap_or_default();
        let topic_len = u8::try_from(self.topic.len()).ok()?;
        let event_len = u8::try_from(event.len()).ok()?;
        let mut out = Vec::with_capacity(5 + self.topic.len() + event.len() + bytes.len());
        out.extend_from_slice(&[KIND_USER_BROADCAST, topic_len, event_len, 0, ENCODING_BINARY]);
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(bytes);
        Some(out)
    }

    /// A `phx_reply` to this message.
    pub fn reply(&self, status: &str, response: Value) -> Msg {
        Msg {
            join_ref: self.join_ref.clone(),
            msg_ref: self.msg_ref.clone(),
            topic: self.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({"status": status, "response": response}),
            binary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_text_round_trip() {
        let m = Msg::decode_text(r#"["3","3","realtime:room","phx_join",{"config":{}}]"#, Vsn::V2).expect("v2");
        assert_eq!((m.join_ref.as_deref(), m.msg_ref.as_deref(), m.topic.as_str()), (Some("3"), Some("3"), "realtime:room"));
        assert_eq!(
            m.reply("ok", json!({})).encode(Vsn::V2),
            Some(Wire::Text(r#"["3","3","realtime:room","phx_reply",{"response":{},"status":"ok"}]"#.into()))
        );
        let m = Msg::decode_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}"#, Vsn::V1).expect("v1");
        assert_eq!(m.join_ref, None);
        let Some(Wire::Text(text)) = m.reply("ok", json!({})).encode(Vsn::V1) else { panic!("text") };
        let out: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(out["ref"], "12");
        assert!(out.get("join_ref").is_none());
    }

    #[test]
    fn binary_user_broadcast() {
        let (jr, r, topic, ev, body) = ("3", "9", "realtime:room", "cursor", br#"{"x":1}"#);
        let mut b = vec![3u8, jr.len() as u8, r.len() as u8, topic.len() as u8, ev.len() as u8, 0, 1];
        for part in [jr.as_bytes(), r.as_bytes(), topic.as_bytes(), ev.as_bytes()] {
            b.extend_from_slice(part);
        }
        b.extend_from_slice(body);
        let m = Msg::decode_binary(&b).expect("decode");
        assert_eq!(m.event, "broadcast");
        assert_eq!(m.payload, json!({"type": "broadcast", "event": "cursor", "payload": {"x": 1}}));
        assert!(Msg::decode_binary(&b[..9]).is_err());
        assert!(Msg::decode_binary(&[4, 0, 0]).is_err());
        assert!(Msg::decode_binary(&[3]).is_err());
        let mut bad_enc = b.clone();
        bad_enc[6] = 7;
        assert!(Msg::decode_binary(&bad_enc).is_err());
    }

    #[test]
    fn binary_payload_is_re_sent_as_kind_4_to_vsn_2_only() {
        let (topic, ev, body) = ("realtime:room", "blob", [0u8, 1, 2, 255]);
        let mut b = vec![3u8, 0, 1, topic.len() as u8, ev.len() as u8, 0, 0];
        b.extend_from_slice(b"7");
        b.extend_from_slice(topic.as_bytes());
        b.extend_from_slice(ev.as_bytes());
        b.extend_from_slice(&body);
        let m = Msg::decode_binary(&b).expect("decode");
        assert_eq!(m.binary.as_deref(), Some(&body[..]));
        assert_eq!((m.join_ref.as_deref(), m.msg_ref.as_deref()), (None, Some("7")));
        let out = Msg { join_ref: None, msg_ref: None, ..m.clone() };
        let mut want = vec![4u8, topic.len() as u8, ev.len() as u8, 0, 0];
        want.extend_from_slice(topic.as_bytes());
        want.extend_from_slice(ev.as_bytes());
        want.extend_from_slice(&body);
        assert_eq!(out.encode(Vsn::V2), Some(Wire::Binary(want)));
        assert_eq!(out.encode(Vsn::V1), None);
    }

    #[test]
    fn spliced_change_frames_equal_encoded_ones() {
        let data = json!({
            "schema": "public", "table": "todos", "commit_timestamp": "2023-11-14T22:13:20.123Z", "type": "INSERT",
            "columns": [{"name": "id", "type": "int8"}, {"name": "t\"x", "type": "text"}], "errors": null,
            "record": {"id": 1, "t\"x": "é \\ \u{1}"}, "position": "0/10:0",
        });
        let shared = data.to_string();
        for ids in [vec![], vec![7], vec![12_345_678, 3, 99]] {
            let payload = change_payload(&shared, &ids);
            assert_eq!(payload, json!({"ids": ids, "data": data}).to_string());
            for topic in ["realtime:room", "realtime:\"odd\" é"] {
                for vsn in [Vsn::V1, Vsn::V2] {
                    let want = Msg::new(None, None, topic, "postgres_changes", json!({"ids": ids, "data": data})).encode(vsn);
                    assert_eq!(Some(Wire::Text(splice_change(vsn, topic, &payload))), want, "{vsn:?} {topic} {ids:?}");
                }
            }
        }
    }

    #[test]
    fn malformed_text_is_an_error() {
        for bad in ["", "[]", "[1,2,3]", "{\"event\":\"x\"}", "[null,null,5,\"e\",{}]", "nope"] {
            assert!(Msg::decode_text(bad, Vsn::V2).is_err(), "{bad}");
        }
    }
}
