//! A minimal Server-Sent Events client for tests of `/changes/v1/stream`.

use std::time::Duration;

use futures_util::StreamExt;

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `id:` (empty if none).
    pub id: String,
    /// `event:` (`message` if none).
    pub event: String,
    /// `data:` lines joined.
    pub data: String,
}

impl SseEvent {
    /// `data` parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// An open event stream.
pub struct SseClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
    /// The response status.
    pub status: u16,
}

impl SseClient {
    /// Opens `url` with `key` as apikey and bearer, resuming after `last_event_id`.
    pub async fn open(url: &str, key: &str, bearer: Option<&str>, last_event_id: Option<&str>) -> SseClient {
        let mut req = reqwest::Client::new().get(url).header("apikey", key).header("accept", "text/event-stream");
        req = req.bearer_auth(bearer.unwrap_or(key));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("SSE request");
        let status = res.status().as_u16();
        SseClient { body: Box::pin(res.bytes_stream()), buf: String::new(), status }
    }

    /// The next event (comments skipped), or `None` on end of stream or timeout.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent { id: String::new(), event: "message".into(), data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = v.trim_start().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim_start().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !ev.data.is_empty() {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next()).await.ok()??.ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Collects `change` events until `n` arrived or `within` passed.
    pub async fn collect(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if e.event == "change" => out.push(e),
                Some(_) => {}
                None => break,
            }
        }
        out
    }
}
