//! A raw Phoenix (realtime `vsn=2.0.0`) WebSocket client for tests that need
//! control supabase-js does not give: choosing the source address, shrinking
//! the receive buffer, not reading at all.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// One message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A text frame `[join_ref, ref, topic, event, payload]`.
    Msg {
        /// Join ref.
        join_ref: Option<String>,
        /// Ref.
        msg_ref: Option<String>,
        /// Topic.
        topic: String,
        /// Event.
        event: String,
        /// Payload.
        payload: Value,
    },
    /// A binary frame.
    Binary(Vec<u8>),
    /// The server closed the socket.
    Closed,
}

impl Incoming {
    /// The event name (`""` for binary and close).
    pub fn event(&self) -> &str {
        match self {
            Incoming::Msg { event, .. } => event,
            _ => "",
        }
    }

    /// The ref.
    pub fn msg_ref(&self) -> Option<&str> {
        match self {
            Incoming::Msg { msg_ref, .. } => msg_ref.as_deref(),
            _ => None,
        }
    }

    /// The payload (`null` for binary and close).
    pub fn payload(&self) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Incoming::Msg { payload, .. } => payload,
            _ => &NULL,
        }
    }
}

/// A connected client.
pub struct PhxSocket {
    ws: WebSocketStream<TcpStream>,
    next_ref: u64,
    buffered: VecDeque<Incoming>,
}

/// Options of a connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Source address (a loopback address such as 127.0.0.2).
    pub from: Option<IpAddr>,
    /// The socket's receive buffer in bytes (small: the server's writes back up sooner).
    pub recv_buffer: Option<u32>,
}

/// `ws://host/realtime/v1/websocket?apikey=…&vsn=2.0.0` from an `http://` base URL.
pub fn endpoint(base: &str, apikey: &str) -> String {
    format!("{}/realtime/v1/websocket?apikey={apikey}&vsn=2.0.0", base.replacen("http", "ws", 1))
}

impl PhxSocket {
    /// Connects; on a refused upgrade, the HTTP status and body (status 0
    /// when no HTTP answer came: connection refused, reset…).
    pub async fn connect(base: &str, apikey: &str, opts: ConnectOptions) -> Result<PhxSocket, (u16, String)> {
        let url = endpoint(base, apikey);
        let authority = base.split("://").nth(1).unwrap_or(base).trim_end_matches('/');
        let io = |e: std::io::Error| (0u16, e.to_string());
        let addr: SocketAddr = tokio::net::lookup_host(authority).await.map_err(io)?.next().ok_or((0, "no address".to_owned()))?;
        let sock = TcpSocket::new_v4().map_err(io)?;
        if let Some(n) = opts.recv_buffer {
            sock.set_recv_buffer_size(n).map_err(io)?;
        }
        if let Some(ip) = opts.from {
            sock.bind(SocketAddr::new(ip, 0)).map_err(io)?;
        }
        let stream = sock.connect(addr).await.map_err(io)?;
        match tokio_tungstenite::client_async(url, stream).await {
            Ok((ws, _)) => Ok(PhxSocket { ws, next_ref: 0, buffered: VecDeque::new() }),
            Err(tungstenite::Error::Http(res)) => {
                let body = res.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                Err((res.status().as_u16(), body))
            }
            Err(e) => Err((0, e.to_string())),
        }
    }

    /// Sends `[join_ref, ref, topic, event, payload]`; returns the ref.
    pub async fn push(&mut self, join_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> String {
        self.next_ref += 1;
        let r = self.next_ref.to_string();
        let frame = json!([join_ref, r, topic, event, payload]).to_string();
        // A failed send shows up as `Incoming::Closed` on the next read.
        let _ = self.ws.send(Message::text(frame)).await;
        r
    }

    /// Sends a binary frame.
    pub async fn push_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send");
    }

    /// Sends `phx_join` (its ref is its join ref); returns the join ref.
    pub async fn join(&mut self, topic: &str, payload: Value) -> String {
        self.next_ref += 1;
        let r = self.next_ref.to_string();
        let frame = json!([r, r, topic, "phx_join", payload]).to_string();
        let _ = self.ws.send(Message::text(frame)).await;
        r
    }

    /// Joins and waits for the reply's payload (`null` if none came).
    pub async fn join_and_wait(&mut self, topic: &str, payload: Value) -> Value {
        let r = self.join(topic, payload).await;
        let reply = self.wait(Duration::from_secs(20), |m| m.event() == "phx_reply" && m.msg_ref() == Some(&r)).await;
        reply.map(|m| m.payload().clone()).unwrap_or(Value::Null)
    }

    /// The next message from the server, or `None` within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Incoming> {
        if let Some(m) = self.buffered.pop_front() {
            return Some(m);
        }
        self.read(within).await
    }

    async fn read(&mut self, within: Duration) -> Option<Incoming> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let frame = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Incoming::Closed),
                Ok(Some(Ok(f))) => f,
            };
            match frame {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server frames are JSON");
                    let s = |i: usize| v.get(i).and_then(Value::as_str).map(str::to_owned);
                    return Some(Incoming::Msg {
                        join_ref: s(0),
                        msg_ref: s(1),
                        topic: s(2).unwrap_or_default(),
                        event: s(3).unwrap_or_default(),
                        payload: v.get(4).cloned().unwrap_or(Value::Null),
                    });
                }
                Message::Binary(b) => return Some(Incoming::Binary(b.to_vec())),
                Message::Close(_) => return Some(Incoming::Closed),
                _ => continue,
            }
        }
    }

    /// The first message matching `pred` within `within`; others stay buffered.
    pub async fn wait(&mut self, within: Duration, pred: impl Fn(&Incoming) -> bool) -> Option<Incoming> {
        if let Some(i) = self.buffered.iter().position(&pred) {
            return self.buffered.remove(i);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.read(left).await?;
            if pred(&m) {
                return Some(m);
            }
            let closed = m == Incoming::Closed;
            self.buffered.push_back(m);
            if closed {
                return None;
            }
        }
    }

    /// Whether the server closes the socket within `within` (messages before the close are kept).
    pub async fn closes_within(&mut self, within: Duration) -> bool {
        if self.buffered.contains(&Incoming::Closed) {
            return true;
        }
        let deadline = Instant::now() + within;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.read(left).await {
                None => return false,
                Some(Incoming::Closed) => return true,
                Some(m) => self.buffered.push_back(m),
            }
        }
    }
}

/// An HS256 JWT for the test secret with `role`, `sub` and an expiry an hour away.
pub fn user_token(secret: &str, sub: &str) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + 3600;
    let claims = json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": exp});
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}
