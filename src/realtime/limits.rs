//! Connection and join limits, as Supabase Realtime enforces them.
//!
//! - A socket is charged to its client IP when it opens; once one of its
//!   channels joins with a token carrying a `sub`, it is charged to that
//!   user instead (`max_connections_per_user`) and no longer to the IP
//!   (`max_connections_per_ip` limits anonymous sockets). Over either limit:
//!   "Too many connected users" (HTTP 429 at the upgrade, or the join's
//!   error reply `ConnectionRateLimitReached: Too many connected users`).
//! - Joins per socket are limited by a token bucket of
//!   `max_joins_per_second`, refilled at that rate; over it the join gets
//!   `ClientJoinRateLimitReached: Too many joins per second` and the socket
//!   is closed, as the reference does.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;

/// Sockets counted per key (an IP or a user id).
#[derive(Debug)]
pub struct Counter<K: Eq + Hash + Clone> {
    counts: DashMap<K, u32>,
    limit: u32,
}

impl<K: Eq + Hash + Clone> Counter<K> {
    /// A counter allowing `limit` sockets per key.
    pub fn new(limit: u32) -> Counter<K> {
        Counter { counts: DashMap::new(), limit }
    }

    /// Takes a slot for `key`, or `None` when `key` is at the limit.
    pub fn admit(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut n = self.counts.entry(key.clone()).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        drop(n);
        Some(Slot { counter: Arc::clone(self), key })
    }

    /// Sockets held by `key`.
    pub fn held(&self, key: &K) -> u32 {
        self.counts.get(key).map(|n| *n).unwrap_or(0)
    }

    /// Keys holding at least one socket.
    pub fn keys(&self) -> usize {
        self.counts.len()
    }
}

/// One socket counted against a key; released on drop.
#[derive(Debug)]
pub struct Slot<K: Eq + Hash + Clone> {
    counter: Arc<Counter<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Slot<K> {
    /// The key this slot is charged to.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        if let Some(mut n) = self.counter.counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.counter.counts.remove_if(&self.key, |_, n| *n == 0);
    }
}

/// Who a socket is charged to.
#[derive(Debug)]
pub enum Charge {
    /// An anonymous socket, by client IP.
    Ip(Slot<std::net::IpAddr>),
    /// A socket with a user, by JWT `sub`.
    User(Slot<String>),
}

/// A token bucket: `rate` tokens per second, at most `rate` stored.
#[derive(Debug, Clone)]
pub struct JoinBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl JoinBucket {
    /// A full bucket.
    pub fn new(rate: u32) -> JoinBucket {
        let rate = f64::from(rate.max(1));
        JoinBucket { rate, tokens: rate, at: Instant::now() }
    }

    /// Takes a token at `now`; false when none is left.
    pub fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token now.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counter_admits_up_to_the_limit_and_releases_on_drop() {
        let c = Arc::new(Counter::<String>::new(2));
        let a = c.admit("u".into()).expect("first");
        let _b = c.admit("u".into()).expect("second");
        assert!(c.admit("u".into()).is_none(), "third is over the limit");
        assert!(c.admit("v".into()).is_some(), "other keys are separate");
        drop(a);
        assert_eq!(c.held(&"u".to_owned()), 1);
        assert!(c.admit("u".into()).is_some());
    }

    #[test]
    fn empty_keys_are_forgotten() {
        let c = Arc::new(Counter::<u8>::new(1));
        drop(c.admit(1));
        assert_eq!(c.keys(), 0);
    }

    #[test]
    fn bucket_allows_a_burst_of_rate_then_refills() {
        let t0 = Instant::now();
        let mut b = JoinBucket { rate: 3.0, tokens: 3.0, at: t0 };
        assert!((0..3).all(|_| b.take_at(t0)));
        assert!(!b.take_at(t0), "burst spent");
        assert!(!b.take_at(t0 + Duration::from_millis(200)), "0.6 of a token");
        assert!(b.take_at(t0 + Duration::from_millis(400)), "1.2 tokens");
        assert!(!b.take_at(t0 + Duration::from_millis(400)));
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take_at(later)), "refills to the burst size, no more");
        assert!(!b.take_at(later));
    }
}
