//! Realtime limits and backpressure over real sockets: connections per IP
//! and per user, joins per second, and a subscriber that stops reading
//! (cut loose with its resume position, then resumed with exactly what it
//! missed, while the others keep receiving).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::ws::{user_token, ConnectOptions, Incoming, PhxSocket};
use crate::harness::{TestDatabase, TestServer, TEST_JWT_SECRET};

const T: Duration = Duration::from_secs(20);

fn from(last: u8) -> ConnectOptions {
    ConnectOptions { from: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))), recv_buffer: None }
}

async fn stats(s: &TestServer) -> Value {
    let res = s.http().get(format!("{}/realtime/v1/stats", s.url)).header("apikey", &s.keys.service_role).send().await.expect("stats");
    res.json().await.expect("stats json")
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn anonymous_sockets_are_limited_per_ip_with_supabases_429() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.realtime.max_connections_per_ip = 2).await;
    let a = PhxSocket::connect(&s.url, &s.keys.anon, from(11)).await.expect("first");
    let _b = PhxSocket::connect(&s.url, &s.keys.anon, from(11)).await.expect("second");
    let Err((status, body)) = PhxSocket::connect(&s.url, &s.keys.anon, from(11)).await else { panic!("third socket admitted") };
    assert_eq!(status, 429);
    let body: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(body["error"], "Too many connected users", "{body}");
    // Another address is not affected.
    let _c = PhxSocket::connect(&s.url, &s.keys.anon, from(12)).await.expect("other IP");
    // Closing a socket frees its slot.
    drop(a);
    eventually("a freed slot", async || PhxSocket::connect(&s.url, &s.keys.anon, from(11)).await.is_ok()).await;
    assert!(stats(&s).await["connections_refused"].as_u64() >= Some(1));
    s.shutdown().await;
}

#[tokio::test]
async fn sockets_are_limited_per_user_and_a_users_socket_leaves_the_ip_count() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| {
        c.realtime.max_connections_per_user = 2;
        c.realtime.max_connections_per_ip = 3;
    })
    .await;
    let alice = user_token(TEST_JWT_SECRET, "00000000-0000-0000-0000-00000000000a");
    let bob = user_token(TEST_JWT_SECRET, "00000000-0000-0000-0000-00000000000b");
    let join = |token: &str| json!({"config": {"broadcast": {"self": false}}, "access_token": token});
    let mut socks = Vec::new();
    for _ in 0..2 {
        let mut sock = PhxSocket::connect(&s.url, &s.keys.anon, from(21)).await.expect("connect");
        let reply = sock.join_and_wait("realtime:room", join(&alice)).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        socks.push(sock);
    }
    // Alice's third socket: the join is refused with the reference's reason.
    let mut third = PhxSocket::connect(&s.url, &s.keys.anon, from(21)).await.expect("connect");
    let reply = third.join_and_wait("realtime:room", join(&alice)).await;
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["response"]["reason"], "ConnectionRateLimitReached: Too many connected users");
    // The same socket may still serve another user.
    let reply = third.join_and_wait("realtime:other", join(&bob)).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    // Alice's two sockets and Bob's count against their users, not the IP
    // (limit 3): more anonymous sockets from it are admitted.
    let mut anon = Vec::new();
    for _ in 0..3 {
        anon.push(PhxSocket::connect(&s.url, &s.keys.anon, from(21)).await.expect("anonymous socket"));
    }
    assert!(PhxSocket::connect(&s.url, &s.keys.anon, from(21)).await.is_err(), "the IP's own limit still holds");
    // Closing one of Alice's sockets lets her join again.
    drop(socks.pop());
    eventually("Alice's freed slot", async || {
        let Ok(mut sock) = PhxSocket::connect(&s.url, &s.keys.anon, from(22)).await else {
            return false;
        };
        sock.join_and_wait("realtime:room", join(&alice)).await["status"] == "ok"
    })
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn joins_over_the_rate_are_refused_and_the_socket_closed() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.realtime.max_joins_per_second = 2).await;
    let mut sock = PhxSocket::connect(&s.url, &s.keys.anon, ConnectOptions::default()).await.expect("connect");
    let mut refs = Vec::new();
    for i in 0..6 {
        refs.push(sock.join(&format!("realtime:r{i}"), json!({"config": {}})).await);
    }
    // A bucket of 2 refilled at 2/s: six joins sent at once cannot all pass.
    let refused = sock.wait(T, |m| m.event() == "phx_reply" && m.payload()["status"] == "error").await.expect("a refused join");
    assert_eq!(refused.payload()["response"]["reason"], "ClientJoinRateLimitReached: Too many joins per second");
    assert!(sock.closes_within(T).await, "the socket is closed after a refused join, as the reference does");
    assert!(stats(&s).await["joins_rate_limited"].as_u64() >= Some(1));
    s.shutdown().await;
}

/// Ids of `postgres_changes` INSERTs and the `since` of a cut-loose notice, read until close.
fn ids_of(msgs: &[Incoming]) -> Vec<i64> {
    msgs.iter().filter(|m| m.event() == "postgres_changes").filter_map(|m| m.payload()["data"]["record"]["id"].as_i64()).collect()
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_cut_loose_and_resumes_exactly() {
    let s = TestServer::start_with(TestDatabase::fresh().await, |c| c.realtime.send_queue = 256).await;
    let db = s.db.client().await;
    db.batch_execute("create table public.slow_items (id bigint primary key, body text not null)").await.expect("table");
    let join = json!({"config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "slow_items"}]}, "access_token": s.keys.service_role});
    // A small receive buffer so the server's writes back up after a few frames.
    let mut slow = PhxSocket::connect(&s.url, &s.keys.anon, ConnectOptions { from: None, recv_buffer: Some(4096) }).await.expect("slow");
    let mut fast = PhxSocket::connect(&s.url, &s.keys.anon, ConnectOptions::default()).await.expect("fast");
    for sock in [&mut slow, &mut fast] {
        let reply = sock.join_and_wait("realtime:slow", join.clone()).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        sock.wait(T, |m| m.event() == "system").await.expect("subscribed");
    }
    // The fast one reads everything, concurrently.
    let (fast_tx, mut fast_rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let fast_task = tokio::spawn(async move {
        while let Some(m) = fast.next(Duration::from_secs(30)).await {
            if let Some(id) = m.payload()["data"]["record"]["id"].as_i64() {
                if fast_tx.send(id).is_err() {
                    break;
                }
            }
            if m == Incoming::Closed {
                break;
            }
        }
    });
    // Commit batches of 2 KB rows until the slow socket is cut loose, then a few more.
    let body = "x".repeat(2048);
    let mut next_id = 1i64;
    let mut batches_after_cut = None;
    while batches_after_cut != Some(0) {
        db.execute("insert into public.slow_items select g, $2 from generate_series($1::bigint, $1::bigint + 199) g", &[&next_id, &body])
            .await
            .expect("insert");
        next_id += 200;
        assert!(next_id < 200_000, "the slow socket was never cut loose");
        batches_after_cut = match batches_after_cut {
            Some(n) => Some(n - 1),
            None if stats(&s).await["slow_disconnects"].as_u64() >= Some(1) => Some(3),
            None => None,
        };
    }
    let total = next_id - 1;
    // The fast subscriber got every row, in order.
    let mut got_fast = Vec::new();
    while got_fast.len() < total as usize {
        match tokio::time::timeout(T, fast_rx.recv()).await {
            Ok(Some(id)) => got_fast.push(id),
            _ => break,
        }
    }
    assert_eq!(got_fast, (1..=total).collect::<Vec<_>>(), "the fast subscriber is not held back");
    // The slow one now reads: what was queued, then the notice with its resume position, then the close.
    let mut before = Vec::new();
    let notice = loop {
        let m = slow.next(T).await.expect("frames queued for the slow socket");
        if m.event() == "system" && m.payload()["status"] == "error" {
            break m;
        }
        assert_ne!(m, Incoming::Closed, "closed without a notice");
        before.push(m);
    };
    let since = notice.payload()["since"].as_str().expect("since in the notice").to_owned();
    assert!(notice.payload()["message"].as_str().unwrap_or("").contains(&since));
    assert!(slow.closes_within(T).await, "then the socket is closed");
    let seen = ids_of(&before);
    assert!(seen.len() < total as usize, "the slow socket did fall behind");
    assert_eq!(seen, (1..=seen.len() as i64).collect::<Vec<_>>(), "a prefix, in order");
    // Rejoin with config.since: exactly the rest, once each, in order.
    let mut again = PhxSocket::connect(&s.url, &s.keys.anon, ConnectOptions::default()).await.expect("reconnect");
    let mut rejoin = join.clone();
    rejoin["config"]["since"] = Value::String(since);
    let reply = again.join_and_wait("realtime:slow", rejoin).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    let mut rest = Vec::new();
    while rest.len() < total as usize - seen.len() {
        let Some(m) = again.next(T).await else { break };
        if let Some(id) = m.payload()["data"]["record"]["id"].as_i64() {
            rest.push(id);
        }
    }
    assert_eq!(rest, (seen.len() as i64 + 1..=total).collect::<Vec<_>>(), "exactly what was missed");
    assert!(again.next(Duration::from_millis(500)).await.is_none_or(|m| m.event() != "postgres_changes"), "no duplicate");
    fast_task.abort();
    s.shutdown().await;
}
