//! [`ReplicationStream`] against a scripted fake walsender on a Unix socket
//! pair, with tokio's paused clock: delivery, acknowledgement after
//! durability, the idle rule, dedupe, heartbeats while the consumer is
//! stuck, keepalive replies, server errors and shutdown.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::*;
use crate::client::connection::Connection;
use crate::client::socket::Socket;
use crate::pgoutput::{
    Begin, Commit, Insert, PgOutputMessage, Relation, RelationColumn, ReplicaIdentity, TupleData,
    TupleValue,
};
use crate::walsender::{PrimaryKeepalive, ServerMessage, StandbyStatusUpdate, XLogData};
use crate::PgTimestamp;

struct FakeServer {
    sock: UnixStream,
    buf: BytesMut,
    last_flush: Lsn,
}

impl FakeServer {
    async fn copy_data(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        out.put_u8(b'd');
        out.put_i32(i32::try_from(payload.len() + 4).expect("small"));
        out.put_slice(payload);
        self.sock.write_all(&out).await.expect("write");
    }

    async fn xlog(&mut self, lsn: u64, msg: PgOutputMessage) {
        let mut out = BytesMut::new();
        ServerMessage::XLogData(XLogData {
            wal_start: Lsn(lsn),
            wal_end: Lsn(lsn),
            server_time: PgTimestamp(0),
            data: msg.to_bytes(),
        })
        .encode(&mut out);
        self.copy_data(&out).await;
    }

    /// A one-insert transaction whose commit ends at `end`.
    async fn txn(&mut self, end: u64, first: bool) {
        if first {
            self.xlog(
                end - 30,
                PgOutputMessage::Relation(Relation {
                    xid: None,
                    oid: 1,
                    namespace: "public".into(),
                    name: "t".into(),
                    replica_identity: ReplicaIdentity::Default,
                    columns: vec![RelationColumn {
                        flags: 1,
                        name: "id".into(),
                        type_oid: 23,
                        type_modifier: -1,
                    }],
                }),
            )
            .await;
        }
        let commit_lsn = Lsn(end - 10);
        self.xlog(
            end - 30,
            PgOutputMessage::Begin(Begin {
                final_lsn: commit_lsn,
                commit_time: PgTimestamp(0),
                xid: 1,
            }),
        )
        .await;
        let new = TupleData {
            columns: vec![TupleValue::Text(Bytes::from(end.to_string()))],
        };
        self.xlog(
            end - 20,
            PgOutputMessage::Insert(Insert {
                xid: None,
                rel_oid: 1,
                new,
            }),
        )
        .await;
        self.xlog(
            end,
            PgOutputMessage::Commit(Commit {
                flags: 0,
                commit_lsn,
                end_lsn: Lsn(end),
                commit_time: PgTimestamp(0),
            }),
        )
        .await;
    }

    async fn keepalive(&mut self, wal_end: u64, reply: bool) {
        let mut out = BytesMut::new();
        ServerMessage::Keepalive(PrimaryKeepalive {
            wal_end: Lsn(wal_end),
            server_time: PgTimestamp(0),
            reply_requested: reply,
        })
        .encode(&mut out);
        self.copy_data(&out).await;
    }

    async fn error(&mut self, code: &str) {
        let mut body = BytesMut::new();
        for (t, v) in [
            (b'S', "ERROR"),
            (b'V', "ERROR"),
            (b'C', code),
            (b'M', "boom"),
        ] {
            body.put_u8(t);
            body.put_slice(v.as_bytes());
            body.put_u8(0);
        }
        body.put_u8(0);
        let mut out = BytesMut::new();
        out.put_u8(b'E');
        out.put_i32(i32::try_from(body.len() + 4).expect("small"));
        out.put_slice(&body);
        self.sock.write_all(&out).await.expect("write");
    }

    /// The next frontend message: (tag, body).
    async fn frontend(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let frame = self.buf.split_to(len + 1).freeze();
                    return Some((frame[0], frame.slice(5..)));
                }
            }
            if self.sock.read_buf(&mut self.buf).await.expect("read") == 0 {
                return None;
            }
        }
    }

    /// The next standby status update; checks flush never goes backwards.
    async fn status(&mut self) -> StandbyStatusUpdate {
        let (tag, body) = self.frontend().await.expect("a status update");
        assert_eq!(tag, b'd');
        let s = StandbyStatusUpdate::decode(&body).expect("status update");
        assert!(s.flush >= self.last_flush, "flush went backwards");
        assert!(s.write >= s.flush);
        self.last_flush = s.flush;
        s
    }
}

fn setup(config: StreamConfig) -> (ReplicationStream, FakeServer) {
    let (client, server) = UnixStream::pair().expect("socketpair");
    let copy = CopyBothStream::new(Connection::new(Socket::Unix(client)));
    let stream = ReplicationStream::from_copy_both(copy, false, config);
    (
        stream,
        FakeServer {
            sock: server,
            buf: BytesMut::new(),
            last_flush: Lsn::ZERO,
        },
    )
}

fn config(start: u64) -> StreamConfig {
    StreamConfig {
        start_lsn: Lsn(start),
        channel_capacity: 1,
        ..StreamConfig::default()
    }
}

async fn next_txn(stream: &mut ReplicationStream) -> Transaction {
    loop {
        match stream.recv().await.expect("ok").expect("event") {
            StreamEvent::Transaction(t) => return t,
            StreamEvent::Idle { .. } | StreamEvent::Message(_) | StreamEvent::Part(_) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn acknowledges_only_after_durable() {
    // Idle rule off, to see the durable position alone.
    let (mut stream, mut server) = setup(StreamConfig {
        idle_ack: false,
        ..config(100)
    });
    server.txn(200, true).await;
    let t = next_txn(&mut stream).await;
    assert_eq!(t.end_lsn, Lsn(200));
    assert_eq!(t.changes[0].relation().map(|r| r.table.as_str()), Some("t"));
    // Not durable yet: a reply-requested keepalive gets the start position.
    server.keepalive(250, true).await;
    let s = server.status().await;
    assert_eq!((s.flush, s.write), (Lsn(100), Lsn(250)));
    // Durable: reported promptly (after the throttle), without being asked.
    let before = tokio::time::Instant::now();
    stream.report_durable(Lsn(200));
    let s = server.status().await;
    assert_eq!(s.flush, Lsn(200));
    assert!(
        before.elapsed() <= Duration::from_millis(200),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(stream.stats().flushed, Lsn(200));
}

#[tokio::test(start_paused = true)]
async fn idle_rule_acknowledges_keepalive_position() {
    let (mut stream, mut server) = setup(config(100));
    server.keepalive(1_000, true).await;
    assert_eq!(
        server.status().await.flush,
        Lsn(1_000),
        "idle: nothing open, nothing pending"
    );
    assert!(matches!(
        stream.recv().await,
        Ok(Some(StreamEvent::Idle {
            wal_end: Lsn(1_000)
        }))
    ));
    server.txn(2_000, true).await;
    next_txn(&mut stream).await;
    server.keepalive(3_000, true).await;
    assert_eq!(
        server.status().await.flush,
        Lsn(1_000),
        "delivered but not durable"
    );
    // Once the transaction is durable, the keepalive received after its
    // commit (no transaction open since) may be acknowledged.
    stream.report_durable(Lsn(2_000));
    assert_eq!(server.status().await.flush, Lsn(3_000), "idle again");
    // A transaction opening clears it: only durable positions count.
    server
        .xlog(
            3_500,
            PgOutputMessage::Begin(Begin {
                final_lsn: Lsn(3_900),
                commit_time: PgTimestamp(0),
                xid: 9,
            }),
        )
        .await;
    server.keepalive(4_000, true).await;
    assert_eq!(server.status().await.flush, Lsn(3_000));
}

#[tokio::test(start_paused = true)]
async fn without_idle_ack_only_durable_is_acknowledged() {
    let (_stream, mut server) = setup(StreamConfig {
        idle_ack: false,
        ..config(100)
    });
    server.keepalive(1_000, true).await;
    assert_eq!(server.status().await.flush, Lsn(100));
}

#[tokio::test(start_paused = true)]
async fn keepalive_during_open_transaction_is_not_acknowledged() {
    let (stream, mut server) = setup(config(100));
    server
        .xlog(
            150,
            PgOutputMessage::Begin(Begin {
                final_lsn: Lsn(190),
                commit_time: PgTimestamp(0),
                xid: 3,
            }),
        )
        .await;
    server.keepalive(5_000, true).await;
    assert_eq!(server.status().await.flush, Lsn(100));
    assert_eq!(stream.stats().received, Lsn(5_000));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_continue_while_the_consumer_is_stuck() {
    let (stream, mut server) = setup(config(100));
    // Capacity 1: the first transaction fills the channel, the second waits
    // as pending, and the socket is no longer read.
    for end in [200, 300, 400] {
        server.txn(end, end == 200).await;
    }
    let ack = stream.ack_handle();
    let t0 = tokio::time::Instant::now();
    let s = server.status().await;
    assert_eq!(s.flush, Lsn(100));
    assert!(
        t0.elapsed() >= Duration::from_secs(10),
        "first heartbeat after the interval"
    );
    let s = server.status().await;
    assert_eq!(s.flush, Lsn(100));
    assert!(t0.elapsed() >= Duration::from_secs(20));
    // Durability reported from elsewhere is still acknowledged promptly.
    let t1 = tokio::time::Instant::now();
    ack.report_durable(Lsn(200));
    assert_eq!(server.status().await.flush, Lsn(200));
    assert!(t1.elapsed() < Duration::from_secs(1));
    drop(stream);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_asked_to_reply_then_timed_out() {
    let (mut stream, mut server) = setup(config(100));
    let t0 = tokio::time::Instant::now();
    let s = server.status().await;
    assert!(
        s.reply_requested,
        "heartbeat after silence asks for a reply"
    );
    assert!(t0.elapsed() >= Duration::from_secs(10));
    // Answering keeps it alive ...
    server.keepalive(100, false).await;
    assert!(matches!(
        stream.recv().await,
        Ok(Some(StreamEvent::Idle { .. }))
    ));
    // ... silence past the receive timeout ends it, retryably.
    let t1 = tokio::time::Instant::now();
    let err = stream.recv().await.expect_err("timed out");
    assert!(
        t1.elapsed() >= Duration::from_secs(30),
        "{:?}",
        t1.elapsed()
    );
    assert!(
        matches!(err, StreamError::Client(ClientError::Timeout(_))),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn reply_requested_is_answered_at_once() {
    let (_stream, mut server) = setup(config(100));
    let t0 = tokio::time::Instant::now();
    server.keepalive(100, true).await;
    server.status().await;
    assert!(t0.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn transactions_at_or_below_start_are_skipped() {
    let (mut stream, mut server) = setup(StreamConfig {
        channel_capacity: 8,
        ..config(300)
    });
    server.txn(200, true).await;
    server.txn(300, false).await;
    server.txn(400, false).await;
    assert_eq!(next_txn(&mut stream).await.end_lsn, Lsn(400));
    assert_eq!(stream.stats().skipped, 2);
    assert_eq!(stream.stats().transactions, 1);
}

#[tokio::test(start_paused = true)]
async fn server_error_ends_the_stream() {
    let (mut stream, mut server) = setup(config(100));
    server.error("55006").await;
    let err = stream.recv().await.expect_err("error");
    assert!(
        matches!(&err, StreamError::Client(ClientError::Server(e)) if e.code == "55006"),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn malformed_data_ends_the_stream() {
    let (mut stream, mut server) = setup(config(100));
    server.copy_data(b"w\x00\x00").await;
    assert!(matches!(stream.recv().await, Err(StreamError::Decode(_))));
}

#[tokio::test(start_paused = true)]
async fn server_closing_ends_the_stream() {
    let (mut stream, server) = setup(config(100));
    drop(server);
    let err = stream.recv().await.expect_err("closed");
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_final_status_then_copy_done_and_terminate() {
    let (stream, mut server) = setup(config(100));
    stream.report_durable(Lsn(150));
    stream.shutdown().await.expect("clean shutdown");
    let mut flush = Lsn::ZERO;
    let mut tags = Vec::new();
    while let Some((tag, body)) = server.frontend().await {
        if tag == b'd' {
            flush = StandbyStatusUpdate::decode(&body).expect("status").flush;
        }
        tags.push(tag);
    }
    assert_eq!(flush, Lsn(150));
    assert_eq!(tags.last(), Some(&b'X'));
    assert!(tags.contains(&b'c'));
}
