//! `refresh` and `signin`: the token grants (`POST /auth/v1/token`) from a
//! cheap Rust client (reqwest, keep-alive), so P9's and P10's figures are not
//! capped by the load generator: k6 spends about 0.3 ms of CPU per refresh
//! and 0.6 ms per sign-in on the same two cores. Each worker signs up its own
//! user once; then, for `refresh`, it rotates its own session's token,
//! keeping the new one, as a browser tab does, and for `signin` it signs in
//! with the user's password again and again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Which grant the workers make.
#[derive(Clone, Copy)]
pub enum Grant {
    /// `grant_type=password` (P9).
    Password,
    /// `grant_type=refresh_token` (P10).
    Refresh,
}

/// What to drive.
pub struct Load {
    /// The grant.
    pub grant: Grant,
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
async fn post(http: &reqwest::Client, t: &Load, path: &str, body: &Value) -> Result<(u16, Value)> {
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

const PASSWORD: &str = "load-test-password-1";

/// Signs up a new user: its address and first refresh token.
async fn sign_up(http: &reqwest::Client, t: &Load, run: u128, worker: usize) -> Result<(String, String)> {
    let email = format!("grants-{run}-{worker}@example.com");
    let (status, v) = post(http, t, "signup", &json!({"email": email, "password": PASSWORD})).await?;
    match v["refresh_token"].as_str() {
        Some(rt) if status == 200 => Ok((email, rt.to_owned())),
        _ => bail!("sign-up of {email} answered {status}: {v}"),
    }
}

/// One grant for a worker's user (its address, its current refresh token):
/// the status and the answer, which carries the next refresh token.
async fn grant(http: &reqwest::Client, t: &Load, email: &str, token: &str) -> Result<(u16, Value)> {
    match t.grant {
        Grant::Password => post(http, t, "token?grant_type=password", &json!({"email": email, "password": PASSWORD})).await,
        Grant::Refresh => post(http, t, "token?grant_type=refresh_token", &json!({"refresh_token": token})).await,
    }
}

/// Runs the load; returns grants/s (`refreshes_per_sec` or
/// `signins_per_sec`), failures and latency percentiles.
pub async fn run(t: Load) -> Result<Value> {
    let t = Arc::new(t);
    let http = reqwest::Client::builder().pool_max_idle_per_host(t.concurrency).build()?;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let mut users = Vec::with_capacity(t.concurrency);
    for worker in 0..t.concurrency {
        users.push(sign_up(&http, &t, run, worker).await.context("setting up the users")?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(t.concurrency);
    for (email, mut token) in users {
        let (http, t, stop, ok, failed) = (http.clone(), Arc::clone(&t), Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let answer = grant(&http, &t, &email, &token).await;
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
    let key = match t.grant {
        Grant::Password => "signins_per_sec",
        Grant::Refresh => "refreshes_per_sec",
    };
    crate::closed_loop::finish(tasks, &stop, start, t.seconds, (&ok, &failed), key).await
}
