//! `refresh`: the refresh-token grant (`POST /auth/v1/token?grant_type=refresh_token`)
//! from a cheap Rust client (reqwest, keep-alive), so P10's figure is not
//! capped by the load generator: k6 spends about 0.3 ms of CPU per grant on
//! the same two cores. Each worker signs up its own user once and then
//! rotates its own session's token, keeping the new one, as a browser tab does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// What to drive.
pub struct Refresh {
    /// Fluxbase base URL.
    pub url: String,
    /// The anon key.
    pub apikey: String,
    /// Workers, each with its own session and one grant in flight.
    pub concurrency: usize,
    /// Seconds to run.
    pub seconds: f64,
}

/// POSTs `body` to `/auth/v1/<path>`; the status and the parsed answer.
async fn post(http: &reqwest::Client, t: &Refresh, path: &str, body: &Value) -> Result<(u16, Value)> {
    let r = http
        .post(format!("{}/auth/v1/{path}", t.url.trim_end_matches('/')))
        .header("apikey", &t.apikey)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A new user's first refresh token.
async fn first_token(http: &reqwest::Client, t: &Refresh, run: u128, worker: usize) -> Result<String> {
    let email = format!("refresh-{run}-{worker}@example.com");
    let (status, v) = post(http, t, "signup", &json!({"email": email, "password": "load-test-password-1"})).await?;
    match v["refresh_token"].as_str() {
        Some(rt) if status == 200 => Ok(rt.to_owned()),
        _ => bail!("sign-up of {email} answered {status}: {v}"),
    }
}

/// Runs the load; returns grants/s, failures and latency percentiles.
pub async fn run(t: Refresh) -> Result<Value> {
    let t = Arc::new(t);
    let http = reqwest::Client::builder().pool_max_idle_per_host(t.concurrency).build()?;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let mut tokens = Vec::with_capacity(t.concurrency);
    for worker in 0..t.concurrency {
        tokens.push(first_token(&http, &t, run, worker).await.context("setting up the sessions")?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(t.concurrency);
    for mut token in tokens {
        let (http, t, stop, ok, failed) = (http.clone(), Arc::clone(&t), Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let answer = post(&http, &t, "token?grant_type=refresh_token", &json!({"refresh_token": token})).await;
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                match answer {
                    Ok((200, v)) if v["refresh_token"].is_string() => {
                        token = v["refresh_token"].as_str().unwrap_or_default().to_owned();
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        // The session is lost: this worker stops rather than count errors.
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            lat
        }));
    }
    crate::closed_loop::finish(tasks, &stop, start, t.seconds, (&ok, &failed), "refreshes_per_sec").await
}
