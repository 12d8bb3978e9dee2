//! [`Backoff`]: the reconnect delay policy the caller drives — exponential
//! growth from `initial` to `max` with "equal jitter" (half fixed, half
//! random), reset after a stream has run successfully.
//!
//! Typical use by the server:
//!
//! ```no_run
//! # use fluxbase_replication::backoff::Backoff;
//! # async fn connect_and_stream() -> Result<(), fluxbase_replication::StreamError> { Ok(()) }
//! # async fn example() {
//! let mut backoff = Backoff::default();
//! loop {
//!     match connect_and_stream().await {
//!         Ok(()) => break,
//!         Err(e) if e.is_retryable() => tokio::time::sleep(backoff.next_delay()).await,
//!         Err(e) => panic!("needs an operator: {e}"),
//!     }
//! }
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// Exponential reconnect delays with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    jitter: bool,
    random: RandomState,
}

impl Default for Backoff {
    /// 100 ms doubling to 30 s, with jitter.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`, with jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max: max.max(initial), attempt: 0, jitter: true, random: RandomState::new() }
    }

    /// The same without jitter (deterministic; for tests).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Failed attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; each call counts one failure.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        if !self.jitter {
            return base;
        }
        let half = base / 2;
        let r = self.random.hash_one(self.attempt);
        // r / 2^64 of the other half.
        let extra = half.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64);
        half + extra
    }

    /// Starts over (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).without_jitter();
        let d: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for i in 0..20u32 {
            let base = Duration::from_millis(100).saturating_mul(1 << i.min(31)).min(Duration::from_secs(10));
            let d = b.next_delay();
            assert!(d >= base / 2 && d <= base, "{d:?} vs {base:?}");
        }
    }
}
