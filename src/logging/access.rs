//! The access log: one line per request.
//!
//! In the JSON format its line is written here, straight to stderr, in
//! the shape `tracing-subscriber` gives every other line (`timestamp`,
//! `level`, `fields`, `target`). `tracing`'s JSON formatter re-reads its
//! fields through a visitor into a map before writing them, and that was
//! a tenth of the server's CPU on a GET by primary key
//! (`docs/performance.md`, tenth session). The line still obeys the log
//! filter (`[log] level`, `RUST_LOG`) for the target
//! `fluxbase::http::edge`. On a terminal, and for failed requests, the line
//! goes through `tracing` as any other.
//!
//! On a connection thread ([`crate::http::threads`]) lines are held and
//! written together, as nginx's `access_log … buffer= flush=` does: once
//! [`FLUSH_BYTES`] are held, or [`FLUSH_AFTER`] after the first held line,
//! and when the thread ends. A write per line was half of the line's cost.
//! A process killed outright loses at most the last [`FLUSH_AFTER`] of
//! access lines.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// The target the access line is logged under, as before it had a writer.
const TARGET: &str = "fluxbase::http::edge";

/// `tracing-subscriber`'s JSON timestamps: UTC, microseconds.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Whether the installed subscriber writes JSON lines to stderr.
static JSON: AtomicBool = AtomicBool::new(false);

/// Held lines are written once they take this many bytes…
pub const FLUSH_BYTES: usize = 32 * 1024;
/// …or this long after the first of them was held.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// Lines held by this thread, written when dropped (the thread ends).
struct Held(Vec<u8>);

impl Held {
    fn write_out(&mut self) {
        if !self.0.is_empty() {
            // One write for all of them, as the subscriber's lines.
            let _ = std::io::stderr().lock().write_all(&self.0);
            self.0.clear();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.write_out();
    }
}

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held(Vec::new())) };
}

/// Called by [`super::init`] once its subscriber is installed.
pub(super) fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// One request: who asked what, and how it ended.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Request<'a> {
    /// The request id (`X-Request-Id`).
    pub request_id: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// Time from the request's head to the response's, in milliseconds.
    pub ms: f64,
}

#[derive(Serialize)]
struct Fields<'a> {
    message: &'static str,
    #[serde(flatten)]
    request: Request<'a>,
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a str,
    level: &'static str,
    fields: Fields<'a>,
    target: &'static str,
}

/// Logs `r`: at info, or at warn for a server error.
pub fn log(r: Request<'_>) {
    let Request { request_id, method, path, status, ms } = r;
    if status >= 500 {
        tracing::warn!(target: TARGET, %request_id, %method, %path, status, ms, "request failed");
    } else if !JSON.load(Ordering::Relaxed) {
        tracing::info!(target: TARGET, %request_id, %method, %path, status, ms, "request");
    } else if tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        let _ = HELD.try_with(|held| {
            let Ok(mut held) = held.try_borrow_mut() else { return };
            let start = held.0.len();
            if encode(&mut held.0, r, OffsetDateTime::now_utc()).is_err() {
                held.0.truncate(start);
                return;
            }
            // Lines are held only where a flush is sure to run on the same
            // thread: a connection thread's own (single-threaded) runtime.
            let holding = crate::http::threads::current().is_some() && tokio::runtime::Handle::try_current().is_ok();
            if !holding || held.0.len() >= FLUSH_BYTES {
                held.write_out();
            } else if start == 0 {
                tokio::spawn(async {
                    tokio::time::sleep(FLUSH_AFTER).await;
                    flush();
                });
            }
        });
    }
}

/// Writes the lines this thread holds.
pub fn flush() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.write_out();
        }
    });
}

/// Appends `r`'s JSON line, newline included, to `buf`.
fn encode(buf: &mut Vec<u8>, r: Request<'_>, now: OffsetDateTime) -> Result<(), serde_json::Error> {
    let timestamp = now.format(TIMESTAMP).map_err(serde::ser::Error::custom)?;
    let line = Line { timestamp: &timestamp, level: "INFO", fields: Fields { message: "request", request: r }, target: TARGET };
    serde_json::to_writer(&mut *buf, &line)?;
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_the_shape_of_the_subscribers_json_lines() {
        let mut buf = Vec::new();
        let r = Request { request_id: "r\"1", method: "GET", path: "/rest/v1/items", status: 200, ms: 1.25 };
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_789).expect("time");
        encode(&mut buf, r, now).expect("encode");
        assert_eq!(buf.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("one JSON object");
        assert_eq!(
            v,
            serde_json::json!({
                "timestamp": "2025-12-06T05:46:40.123456Z",
                "level": "INFO",
                "fields": {"message": "request", "request_id": "r\"1", "method": "GET", "path": "/rest/v1/items", "status": 200, "ms": 1.25},
                "target": "fluxbase::http::edge",
            })
        );
        let text = std::str::from_utf8(&buf).expect("utf-8");
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
    }
}
