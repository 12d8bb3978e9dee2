//! What the in-process auth benchmarks (`auth_bench`, `oauth_bench`) share:
//! the server's configuration, the concurrent driver, one refresh-token
//! rotation, and a one-core per-second loop. Included by each example with
//! `#[path]`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxbase::config::{Config, Overrides};
use serde_json::{json, Value};

/// A server configuration on a fresh data directory `dir`, loopback and any
/// port, fsync off, quiet logs, and the sign-in and refresh rate limits off
/// (the load comes from one address).
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::load(
        None,
        Vec::new(),
        &Overrides { data_dir: Some(dir.to_owned()), host: Some("127.0.0.1".into()), port: Some(0), database_url: None },
    )
    .expect("config");
    config.embedded.fsync = false;
    config.log.level = "warn".into();
    config.auth.rate_limit_sign_in_sign_ups = 0;
    config.auth.rate_limit_token_refresh = 0;
    config
}

/// Runs `op(i)` in a loop on `clients` tasks for `secs`; returns
/// successes/s and the failure count.
pub async fn drive<F, Fut>(clients: usize, secs: f64, op: F) -> (f64, u64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (op, ok, bad) = (Arc::clone(&op), Arc::clone(&ok), Arc::clone(&bad));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let c = if op(i).await { &ok } else { &bad };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), bad.load(Ordering::Relaxed))
}

/// One `grant_type=refresh_token` with the token in `slot`, which takes
/// the rotated token on success.
pub async fn refresh(http: &reqwest::Client, url: &str, anon: &str, slot: &tokio::sync::Mutex<String>) -> bool {
    let mut rt = slot.lock().await;
    let Ok(r) = http
        .post(format!("{url}/auth/v1/token?grant_type=refresh_token"))
        .header("apikey", anon)
        .json(&json!({"refresh_token": *rt}))
        .send()
        .await
    else {
        return false;
    };
    match (r.status() == 200, r.json::<Value>().await) {
        (true, Ok(v)) => {
            *rt = v["refresh_token"].as_str().unwrap_or_default().to_owned();
            true
        }
        _ => false,
    }
}

/// Calls `f` on one core for `secs`; returns successes/s.
pub fn per_second(secs: f64, mut f: impl FnMut() -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        if f() {
            n += 1;
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}
