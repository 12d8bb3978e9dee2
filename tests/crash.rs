//! The crash suite: a writer commits numbered transactions into a
//! ground-truth table while Fluxbase is killed with `kill -9` and restarted,
//! PostgreSQL crashes (`pg_ctl stop -m immediate`, the supervisor restarts
//! it), and the SSE reader drops its connection and resumes with
//! `Last-Event-ID`. The checker proves every committed change arrived
//! exactly once and in commit order, and that the slot never got ahead of
//! the log. The realtime test does the same for a WebSocket subscriber that
//! rejoins with `config.since` after Fluxbase is killed with `kill -9`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::server::{run_binary, TestProcess};
use crate::harness::sse::SseClient;
use crate::harness::ws::{ConnectOptions, PhxSocket};

const TOTAL: i64 = 400;

fn status(data: &Path) -> Value {
    let out = run_binary(&["status", "--json", "--data-dir", data.to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("json")
}

async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inserts 1..=TOTAL one transaction each, reconnecting through crashes.
/// A unique violation on retry means the earlier attempt did commit.
async fn writer(db_url: String, acked: Arc<Mutex<i64>>) {
    let mut n = 1;
    let mut client: Option<tokio_postgres::Client> = None;
    while n <= TOTAL {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = fluxbase::database::connect_one(&db_url, "crash-writer").await.ok();
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let Some(c) = &client else { continue };
        match c.execute("insert into public.ground (n) values ($1)", &[&n]).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(_) => {
                client = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        if let Ok(mut a) = acked.lock() {
            *a = n;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads the stream, resuming with Last-Event-ID after every disconnect;
/// drops the connection on purpose every 150 events.
async fn reader(url: String, key: String, got: Arc<Mutex<Vec<i64>>>) {
    let mut last: Option<String> = None;
    loop {
        let stream_url = format!("{url}/changes/v1/stream?tables=public.ground&from=start");
        let mut sse = SseClient::open_retrying(&stream_url, &key, last.as_deref()).await;
        let mut this_connection = 0;
        while let Some(e) = sse.next(Duration::from_secs(5)).await {
            if e.event != "change" {
                continue;
            }
            let n = e.json()["record"]["n"].as_i64().unwrap_or(-1);
            last = Some(e.id.clone());
            let done = match got.lock() {
                Ok(mut g) => {
                    g.push(n);
                    g.len() as i64 >= TOTAL && g.last() == Some(&TOTAL)
                }
                Err(_) => true,
            };
            if done {
                return;
            }
            this_connection += 1;
            if this_connection == 150 {
                break; // a dropped socket
            }
        }
    }
}

impl SseClient {
    async fn open_retrying(url: &str, key: &str, last: Option<&str>) -> SseClient {
        loop {
            let ok = reqwest::Client::new()
                .get(url.replace("/changes/v1/stream", "/health"))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if ok {
                let c = SseClient::open(url, key, None, last).await;
                if c.status == 200 {
                    return c;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn pg_ctl_immediate_stop(pgdata: &Path) {
    let bins = fluxbase::embedded::binaries::Binaries::find("").expect("binaries");
    let pg_ctl = bins.program("pg_ctl");
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_ctl);
        c
    } else {
        std::process::Command::new(pg_ctl)
    };
    let out = cmd.arg("-D").arg(pgdata).args(["-m", "immediate", "-w", "stop"]).output().expect("pg_ctl");
    assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Fluxbase child process on its own data directory, with what the crash
/// tests need to reach it, its database and its PostgreSQL data directory.
struct Crashable {
    _dir: tempfile::TempDir,
    data: PathBuf,
    server: TestProcess,
    db_url: String,
    key: String,
    pgdata: PathBuf,
}

impl Crashable {
    /// Starts a server on a fresh data directory and runs `ddl`.
    async fn start(ddl: &str) -> Crashable {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let data = dir.path().join("fb");
        let mut server = TestProcess::spawn(&data, &[], &[]);
        server.wait_healthy(Duration::from_secs(90)).await;
        let st = status(&data);
        let db_url = st["db_url"].as_str().expect("db_url").to_owned();
        let key = st["service_role_key"].as_str().expect("key").to_owned();
        let setup = fluxbase::database::connect_one(&db_url, "crash-setup").await.expect("connect");
        setup.batch_execute(ddl).await.expect("ddl");
        drop(setup);
        let record: Value = serde_json::from_slice(&std::fs::read(data.join("cluster.json")).expect("cluster.json")).expect("json");
        let pgdata = PathBuf::from(record["base"].as_str().expect("base")).join("pg");
        Crashable { _dir: dir, data, server, db_url, key, pgdata }
    }

    /// `kill -9` of Fluxbase (its PostgreSQL goes down with it), then a restart on the same port.
    async fn kill_and_restart(&mut self) {
        self.server.signal(Signal::SIGKILL);
        self.server.wait_exit(Duration::from_secs(10)).await;
        let port: u16 = self.server.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        self.server = TestProcess::spawn_on(port, &self.data, &[], &[]);
        self.server.wait_healthy(Duration::from_secs(90)).await;
    }

    async fn stop(mut self) {
        self.server.signal(Signal::SIGTERM);
        self.server.wait_exit(Duration::from_secs(60)).await;
    }
}

#[tokio::test]
async fn nothing_lost_or_duplicated_through_crashes() {
    let mut c = Crashable::start("create table public.ground (n bigint primary key)").await;
    let (db_url, key) = (c.db_url.clone(), c.key.clone());

    let acked = Arc::new(Mutex::new(0i64));
    let got = Arc::new(Mutex::new(Vec::new()));
    let w = tokio::spawn(writer(db_url.clone(), Arc::clone(&acked)));
    let r = tokio::spawn(reader(c.server.url.clone(), key.clone(), Arc::clone(&got)));
    let acked_at_least = |n: i64| {
        let a = Arc::clone(&acked);
        move || a.lock().map(|v| *v >= n).unwrap_or(true)
    };

    // (a) kill -9 of Fluxbase (its PostgreSQL goes down with it), then restart.
    wait_for("100 commits", Duration::from_secs(60), acked_at_least(100)).await;
    c.kill_and_restart().await;

    // (b) PostgreSQL crashes; the supervisor restarts it.
    wait_for("250 commits", Duration::from_secs(90), acked_at_least(250)).await;
    pg_ctl_immediate_stop(&c.pgdata);

    // (c) the reader drops its socket every 150 events on its own.
    wait_for("all commits", Duration::from_secs(120), acked_at_least(TOTAL)).await;
    w.await.expect("writer");
    tokio::time::timeout(Duration::from_secs(120), r).await.expect("reader finished in time").expect("reader");

    let got = got.lock().expect("lock").clone();
    let expected: Vec<i64> = (1..=TOTAL).collect();
    assert_eq!(got, expected, "every committed change exactly once, in commit order");

    // The slot never got ahead of the log.
    let st: Value = reqwest::Client::new()
        .get(format!("{}/changes/v1/status", c.server.url))
        .header("apikey", &key)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    let flush: fluxbase::eventlog::Lsn = st["slot"]["confirmed_flush_lsn"].as_str().expect("flush").parse().expect("lsn");
    let durable: fluxbase::eventlog::Lsn = st["log"]["durable_lsn"].as_str().expect("durable").parse().expect("lsn");
    assert!(flush <= durable, "slot flush {flush} ahead of the log's durable {durable}");
    c.stop().await;
}

/// A realtime subscriber of `public.ground`: joins with `config.since` (the
/// log's start the first time, then the `data.position` of the last change
/// it got), reconnecting whenever the socket goes away.
async fn realtime_reader(url: String, key: String, got: Arc<Mutex<Vec<i64>>>) {
    let mut since = fluxbase::eventlog::Position::START.to_string();
    loop {
        let Ok(mut sock) = PhxSocket::connect(&url, &key, ConnectOptions::default()).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let join = serde_json::json!({
            "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "ground"}], "since": since},
            "access_token": key,
        });
        if sock.join_and_wait("realtime:ground", join).await["status"] != "ok" {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        while let Some(m) = sock.next(Duration::from_secs(5)).await {
            if m == crate::harness::ws::Incoming::Closed {
                break;
            }
            if m.event() != "postgres_changes" {
                continue;
            }
            let data = &m.payload()["data"];
            since = data["position"].as_str().expect("position").to_owned();
            let done = match got.lock() {
                Ok(mut g) => {
                    g.push(data["record"]["n"].as_i64().unwrap_or(-1));
                    g.last() == Some(&TOTAL)
                }
                Err(_) => true,
            };
            if done {
                return;
            }
        }
    }
}

#[tokio::test]
async fn realtime_resume_across_kill_9_is_exactly_once_in_order() {
    let mut c = Crashable::start("create table public.ground (n bigint primary key)").await;
    let (db_url, key) = (c.db_url.clone(), c.key.clone());

    let acked = Arc::new(Mutex::new(0i64));
    let got = Arc::new(Mutex::new(Vec::new()));
    let w = tokio::spawn(writer(db_url.clone(), Arc::clone(&acked)));
    let r = tokio::spawn(realtime_reader(c.server.url.clone(), key.clone(), Arc::clone(&got)));
    let received_at_least = |n: usize| {
        let g = Arc::clone(&got);
        move || g.lock().map(|v| v.len() >= n).unwrap_or(true)
    };
    // Kill -9 while the subscriber is receiving, then restart on the same port.
    wait_for("100 changes received", Duration::from_secs(60), received_at_least(100)).await;
    c.kill_and_restart().await;

    w.await.expect("writer");
    tokio::time::timeout(Duration::from_secs(120), r).await.expect("reader finished in time").expect("reader");
    let got = got.lock().expect("lock").clone();
    assert_eq!(got, (1..=TOTAL).collect::<Vec<_>>(), "every committed change exactly once, in commit order");
    c.stop().await;
}

/// Bytes of the event log's segment files.
fn log_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("eventlog"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The log's head LSN from `/changes/v1/status`.
async fn log_head(url: &str, key: &str) -> Option<fluxbase::eventlog::Lsn> {
    let st: Value = reqwest::Client::new()
        .get(format!("{url}/changes/v1/status"))
        .header("apikey", key)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    st["log"]["durable_lsn"].as_str()?.parse().ok()
}

/// Commits one transaction of `rows` rows numbered from `from`; returns an LSN at or after its commit.
async fn big_insert(db_url: &str, from: i64, rows: i64) -> fluxbase::eventlog::Lsn {
    let c = fluxbase::database::connect_one(db_url, "crash-big")
        .await
        .expect("connect");
    c.execute(
        "insert into public.big (n, pad) select g, repeat('x', 100) from generate_series($1::bigint, $2::bigint) g",
        &[&from, &(from + rows - 1)],
    )
    .await
    .expect("big insert");
    let row = c
        .query_one("select pg_current_wal_insert_lsn()::text", &[])
        .await
        .expect("lsn");
    row.get::<_, String>(0).parse().expect("lsn")
}

/// Large transactions go to the log in parts; a crash while the parts are
/// being written (kill -9 of Fluxbase, then a PostgreSQL crash) loses and
/// duplicates nothing: the transaction is received again whole.
#[tokio::test]
async fn crashes_in_the_middle_of_a_large_transaction() {
    const ROWS: i64 = 60_000;
    let mut c = Crashable::start("create table public.big (n bigint primary key, pad text not null)").await;
    let (db_url, key, data) = (c.db_url.clone(), c.key.clone(), c.data.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // (a) kill -9 while the first big transaction's parts are being written.
    let before = log_bytes(&data);
    let first_commit = big_insert(&db_url, 1, ROWS).await;
    wait_for("parts written", Duration::from_secs(120), || {
        log_bytes(&data) > before + (256 << 10)
    })
    .await;
    let head = log_head(&c.server.url, &key).await;
    let mid_a = head.is_some_and(|h| h < first_commit);
    c.kill_and_restart().await;

    // (b) a PostgreSQL crash while the second one's parts are being written.
    let mut durable_first = false;
    for _ in 0..3000 {
        if log_head(&c.server.url, &key).await.is_some_and(|h| h >= first_commit) {
            durable_first = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(durable_first, "the first big transaction became durable after the restart");
    let before = log_bytes(&data);
    let second_commit = big_insert(&db_url, ROWS + 1, ROWS).await;
    wait_for("parts written", Duration::from_secs(120), || {
        log_bytes(&data) > before + (256 << 10)
    })
    .await;
    let head = log_head(&c.server.url, &key).await;
    pg_ctl_immediate_stop(&c.pgdata);
    let mid_b = head.is_some_and(|h| h < second_commit);

    // Every row once, in order, read from the start.
    let stream_url = format!("{}/changes/v1/stream?tables=public.big&from=start", c.server.url);
    let mut sse = SseClient::open_retrying(&stream_url, &key, None).await;
    let mut next = 1i64;
    while next <= 2 * ROWS {
        let Some(e) = sse.next(Duration::from_secs(120)).await else {
            panic!("stream ended at row {next}")
        };
        if e.event != "change" {
            continue;
        }
        let n = e.json()["record"]["n"].as_i64().unwrap_or(-1);
        assert_eq!(n, next, "rows arrive exactly once, in order");
        next += 1;
    }
    eprintln!("crash inside the parts: kill -9 {mid_a}, PostgreSQL crash {mid_b}");
    c.stop().await;
}
