//! The end of a closed-loop run (workers each with one request in flight:
//! `rest-get`, `rest-insert` and `refresh`): stop the workers after the
//! run's time, gather their latencies, and report rate, failures and
//! percentiles as JSON.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

/// Lets the workers run for `seconds`, stops them, and reports `rate_key`
/// (successes/s since `start`), `ok`, `failed`, `p50_ms`, `p99_ms`,
/// `concurrency` and `seconds`. Each worker returns its latencies in ms.
pub async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Vec<f64>>>,
    stop: &AtomicBool,
    start: Instant,
    seconds: f64,
    (ok, failed): (&AtomicU64, &AtomicU64),
    rate_key: &str,
) -> Result<Value> {
    let concurrency = tasks.len();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await?);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let ok = ok.load(Ordering::Relaxed);
    let mut out = json!({
        "ok": ok,
        "failed": failed.load(Ordering::Relaxed),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "concurrency": concurrency,
        "seconds": secs,
    });
    out[rate_key] = json!(ok as f64 / secs);
    Ok(out)
}
