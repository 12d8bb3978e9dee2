//! `ws-fanout --target`: drives Fluxbase realtime the way the baseline
//! drives its broadcast server.
//!
//! Opens N WebSockets (`vsn=2.0.0`, spread over 127.0.0.x source addresses
//! so more than one address's ephemeral ports are available), each joining
//! `postgres_changes` INSERTs on one table whose SELECT policy is per user
//! (`owner = auth.uid()`), with `users` distinct users (N/users sockets
//! each). Then measures: joins/s; the server's RSS per idle subscribed
//! socket (`VmRSS` of `/proc/<pid>/status` before and after); and, while
//! rows are committed (each row owned by the next user, carrying the
//! microsecond wall-clock time it was written in `sent_us`), deliveries/s and
//! commit-to-client latency p50/p99 (receive time − `sent_us`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

/// What to drive.
#[derive(Debug, Clone)]
pub struct Target {
    /// Fluxbase base URL (`http://127.0.0.1:54321`).
    pub url: String,
    /// The anon key (the socket's `apikey`).
    pub apikey: String,
    /// The HS256 secret, to sign one token per user.
    pub jwt_secret: String,
    /// A superuser database URL, to commit rows.
    pub db_url: String,
    /// The server's pid, for RSS (0: not measured).
    pub pid: u32,
    /// Table (created by the caller with a per-user policy on `owner`).
    pub table: String,
    /// Sockets.
    pub subscribers: usize,
    /// Distinct users.
    pub users: usize,
    /// Loopback source addresses to spread sockets over (127.0.0.2 …).
    pub sources: usize,
    /// Rows to commit.
    pub rows: u64,
    /// Rows per second (0: as fast as `writers` connections commit batches).
    pub rate: u64,
    /// Rows per transaction.
    pub batch: u64,
    /// Bytes of filler per row.
    pub size: usize,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn user_id(u: usize) -> String {
    format!("00000000-0000-4000-8000-{u:012x}")
}

fn token(secret: &str, u: usize) -> Result<String> {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 24 * 3600;
    let claims = json!({"sub": user_id(u), "role": "authenticated", "aud": "authenticated", "exp": exp});
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()))?)
}

struct Counters {
    joined: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
    /// Receive time of the last delivery, µs since the epoch.
    last_us: AtomicU64,
}

/// Runs the whole measurement and returns its figures.
pub async fn run(t: Target) -> Result<Value> {
    let users = t.users.clamp(1, t.subscribers.max(1));
    let tokens: Vec<String> = (0..users).map(|u| token(&t.jwt_secret, u)).collect::<Result<_>>()?;
    let authority = t.url.split("://").nth(1).unwrap_or(&t.url).trim_end_matches('/').to_owned();
    let server: SocketAddr = tokio::net::lookup_host(&authority).await?.next().context("resolving the target")?;
    let ws_url = format!("ws://{authority}/realtime/v1/websocket?apikey={}&vsn=2.0.0", t.apikey);
    let counters =
        Arc::new(Counters { joined: AtomicU64::new(0), failed: AtomicU64::new(0), delivered: AtomicU64::new(0), last_us: AtomicU64::new(0) });
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let rss_before = rss_kib(t.pid);

    // Open and join, at most 256 handshakes in flight.
    let join_start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(t.subscribers);
    for i in 0..t.subscribers {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % t.sources.clamp(1, 250)) as u8));
        let join = json!(["1", "1", "realtime:bench", "phx_join", {
            "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": t.table}]},
            "access_token": tokens[i % users],
        }])
        .to_string();
        let (ws_url, counters, latencies) = (ws_url.clone(), Arc::clone(&counters), Arc::clone(&latencies));
        tasks.push(tokio::spawn(async move {
            let r = subscriber(server, source, &ws_url, join, permit, &counters, &latencies).await;
            if r.is_err() {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while counters.joined.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < t.subscribers as u64 {
        if Instant::now() > deadline {
            bail!("joins did not finish in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let join_secs = join_start.elapsed().as_secs_f64();
    let joined = counters.joined.load(Ordering::Relaxed);
    if joined == 0 {
        let why = match tasks.into_iter().next() {
            Some(task) => format!("{:?}", task.await),
            None => "no subscribers".into(),
        };
        bail!("no socket could join: {why}");
    }
    // Idle: let the server settle, then its RSS per subscribed socket.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(t.pid);

    // Commit rows.
    let (db, conn) = tokio_postgres::connect(&t.db_url, tokio_postgres::NoTls).await.context("connecting to the database")?;
    tokio::spawn(conn);
    let insert = format!(
        "insert into public.\"{}\" (owner, sent_us, body) select ('00000000-0000-4000-8000-' || lpad(to_hex((($1::bigint + g) % $2::bigint)), 12, '0'))::uuid, \
         (extract(epoch from clock_timestamp()) * 1000000)::bigint, repeat('x', $3::int) from generate_series(0, $4::bigint - 1) g",
        t.table.replace('"', "\"\"")
    );
    let stmt = db.prepare(&insert).await?;
    let per_row = joined as f64 / users as f64;
    let batch = t.batch.max(1);
    let start = Instant::now();
    let start_us = now_us();
    let mut sent = 0u64;
    while sent < t.rows {
        let n = batch.min(t.rows - sent);
        if t.rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / t.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        db.execute(&stmt, &[&(sent as i64), &(users as i64), &(t.size as i32), &(n as i64)]).await?;
        sent += n;
    }
    let write_secs = start.elapsed().as_secs_f64();
    // Every socket of a row's owner gets it: socket i is user i % users, row j user j % users.
    let n = t.subscribers as u64;
    let u = users as u64;
    let expected: u64 = (0..u).map(|k| (t.rows / u + u64::from(k < t.rows % u)) * (n / u + u64::from(k < n % u))).sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_seen = (0u64, Instant::now());
    loop {
        let d = counters.delivered.load(Ordering::Relaxed);
        if d >= expected {
            break;
        }
        if d != last_seen.0 {
            last_seen = (d, Instant::now());
        } else if last_seen.1.elapsed() > Duration::from_secs(15) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let span = (counters.last_us.load(Ordering::Relaxed).saturating_sub(start_us)) as f64 / 1e6;
    for task in &tasks {
        task.abort();
    }
    let mut lat: Vec<f64> = latencies.lock().map(|l| l.iter().map(|&u| f64::from(u) / 1e3).collect()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let per_conn = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) if joined > 0 => Some(a.saturating_sub(b) as f64 * 1024.0 / joined as f64),
        _ => None,
    };
    Ok(json!({
        "mode": "fluxbase",
        "subscribers": t.subscribers,
        "joined": joined,
        "failed": counters.failed.load(Ordering::Relaxed),
        "users": users,
        "sockets_per_user": per_row,
        "sources": t.sources,
        "joins_per_sec": joined as f64 / join_secs.max(1e-9),
        "rss_kib_before": rss_before,
        "rss_kib_idle": rss_idle,
        "rss_bytes_per_idle_socket": per_conn(rss_idle),
        "rows": t.rows,
        "rate": t.rate,
        "batch": batch,
        "row_filler_bytes": t.size,
        "write_secs": write_secs,
        "delivered": delivered,
        "expected": expected,
        "deliveries_per_sec": delivered as f64 / span.max(1e-9),
        "latency_ms_p50": crate::percentile(&lat, 0.5),
        "latency_ms_p99": crate::percentile(&lat, 0.99),
        "secs": span,
    }))
}

/// One socket: connect from `source`, join, then count deliveries and send heartbeats.
async fn subscriber(
    server: SocketAddr,
    source: IpAddr,
    url: &str,
    join: String,
    permit: tokio::sync::OwnedSemaphorePermit,
    counters: &Counters,
    latencies: &std::sync::Mutex<Vec<u32>>,
) -> Result<()> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source, 0))?;
    let stream = sock.connect(server).await?;
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let (mut write, mut read) = ws.split();
    write.send(Message::text(join)).await?;
    // The join reply.
    loop {
        let Some(frame) = read.next().await else { bail!("closed before the join reply") };
        if let Message::Text(t) = frame? {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v[3] == "phx_reply" && v[1] == "1" {
                if v[4]["status"] != "ok" {
                    bail!("join refused: {}", v[4]);
                }
                break;
            }
        }
    }
    counters.joined.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
    heartbeat.tick().await;
    let mut hb_ref = 1u64;
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                hb_ref += 1;
                write.send(Message::text(json!([null, hb_ref.to_string(), "phoenix", "heartbeat", {}]).to_string())).await?;
            }
            frame = read.next() => {
                let Some(frame) = frame else { break };
                let Message::Text(t) = frame? else { continue };
                let t = t.as_str();
                if !t.contains("\"postgres_changes\",") {
                    continue;
                }
                let now = now_us();
                // `"sent_us":<digits>` inside the record.
                let sent = t.split("\"sent_us\":").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|d| d.parse::<u64>().ok());
                if let Some(sent) = sent {
                    if let Ok(mut l) = latencies.lock() {
                        l.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                    }
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                    counters.last_us.fetch_max(now, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}
