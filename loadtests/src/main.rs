//! `loadtests`: load generators for what k6 cannot drive on 2 cores.
//!
//! - `sse-resume`: clients resume a `/changes/v1/stream` from an old position
//!   and read N stored changes; reports time to first event and replay rate (P5).
//! - `ws-fanout`: the fan-out baseline, a minimal tokio WebSocket broadcast
//!   server sending the same frames to N sockets with no filtering (P1/P2);
//!   with `--target`, Fluxbase realtime itself ([`realtime`]): N sockets on
//!   a per-user RLS table, deliveries/s, commit-to-client latency, joins/s,
//!   RSS per idle socket (P1-P3).
//! - `argon2`: raw Argon2id hashes/s at the sign-in parameters (P9 baseline).
//! - `rest-get`, `rest-insert`: REST GET by primary key, or a single-row
//!   insert, with user JWTs and RLS ([`rest`]), from a client far cheaper per
//!   request than k6 (P6, P7 beside pgbench).
//! - `refresh`, `signin`: refresh-token and password grants from the same
//!   kind of client ([`grants`], P10 and P9).
//!
//! Each prints one JSON object on stdout; `loadtests/run` reads it.

mod closed_loop;
mod grants;
mod http1;
mod realtime;
mod rest;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;

#[derive(Parser)]
#[command(name = "loadtests", about = "Fluxbase load generators; each prints one JSON object")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where and how hard the REST client drives (`rest-get`, `rest-insert`).
#[derive(clap::Args)]
struct RestClient {
    /// Fluxbase base URL.
    #[arg(long)]
    url: String,
    /// The anon key.
    #[arg(long)]
    apikey: String,
    /// The HS256 JWT secret.
    #[arg(long)]
    jwt_secret: String,
    /// Distinct users.
    #[arg(long, default_value_t = 100)]
    users: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

impl RestClient {
    fn load(self, nitems: u64, distinct_jwt: bool, insert: bool) -> rest::RestLoad {
        let RestClient { url, apikey, jwt_secret, users, concurrency, seconds } = self;
        rest::RestLoad { url, apikey, jwt_secret, nitems, users, concurrency: concurrency.max(1), seconds, distinct_jwt, insert }
    }
}

/// Where and how long the auth grant client drives (`refresh`, `signin`).
#[derive(clap::Args)]
struct GrantClient {
    /// Fluxbase base URL.
    #[arg(long)]
    url: String,
    /// The anon key.
    #[arg(long)]
    apikey: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

impl GrantClient {
    fn load(self, grant: grants::Grant, concurrency: usize) -> grants::Load {
        let GrantClient { url, apikey, seconds } = self;
        grants::Load { grant, url, apikey, concurrency: concurrency.max(1), seconds }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Resume an SSE change stream from an old position and replay N changes.
    SseResume {
        /// Fluxbase base URL, e.g. http://127.0.0.1:54321
        #[arg(long)]
        url: String,
        /// API key sent as `apikey` and bearer (the service key sees every change).
        #[arg(long)]
        apikey: String,
        /// `tables=` filter.
        #[arg(long, default_value = "public.resume_rows")]
        tables: String,
        /// `from=` position (`start` or a position from an event id).
        #[arg(long, default_value = "start")]
        from: String,
        /// Changes each client must receive before it stops.
        #[arg(long)]
        expect: u64,
        /// Concurrent clients (a resume storm when > 1).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Baseline fan-out: a minimal tokio WebSocket broadcast server and N clients.
    WsFanout {
        /// Subscribed sockets.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Messages broadcast.
        #[arg(long, default_value_t = 200)]
        messages: u64,
        /// Bytes per message.
        #[arg(long, default_value_t = 256)]
        size: usize,
        /// Messages per second (0: as fast as the broadcast channel takes them).
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// A Fluxbase base URL (http://127.0.0.1:PORT) to drive instead of the baseline.
        #[arg(long)]
        target: Option<String>,
        /// With --target: the anon key.
        #[arg(long, default_value = "")]
        apikey: String,
        /// With --target: the HS256 JWT secret (one token per user).
        #[arg(long, default_value = "")]
        jwt_secret: String,
        /// With --target: a superuser database URL to commit rows with.
        #[arg(long, default_value = "")]
        db_url: String,
        /// With --target: the server's pid (RSS from /proc/PID/status; 0 = skip).
        #[arg(long, default_value_t = 0)]
        pid: u32,
        /// With --target: the table (columns owner uuid, sent_us bigint, body text; SELECT policy owner = auth.uid()).
        #[arg(long, default_value = "rt_bench")]
        table: String,
        /// With --target: distinct users (subscribers/users sockets each).
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// With --target: loopback source addresses 127.0.0.2… to spread sockets over.
        #[arg(long, default_value_t = 4)]
        sources: usize,
        /// With --target: rows per transaction.
        #[arg(long, default_value_t = 10)]
        batch: u64,
    },
    /// REST GET by primary key with a user JWT per request (RLS), from a
    /// Rust client much cheaper per request than k6.
    RestGet {
        #[command(flatten)]
        client: RestClient,
        /// Rows in `items`.
        #[arg(long, default_value_t = 100_000)]
        nitems: u64,
        /// Sign a new JWT for every request (distinct `jti` and
        /// `session_id`), as P8 asks, instead of one token per user.
        #[arg(long)]
        distinct_jwt: bool,
    },
    /// REST single-row insert (`Prefer: return=minimal`) with a user JWT per
    /// request (RLS: the row's owner is the user), from the same client.
    RestInsert {
        #[command(flatten)]
        client: RestClient,
    },
    /// Refresh-token grants, each worker rotating its own session's token.
    Refresh {
        #[command(flatten)]
        client: GrantClient,
        /// Workers (sessions), one grant in flight each.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Password sign-ins, each worker signing in as its own user again and again.
    Signin {
        #[command(flatten)]
        client: GrantClient,
        /// Workers (users), one sign-in in flight each.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Raw Argon2id hashes/s on all threads (the password sign-in ceiling).
    Argon2 {
        /// Threads hashing in parallel.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Memory in KiB.
        #[arg(long, default_value_t = 19456)]
        m_kib: u32,
        /// Iterations.
        #[arg(long, default_value_t = 2)]
        t: u32,
        /// Lanes.
        #[arg(long, default_value_t = 1)]
        p: u32,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let out = match cli.cmd {
        Cmd::Argon2 { threads, seconds, m_kib, t, p } => argon2_bench(threads, seconds, m_kib, t, p)?,
        // The closed loops run on one thread: their workers wait on the server
        // nearly all the time, and a pool of worker threads would park and be
        // woken about once per request (measured: one context switch per
        // request, against a third of one here, and a fifth less client CPU).
        cmd @ (Cmd::RestGet { .. } | Cmd::RestInsert { .. } | Cmd::Refresh { .. } | Cmd::Signin { .. }) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(run_async(cmd))?
        }
        cmd => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(run_async(cmd))?
        }
    };
    println!("{out}");
    Ok(())
}

async fn run_async(cmd: Cmd) -> Result<serde_json::Value> {
    match cmd {
        Cmd::SseResume { url, apikey, tables, from, expect, clients, timeout_secs } => {
            sse_resume(&url, &apikey, &tables, &from, expect, clients.max(1), Duration::from_secs(timeout_secs)).await
        }
        Cmd::WsFanout { subscribers, messages, size, rate, target, apikey, jwt_secret, db_url, pid, table, users, sources, batch } => match target {
            Some(url) => {
                if apikey.is_empty() || jwt_secret.is_empty() || db_url.is_empty() {
                    bail!("ws-fanout --target needs --apikey, --jwt-secret and --db-url");
                }
                let t = realtime::Target { url, apikey, jwt_secret, db_url, pid, table, subscribers, users, sources, rows: messages, rate, batch, size };
                realtime::run(t).await
            }
            None => ws_fanout_baseline(subscribers, messages, size.max(16), rate).await,
        },
        Cmd::RestGet { client, nitems, distinct_jwt } => rest::run(client.load(nitems, distinct_jwt, false)).await,
        Cmd::RestInsert { client } => {
            let nitems = client.users * 2;
            rest::run(client.load(nitems, false, true)).await
        }
        Cmd::Refresh { client, concurrency } => grants::run(client.load(grants::Grant::Refresh, concurrency)).await,
        Cmd::Signin { client, concurrency } => grants::run(client.load(grants::Grant::Password, concurrency)).await,
        Cmd::Argon2 { .. } => bail!("argon2 runs synchronously"),
    }
}

/// What one SSE client saw.
struct Replay {
    first_event: Duration,
    last_event: Duration,
    events: u64,
}

async fn sse_resume(url: &str, apikey: &str, tables: &str, from: &str, expect: u64, clients: usize, timeout: Duration) -> Result<serde_json::Value> {
    let http = reqwest::Client::builder().build()?;
    let stream_url = format!("{}/changes/v1/stream?tables={tables}&from={from}", url.trim_end_matches('/'));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let http = http.clone();
        let stream_url = stream_url.clone();
        let apikey = apikey.to_string();
        tasks.push(tokio::spawn(async move { tokio::time::timeout(timeout, one_replay(&http, &stream_url, &apikey, expect, start)).await }));
    }
    let mut replays = Vec::with_capacity(clients);
    for t in tasks {
        match t.await? {
            Ok(r) => replays.push(r?),
            Err(_) => bail!("a client did not receive {expect} changes within {} s", timeout.as_secs()),
        }
    }
    let total = start.elapsed();
    let mut firsts: Vec<f64> = replays.iter().map(|r| r.first_event.as_secs_f64() * 1e3).collect();
    firsts.sort_by(f64::total_cmp);
    let events: u64 = replays.iter().map(|r| r.events).sum();
    let first_min = replays.iter().map(|r| r.first_event).min().unwrap_or_default();
    let last_max = replays.iter().map(|r| r.last_event).max().unwrap_or_default();
    let replay_secs = last_max.saturating_sub(first_min).as_secs_f64().max(1e-9);
    Ok(json!({
        "clients": clients,
        "events": events,
        "first_event_ms_p50": percentile(&firsts, 0.5),
        "first_event_ms_max": firsts.last().copied().unwrap_or(0.0),
        "replay_secs": replay_secs,
        "events_per_sec": events as f64 / replay_secs,
        "total_secs": total.as_secs_f64(),
    }))
}

async fn one_replay(http: &reqwest::Client, url: &str, apikey: &str, expect: u64, start: Instant) -> Result<Replay> {
    let res = http
        .get(url)
        .header("apikey", apikey)
        .header("authorization", format!("Bearer {apikey}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .context("connecting to the change stream")?;
    if !res.status().is_success() {
        bail!("stream answered {}: {}", res.status(), res.text().await.unwrap_or_default());
    }
    let mut body = res.bytes_stream();
    let mut carry: Vec<u8> = Vec::new();
    let mut events = 0u64;
    let mut first = None;
    let mut last = Duration::ZERO;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the change stream")?;
        carry.extend_from_slice(&chunk);
        let mut consumed = 0;
        while let Some(nl) = carry[consumed..].iter().position(|&b| b == b'\n') {
            let line = &carry[consumed..consumed + nl];
            consumed += nl + 1;
            if let Some(name) = line.strip_prefix(b"event:") {
                let name = name.strip_prefix(b" ").unwrap_or(name);
                match name {
                    b"change" => {
                        events += 1;
                        last = start.elapsed();
                        first.get_or_insert(last);
                    }
                    b"error" | b"end" => bail!("stream ended early ({}) after {events} changes", String::from_utf8_lossy(name)),
                    _ => {}
                }
            }
        }
        carry.drain(..consumed);
        if events >= expect {
            return Ok(Replay { first_event: first.unwrap_or_default(), last_event: last, events });
        }
    }
    bail!("stream closed after {events} of {expect} changes")
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The baseline broadcast server: every frame to every socket, no filtering.
async fn ws_fanout_baseline(subscribers: usize, messages: u64, size: usize, rate: u64) -> Result<serde_json::Value> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<Vec<u8>>>(4096);
    let server_tx = tx.clone();
    let server = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let mut rx = server_tx.subscribe();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else { return };
                while let Ok(frame) = rx.recv().await {
                    let msg = tokio_tungstenite::tungstenite::Message::Binary(frame.as_ref().clone().into());
                    if ws.send(msg).await.is_err() {
                        return;
                    }
                }
                let _ = ws.close(None).await;
            });
        }
    });
    let base = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::with_capacity(subscribers * messages.min(1000) as usize)));
    let mut clients = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.context("connecting a subscriber")?;
        let delivered = Arc::clone(&delivered);
        let latencies = Arc::clone(&latencies);
        clients.push(tokio::spawn(async move {
            let (_, mut read) = ws.split();
            let mut mine = Vec::new();
            let mut got = 0u64;
            while got < messages {
                let Some(Ok(msg)) = read.next().await else { break };
                let data = msg.into_data();
                if data.len() >= 8 {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(&data[..8]);
                    let sent = u64::from_le_bytes(stamp);
                    let now = base.elapsed().as_micros() as u64;
                    mine.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                    got += 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Ok(mut l) = latencies.lock() {
                l.extend(mine);
            }
        }));
    }
    // Wait until every socket is subscribed on the server side.
    while tx.receiver_count() < subscribers {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    let interval = if rate > 0 { Some(Duration::from_secs_f64(1.0 / rate as f64)) } else { None };
    for i in 0..messages {
        if let Some(iv) = interval {
            let due = start + iv.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let mut frame = vec![b'x'; size];
        frame[..8].copy_from_slice(&(base.elapsed().as_micros() as u64).to_le_bytes());
        let _ = tx.send(Arc::new(frame));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for c in clients {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, c).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    server.abort();
    let mut lat: Vec<f64> = latencies.lock().map(|l| l.iter().map(|&u| f64::from(u) / 1e3).collect()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let delivered = delivered.load(Ordering::Relaxed);
    Ok(json!({
        "subscribers": subscribers,
        "messages": messages,
        "size": size,
        "rate": rate,
        "delivered": delivered,
        "expected": subscribers as u64 * messages,
        "deliveries_per_sec": delivered as f64 / elapsed.max(1e-9),
        "latency_ms_p50": percentile(&lat, 0.5),
        "latency_ms_p99": percentile(&lat, 0.99),
        "secs": elapsed,
    }))
}

fn argon2_bench(threads: usize, seconds: f64, m_kib: u32, t: u32, p: u32) -> Result<serde_json::Value> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(m_kib, t, p, Some(32)).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|i| {
            let params = params.clone();
            std::thread::spawn(move || -> Result<u64> {
                let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut out = [0u8; 32];
                let salt = [i as u8; 16];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    a.hash_password_into(b"correct horse battery staple", &salt, &mut out).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut hashes = 0;
    for h in handles {
        hashes += h.join().map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "threads": threads,
        "m_kib": m_kib, "t": t, "p": p,
        "hashes": hashes,
        "secs": secs,
        "hashes_per_sec": hashes as f64 / secs,
        "ms_per_hash_per_thread": secs * 1e3 * threads as f64 / hashes.max(1) as f64,
    }))
}
