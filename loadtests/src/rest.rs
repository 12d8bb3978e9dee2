//! `rest-get` and `rest-insert`: GET by primary key, or a single-row insert
//! (`Prefer: return=minimal`), with a user JWT and RLS, from a cheap Rust
//! client (one keep-alive HTTP/1.1 connection per worker, [`crate::http1`]), so the figure is not
//! capped by the load generator: k6 spends about as much CPU per request
//! as the server on the same two cores. With `--distinct-jwt` every request
//! carries a token the server has not seen (P8); they are signed before the
//! clock starts, so the client spends the same per request as without.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

/// What to drive.
pub struct RestLoad {
    /// Fluxbase base URL.
    pub url: String,
    /// The anon key.
    pub apikey: String,
    /// The HS256 JWT secret (one token per user).
    pub jwt_secret: String,
    /// Rows in `items` (ids 0..nitems, owner = user (id % users) + 1).
    pub nitems: u64,
    /// Distinct users.
    pub users: u64,
    /// Concurrent requests in flight.
    pub concurrency: usize,
    /// Seconds to run.
    pub seconds: f64,
    /// A freshly signed JWT per request (P8) instead of one per user.
    pub distinct_jwt: bool,
    /// Insert a new row per request (P7) instead of reading one (P6).
    pub insert: bool,
}

/// User `u`'s token; `nonce`, when given, makes it unique (`jti`, `session_id`).
fn token(secret: &str, u: u64, nonce: Option<(usize, u64)>) -> Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut claims = json!({"sub": format!("00000000-0000-0000-0000-{u:012}"), "role": "authenticated",
                            "aud": "authenticated", "iat": now, "exp": now + 3600});
    if let Some((worker, n)) = nonce {
        claims["jti"] = json!(format!("{worker}-{n}"));
        claims["session_id"] = json!(format!("{worker}-{n}"));
    }
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()))?)
}

/// The table's path; the load's rows are its fixture's.
const PATH: &str = "/rest/v1/items";

/// Distinct tokens signed per second of the run before the clock starts
/// (`--distinct-jwt`): above what the server reaches here, so the client
/// does not sign while it measures. Past them, a worker signs as it goes.
const PRESIGNED_PER_SEC: f64 = 20_000.0;

/// A worker's cheap deterministic walk over users and keys.
struct Walk {
    x: u64,
    users: u64,
    per_user: u64,
}

impl Walk {
    fn new(worker: usize, users: u64, per_user: u64) -> Walk {
        Walk { x: 0x9e37_79b9_7f4a_7c15u64 ^ worker as u64, users, per_user }
    }

    /// The next request's user and the id of one of that user's rows.
    fn next(&mut self) -> (u64, u64) {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        let u = 1 + self.x % self.users;
        let k = 1 + (self.x >> 20) % (self.per_user - 1);
        (u, k * self.users + u - 1)
    }
}

/// Runs the load; returns requests/s, failures and latency percentiles
/// (and, with `--distinct-jwt`, how many tokens were signed during the run).
pub async fn run(t: RestLoad) -> Result<Value> {
    let users = t.users.max(1);
    let per_user = (t.nitems / users).max(2);
    let tokens: Arc<Vec<String>> = Arc::new((1..=users).map(|u| token(&t.jwt_secret, u, None)).collect::<Result<_>>()?);
    // With --distinct-jwt, each worker's first tokens are signed now, in the
    // order its walk will need them; every one is still new to the server.
    let mut presigned: Vec<Vec<String>> = vec![Vec::new(); t.concurrency];
    if t.distinct_jwt {
        let each = (t.seconds * PRESIGNED_PER_SEC / t.concurrency as f64).ceil() as u64;
        for (worker, pool) in presigned.iter_mut().enumerate() {
            let mut walk = Walk::new(worker, users, per_user);
            for n in 1..=each {
                pool.push(token(&t.jwt_secret, walk.next().0, Some((worker, n)))?);
            }
        }
    }
    let target = crate::http1::Target::from_url(&t.url)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let signed_in_run = Arc::new(AtomicU64::new(0));
    // Inserted keys differ from one run to the next on the same table.
    let salt = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 100_000;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(t.concurrency);
    for (worker, pool) in presigned.into_iter().enumerate() {
        let (target, tokens, stop, ok, failed, signed_in_run, apikey) = (
            target.clone(),
            Arc::clone(&tokens),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
            Arc::clone(&signed_in_run),
            t.apikey.clone(),
        );
        let fresh = t.distinct_jwt.then(|| t.jwt_secret.clone());
        let insert = t.insert;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut walk = Walk::new(worker, users, per_user);
            let mut pool = pool.into_iter();
            let mut n = 0u64;
            // A connection that fails counts one failure and is opened again.
            while !stop.load(Ordering::Relaxed) {
                let (lat, walk, pool, n) = (&mut lat, &mut walk, &mut pool, &mut n);
                let (stop, ok, failed, signed_in_run) = (&*stop, &*ok, &*failed, &*signed_in_run);
                let (target, tokens, apikey, fresh) = (&target, &tokens, &apikey, &fresh);
                let requests = |mut sender: crate::http1::Sender| async move {
                    while !stop.load(Ordering::Relaxed) {
                        *n += 1;
                        let n = *n;
                        let (u, id) = walk.next();
                        let signed;
                        let bearer: &str = match &fresh {
                            Some(secret) => {
                                signed = match pool.next() {
                                    Some(presigned) => presigned,
                                    None => {
                                        signed_in_run.fetch_add(1, Ordering::Relaxed);
                                        token(secret, u, Some((worker, n))).unwrap_or_default()
                                    }
                                };
                                &signed
                            }
                            None => &tokens[(u - 1) as usize],
                        };
                        // Latency is the request's, not the client's signing.
                        let t0 = Instant::now();
                        let sent = if insert {
                            // New keys above the fixture's, distinct per run, worker and request.
                            let new_id = 1_000_000_000 + salt * 10_000_000_000_000 + (worker as u64) * 10_000_000_000 + n;
                            // Categories as the fixture spreads them: concurrent inserts all naming
                            // one parent row would measure PostgreSQL's row locks on it instead.
                            let row = json!({"id": new_id, "owner": format!("00000000-0000-0000-0000-{u:012}"),
                                             "category_id": new_id % 20 + 1, "name": "new item", "price": 5});
                            let headers = [("apikey", apikey.as_str()), ("prefer", "return=minimal")];
                            crate::http1::send(&mut sender, target, PATH, &headers, bearer, Some(row.to_string())).await
                        } else {
                            let path = format!("{PATH}?id=eq.{id}&select=*");
                            crate::http1::send(&mut sender, target, &path, &[("apikey", apikey.as_str())], bearer, None).await
                        };
                        lat.push(t0.elapsed().as_secs_f64() * 1e3);
                        let good = matches!(sent, Ok(true));
                        if good { ok } else { failed }.fetch_add(1, Ordering::Relaxed);
                        if sent.is_err() {
                            return;
                        }
                    }
                };
                if crate::http1::with_connection(target, requests).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            lat
        }));
    }
    let mut out = crate::closed_loop::finish(tasks, &stop, start, t.seconds, (&ok, &failed), "requests_per_sec").await?;
    if t.distinct_jwt {
        out["tokens_signed_during_run"] = json!(signed_in_run.load(Ordering::Relaxed));
    }
    Ok(out)
}
