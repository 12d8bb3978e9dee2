//! One socket's bounded outgoing queue, and the rule for a client that
//! cannot keep up.
//!
//! Replies, broadcasts, presence and live changes are *offered* to a
//! socket's queue without waiting (live changes by their fan-out group, as
//! frames already encoded and shared by every socket of the group);
//! replayed changes wait for room at most [`SLOW_GRACE`] (the replaying
//! task waits, never the hub's). When an offer finds the queue full, or
//! the queue stays full for the grace, or the hub cut the group's
//! subscription loose, the socket is **cut loose**: nothing more is queued, the writer
//! sends what is already queued, then one `system` error per joined channel
//! (for a channel with `postgres_changes`, carrying `since`: the position of
//! the last change queued for it, after which to rejoin), then closes the
//! socket. Memory per socket stays bounded and a slow socket never blocks
//! the hub, the sender of a broadcast or other sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use serde_json::json;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message;

use super::frame::{Msg, Vsn};
use crate::eventlog::Position;

/// How long a cut-loose socket gets to take what was queued for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a change waits for room in a full queue before the socket is
/// judged to have fallen behind (a burst larger than the queue is not).
pub const SLOW_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Shared {
    cut: AtomicBool,
    /// Counts sockets cut loose (shared by every socket).
    cut_count: Arc<AtomicU64>,
    notify: Notify,
    /// Joined channels: topic → the last change position queued for it
    /// (`None` for channels without `postgres_changes`).
    marks: Mutex<HashMap<String, Option<Position>>>,
}

/// One queued frame: a message to encode for the socket's version, or a
/// frame already encoded (a live change, shared by a group's sockets).
/// Small, so that a queue's first block stays small on an idle socket.
#[derive(Debug)]
pub enum Item {
    /// Encoded by the writer.
    Msg(Box<Msg>),
    /// Written as it is.
    Frame(Message),
}

/// What became of an offered change.
#[derive(Debug)]
pub enum Offer {
    /// Queued.
    Queued,
    /// The queue is full: the frame, back.
    Full(Message),
    /// The socket is cut loose or gone.
    Gone,
}

/// Frames written to the socket before one flush.
const WRITE_BATCH: usize = 64;

/// The sending side of a socket's queue (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

/// The writer's side.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
}

/// A queue of `capacity` frames; `cut_count` counts sockets cut loose.
pub fn channel(capacity: usize, cut_count: Arc<AtomicU64>) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let shared = Arc::new(Shared { cut_count, ..Shared::default() });
    (Outbox { tx, shared: Arc::clone(&shared) }, Inbox { rx, shared })
}

impl Outbox {
    /// Queues `msg` without waiting; false if the socket is (now) cut loose or gone.
    pub fn offer(&self, msg: Msg) -> bool {
        if self.is_cut() {
            return false;
        }
        match self.tx.try_send(Item::Msg(Box::new(msg))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.cut();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a change of channel `topic` at `pos` (a replayed one), waiting
    /// up to [`SLOW_GRACE`] for room, and records `pos` as the channel's
    /// resume position; false if the socket is (now) cut loose or gone.
    pub async fn send_change(&self, topic: &str, item: Item, pos: Position) -> bool {
        if self.is_cut() {
            return false;
        }
        let permit = match tokio::time::timeout(SLOW_GRACE, self.tx.reserve()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return false,
            Err(_) => {
                self.cut();
                return false;
            }
        };
        // Sending and marking under one lock: the writer reads the marks
        // after draining the queue, so a mark names exactly the last change
        // of the channel that was written.
        let Ok(mut marks) = self.shared.marks.lock() else {
            return false;
        };
        if self.is_cut() {
            return false;
        }
        permit.send(item);
        if let Some(m) = marks.get_mut(topic) {
            *m = Some(pos);
        }
        true
    }

    /// Queues an encoded change `frame` of channel `topic` at `pos` without
    /// waiting, and records `pos` as the channel's resume position. A full
    /// queue hands the frame back (the caller decides how long to wait).
    pub fn offer_change(&self, topic: &str, frame: Message, pos: Position) -> Offer {
        let Ok(mut marks) = self.shared.marks.lock() else {
            return Offer::Gone;
        };
        if self.is_cut() {
            return Offer::Gone;
        }
        match self.tx.try_send(Item::Frame(frame)) {
            Ok(()) => {
                if let Some(m) = marks.get_mut(topic) {
                    *m = Some(pos);
                }
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(Item::Frame(f))) => Offer::Full(f),
            Err(_) => Offer::Gone,
        }
    }

    /// Registers a joined channel; `start` is its resume position before any
    /// change was queued (`None` for channels without `postgres_changes`).
    pub fn track(&self, topic: &str, start: Option<Position>) {
        if let Ok(mut m) = self.shared.marks.lock() {
            m.insert(topic.to_owned(), start);
        }
    }

    /// Forgets a channel that was left.
    pub fn untrack(&self, topic: &str) {
        if let Ok(mut m) = self.shared.marks.lock() {
            m.remove(topic);
        }
    }

    /// Cuts the socket loose (idempotent).
    pub fn cut(&self) {
        if !self.shared.cut.swap(true, Ordering::SeqCst) {
            self.shared.cut_count.fetch_add(1, Ordering::Relaxed);
            self.shared.notify.notify_one();
        }
    }

    /// Whether the socket was cut loose.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Frames that may still be queued.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// Frames queued now.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Why the writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterEnd {
    /// Every sender went away or the socket closed.
    Closed,
    /// The socket was cut loose for falling behind.
    CutLoose,
}

impl Inbox {
    /// Writes queued frames to `sink` until the queue closes, a `__close`
    /// frame, a write error, or a cut (then: the rest of the queue, the
    /// `system` messages, a close frame).
    pub async fn run<S>(mut self, mut sink: S, vsn: Vsn) -> WriterEnd
    where
        S: Sink<Message> + Unpin,
    {
        let shared = Arc::clone(&self.shared);
        let end = 'run: loop {
            tokio::select! {
                biased;
                () = shared.notify.notified() => break WriterEnd::CutLoose,
                m = self.rx.recv() => {
                    let Some(mut m) = m else { break WriterEnd::Closed };
                    // What is queued now goes out in one batch, then one flush.
                    let mut n = 0;
                    loop {
                        if is_close(&m) {
                            let _ = sink.send(Message::Close(None)).await;
                            break 'run WriterEnd::Closed;
                        }
                        if !feed(&mut sink, m, vsn).await {
                            break 'run WriterEnd::Closed;
                        }
                        n += 1;
                        match self.rx.try_recv() {
                            Ok(next) if n < WRITE_BATCH => m = next,
                            Ok(next) => {
                                if sink.flush().await.is_err() {
                                    break 'run WriterEnd::Closed;
                                }
                                n = 0;
                                m = next;
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        break WriterEnd::Closed;
                    }
                }
            }
        };
        if end == WriterEnd::CutLoose {
            let flush = async {
                // Nothing more is queued after the cut (outstanding permits
                // still land): send what is there, then tell each channel
                // where to resume.
                self.rx.close();
                while let Some(m) = self.rx.recv().await {
                    if !is_close(&m) && !feed(&mut sink, m, vsn).await {
                        return;
                    }
                }
                let marks: Vec<(String, Option<Position>)> =
                    shared.marks.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default();
                for (topic, mark) in marks {
                    if !feed(&mut sink, Item::Msg(Box::new(cut_notice(&topic, mark))), vsn).await {
                        return;
                    }
                }
                let _ = sink.send(Message::Close(None)).await;
            };
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, flush).await;
        }
        let _ = sink.close().await;
        end
    }
}

/// The socket's own request to close it (after a refused join).
fn is_close(item: &Item) -> bool {
    matches!(item, Item::Msg(m) if m.event == "__close")
}

/// Hands one frame to the sink (written once its buffer fills, or at the next flush).
async fn feed<S: Sink<Message> + Unpin>(sink: &mut S, item: Item, vsn: Vsn) -> bool {
    let frame = match item {
        Item::Frame(f) => f,
        Item::Msg(m) => match m.encode(vsn) {
            Some(w) => Message::from(w),
            // Not representable for this socket's version (a binary broadcast to vsn 1): dropped.
            None => return true,
        },
    };
    sink.feed(frame).await.is_ok()
}

/// The `system` message telling a channel it was cut loose, and where to resume.
pub fn cut_notice(topic: &str, mark: Option<Position>) -> Msg {
    let name = topic.strip_prefix("realtime:").unwrap_or(topic);
    let payload = match mark {
        Some(p) => json!({
            "extension": "postgres_changes",
            "status": "error",
            "message": format!("This client fell behind and was disconnected; rejoin with config.since = \"{p}\" to resume"),
            "channel": name,
            "since": p.to_string(),
        }),
        None => json!({
            "extension": "system",
            "status": "error",
            "message": "This client fell behind and was disconnected",
            "channel": name,
        }),
    };
    Msg::new(None, None, topic, "system", payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::Lsn;

    fn msg(n: u32) -> Item {
        Item::Msg(Box::new(Msg::new(None, None, "realtime:t", "postgres_changes", json!({ "n": n }))))
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_socket_and_the_writer_sends_resume_positions_last() {
        let count = Arc::new(AtomicU64::new(0));
        let (out, inbox) = channel(2, Arc::clone(&count));
        out.track("realtime:t", Some(Position::new(Lsn(5), 0)));
        out.track("realtime:b", None);
        assert!(out.send_change("realtime:t", msg(1), Position::new(Lsn(10), 0)).await);
        assert!(matches!(out.offer_change("realtime:t", Message::text(r#"{"n":2}"#), Position::new(Lsn(10), 1)), Offer::Queued));
        // Nobody drains the queue: after the grace, the socket is cut.
        assert!(!out.send_change("realtime:t", msg(3), Position::new(Lsn(11), 0)).await, "full for the grace: cut");
        assert!(out.is_cut());
        assert_eq!(count.load(Ordering::Relaxed), 1);
        assert!(!out.offer(Msg::new(None, None, "realtime:t", "x", json!({}))), "nothing after the cut");
        assert!(matches!(out.offer_change("realtime:t", Message::text("{}"), Position::new(Lsn(12), 0)), Offer::Gone), "nor a change");
        let (tx, mut got) = mpsc::unbounded_channel::<Message>();
        let sink = futures_util::sink::unfold(tx, |tx, m: Message| async move {
            let _ = tx.send(m);
            Ok::<_, std::convert::Infallible>(tx)
        });
        let end = inbox.run(Box::pin(sink), Vsn::V2).await;
        assert_eq!(end, WriterEnd::CutLoose);
        let mut texts = Vec::new();
        while let Ok(m) = got.try_recv() {
            match m {
                Message::Text(t) => texts.push(t.as_str().to_owned()),
                Message::Close(_) => texts.push("<close>".into()),
                _ => {}
            }
        }
        assert_eq!(texts.len(), 5, "{texts:?}");
        assert!(texts[0].contains(r#"{"n":1}"#) && texts[1].contains(r#"{"n":2}"#));
        let notices = &texts[2..4];
        let t = notices.iter().find(|t| t.contains("realtime:t")).expect("notice for t");
        assert!(t.contains(&format!(r#""since":"{}""#, Position::new(Lsn(10), 1))), "{t}");
        assert!(notices.iter().any(|t| t.contains("realtime:b") && !t.contains("since")));
        assert_eq!(texts[4], "<close>");
    }
}

#[cfg(test)]
mod offer_tests {
    use super::*;
    use crate::eventlog::Lsn;

    #[tokio::test]
    async fn offering_a_change_to_a_full_queue_hands_it_back() {
        let count = Arc::new(AtomicU64::new(0));
        let (out, _inbox) = channel(1, Arc::clone(&count));
        out.track("realtime:t", None);
        assert!(matches!(out.offer_change("realtime:t", Message::text("a"), Position::new(Lsn(1), 0)), Offer::Queued));
        let back = out.offer_change("realtime:t", Message::text("b"), Position::new(Lsn(2), 0));
        assert!(matches!(back, Offer::Full(Message::Text(t)) if t.as_str() == "b"), "full: the frame comes back");
        assert!(!out.is_cut());
        let marks = out.shared.marks.lock().map(|m| m.get("realtime:t").copied()).ok().flatten();
        assert_eq!(marks, Some(Some(Position::new(Lsn(1), 0))), "the mark is the last change queued");
    }
}
