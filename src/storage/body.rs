//! Request bodies as byte streams, bounded JSON bodies, and JSON responses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use warp::reply::Response;

use super::errors::{StorageError, StorageResult};

/// A request body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Largest JSON request body, bytes.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// Reads a JSON body of at most [`MAX_JSON_BYTES`]; an empty body reads as `{}`.
pub async fn json<T: DeserializeOwned>(mut body: BodyStream) -> StorageResult<T> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::Body(e.to_string()))?;
        if buf.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(StorageError::InvalidRequest("body too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    let bytes: &[u8] = if buf.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &buf };
    serde_json::from_slice(bytes).map_err(|e| StorageError::InvalidRequest(format!("body/{e}")))
}

/// Reads and drops what is left of `body`, up to `max_bytes` and `max_time`
/// (whichever comes first), so a client still sending gets our answer.
pub async fn drain(body: &mut BodyStream, max_bytes: u64, max_time: std::time::Duration) {
    let read = async {
        let mut seen: u64 = 0;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > max_bytes {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(max_time, read).await;
}

/// A JSON response.
pub fn json_reply(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut res = Response::new(value.to_string().into());
    *res.status_mut() = status;
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    res
}

/// 200 with `{"message": …}`.
pub fn message(text: &str) -> Response {
    json_reply(StatusCode::OK, &serde_json::json!({ "message": text }))
}

/// A `Send + Sync` stream over a bounded channel: lets a `Send`-only stream
/// (object_store's) become a response body, with at most `capacity` chunks
/// in flight, so downloads run in constant memory.
pub struct ChannelStream(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Chunk size for reading local files (object_store's own stream reads 8 KiB at a time).
const FILE_CHUNK: usize = 1 << 20;

/// How far ahead of the read position the kernel is asked to have the file
/// in memory. Its own readahead window (128 KiB by default, grown while
/// reads stay sequential) keeps one small request in flight at a time; this
/// keeps the disk's queue full while the bytes in hand go out to the client.
const PREFETCH: u64 = 32 << 20;

/// Streams a `get` result: local files are read in 1 MiB chunks on the
/// blocking pool; other stores' streams are pumped as they come.
pub fn pump_get(got: object_store::GetResult) -> ChannelStream {
    match got.payload {
        object_store::GetResultPayload::File(file, _) => {
            let (tx, rx) = mpsc::channel(4);
            let range = got.range;
            tokio::task::spawn_blocking(move || read_file(file, range, &tx));
            ChannelStream(rx)
        }
        object_store::GetResultPayload::Stream(s) => pump(s),
    }
}

fn read_file(
    mut file: std::fs::File,
    range: std::ops::Range<u64>,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    use std::io::{Read, Seek, SeekFrom};
    if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
        let _ = tx.blocking_send(Err(e));
        return;
    }
    let mut left = range.end.saturating_sub(range.start);
    let mut pos = range.start;
    prefetch(&file, pos, PREFETCH.min(left));
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(FILE_CHUNK).min(FILE_CHUNK);
        // Keep the window PREFETCH ahead: ask for the chunk that enters it.
        let ahead = pos + PREFETCH;
        if ahead < range.end {
            prefetch(&file, ahead, (range.end - ahead).min(FILE_CHUNK as u64));
        }
        let mut buf = BytesMut::zeroed(want);
        match file.read(&mut buf) {
            Ok(0) => {
                let _ = tx.blocking_send(Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object shorter than recorded")));
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                left -= n as u64;
                pos += n as u64;
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// Asks the kernel to start reading `len` bytes at `offset` into the page
/// cache (`POSIX_FADV_WILLNEED`); returns at once. Only a hint: a failure
/// just leaves the read to the kernel's own readahead.
fn prefetch(file: &std::fs::File, offset: u64, len: u64) {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    let _ = posix_fadvise(file, offset, len, PosixFadviseAdvice::POSIX_FADV_WILLNEED);
}

/// Pumps `source` into a [`ChannelStream`] from a task; the task stops when
/// the client goes away.
pub fn pump<S>(mut source: S) -> ChannelStream
where
    S: Stream<Item = Result<Bytes, object_store::Error>> + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(item) = source.next().await {
            let item = item.map_err(std::io::Error::other);
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    ChannelStream(rx)
}
