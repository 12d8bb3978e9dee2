//! Auth load test (performance.md P9, P10): password sign-ins/s beside raw
//! Argon2id hashes/s at the same parameters on the same cores, token
//! refreshes/s, and JWT verifications/s.
//!
//! ```text
//! cargo run --release --example auth_bench            # 5 s per scenario
//! cargo run --release --example auth_bench -- --quick # 1 s per scenario (CI)
//! ```
//!
//! Starts its own server on an embedded cluster in a temporary directory
//! (fsync off, rate limits off), on loopback only; every loop is bounded in
//! time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "bench_common.rs"]
mod common;

use common::{drive, per_second};
use fluxbase::server::RunningServer;
use serde_json::{json, Value};

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Raw Argon2id hashes/s on every core for `secs`.
fn raw_argon2(secs: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    if fluxbase::auth::password::hash_blocking("bench-password-1").is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 1.0 } else { 5.0 };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = common::config(dir.path());
    config.auth.password_queue = 100_000;
    let server = RunningServer::start(config).await.expect("server starts");
    let url = server.api_url().to_owned();
    let keys = server.state().keys.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");

    // The sign-ins are compared with the mean of the raw rates just before and
    // just after them: the raw rate drifts by ±10 % within a minute here.
    let raw_before = raw_argon2(secs);

    let email = "bench@example.com";
    let res = http
        .post(format!("{url}/auth/v1/signup"))
        .header("apikey", &keys.anon)
        .json(&json!({"email": email, "password": "bench-password-1"}))
        .send()
        .await
        .expect("signup");
    let session: Value = res.json().await.expect("session");
    let access = session["access_token"].as_str().unwrap_or_default().to_owned();

    let sign_in = {
        let (http, url, anon) = (http.clone(), url.clone(), keys.anon.clone());
        drive(cores() * 4, secs, move |_| {
            let (http, url, anon) = (http.clone(), url.clone(), anon.clone());
            async move {
                http.post(format!("{url}/auth/v1/token?grant_type=password"))
                    .header("apikey", &anon)
                    .json(&json!({"email": email, "password": "bench-password-1"}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    };
    let raw = (raw_before + raw_argon2(secs)) / 2.0;

    // One session (and refresh-token chain) per client.
    let clients = 32;
    let mut tokens = Vec::new();
    for _ in 0..clients {
        let r = http
            .post(format!("{url}/auth/v1/token?grant_type=password"))
            .header("apikey", &keys.anon)
            .json(&json!({"email": email, "password": "bench-password-1"}))
            .send()
            .await
            .expect("sign in");
        let v: Value = r.json().await.expect("json");
        tokens.push(tokio::sync::Mutex::new(v["refresh_token"].as_str().unwrap_or_default().to_owned()));
    }
    let tokens = Arc::new(tokens);
    let refresh = {
        let (http, url, anon) = (http.clone(), url.clone(), keys.anon.clone());
        drive(clients, secs, move |i| {
            let (http, url, anon, tokens) = (http.clone(), url.clone(), anon.clone(), Arc::clone(&tokens));
            async move {
                let Some(slot) = tokens.get(i) else { return false };
                common::refresh(&http, &url, &anon, slot).await
            }
        })
        .await
    };

    let verify = per_second(secs.min(2.0), || keys.verify(&access).is_ok());

    println!("auth load test ({} cores, {secs} s per scenario, Argon2id m=19456 KiB t=2 p=1, fsync=off)", cores());
    println!("| scenario | figure | baseline | ratio |");
    println!("|---|---|---|---|");
    println!("| password sign-ins/s (P9) | {:.1} ({} failed) | raw Argon2id {raw:.1} hashes/s | {:.2} |", sign_in.0, sign_in.1, sign_in.0 / raw);
    println!("| token refreshes/s (P10, {clients} clients) | {:.0} ({} failed) | target 5000 | {:.2} |", refresh.0, refresh.1, refresh.0 / 5000.0);
    println!("| HS256 JWT verifications/s (1 core) | {verify:.0} | | |");
    server.shutdown().await;
}
