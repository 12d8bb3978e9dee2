//! Fixed-window rate limits per (action, key), GoTrue's model: sign-ins and
//! sign-ups, refreshes, verifications, anonymous sign-ins and mails are
//! counted per client IP (and mails also per address), and the call over
//! the limit gets 429. Failed password sign-ins and OTP verifications are
//! also counted per address, so guessing spread over many IPs is stopped too.
//!
//! Invariant: memory is bounded. At most [`MAX_KEYS`] counters are kept;
//! finished windows are dropped first, and if the map is still full the
//! oldest half goes (those clients start a fresh window, which is the only
//! effect).
//!
//! These counters live in this process. With `rate_limit_store =
//! "database"` (the default) the limits are counted in PostgreSQL instead
//! ([`super::shared_limits`]), shared by every instance on the database, and
//! these counters serve as the fast path that refuses a client already over
//! its limit without a round trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most counters kept at once.
pub const MAX_KEYS: usize = 100_000;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Password sign-ins and sign-ups.
    SignIn,
    /// Refresh-token grants.
    Refresh,
    /// OTP and link verifications.
    Verify,
    /// Anonymous sign-ins.
    Anonymous,
    /// Mails sent, per IP.
    Email,
    /// Mails sent, per address and kind (minimum spacing).
    EmailFrequency,
    /// Failed MFA verifications, per factor.
    MfaFailure,
    /// Failed password sign-ins, per address.
    SignInFailure,
    /// Failed OTP verifications, per address.
    VerifyFailure,
}

impl Action {
    /// The action's name in `fluxbase.auth_rate_limits`.
    pub fn name(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::Refresh => "refresh",
            Action::Verify => "verify",
            Action::Anonymous => "anonymous",
            Action::Email => "email",
            Action::EmailFrequency => "email_frequency",
            Action::MfaFailure => "mfa_failure",
            Action::SignInFailure => "sign_in_failure",
            Action::VerifyFailure => "verify_failure",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// The counters.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(Action, String), Window>>,
}

impl RateLimiter {
    /// Counts one call of `action` by `key`; `false` when it is over `limit`
    /// calls per `per`. A limit of 0 means unlimited.
    pub fn allow(&self, action: Action, key: &str, limit: u32, per: Duration) -> bool {
        self.allow_at(action, key, limit, per, Instant::now())
    }

    fn allow_at(&self, action: Action, key: &str, limit: u32, per: Duration, now: Instant) -> bool {
        if limit == 0 {
            return true;
        }
        let Ok(mut map) = self.windows.lock() else { return true };
        if map.len() >= MAX_KEYS && !map.contains_key(&(action, key.to_owned())) {
            map.retain(|_, w| now.duration_since(w.started) < Duration::from_secs(3600));
            if map.len() >= MAX_KEYS {
                let mut starts: Vec<Instant> = map.values().map(|w| w.started).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                map.retain(|_, w| w.started > cut);
            }
        }
        let w = map.entry((action, key.to_owned())).or_insert(Window { started: now, count: 0 });
        if now.duration_since(w.started) >= per {
            *w = Window { started: now, count: 0 };
        }
        if w.count >= limit {
            return false;
        }
        w.count += 1;
        true
    }

    /// Calls of `action` by `key` counted in the current window, without counting one.
    pub fn peek(&self, action: Action, key: &str, per: Duration) -> u32 {
        let now = Instant::now();
        let Ok(map) = self.windows.lock() else { return 0 };
        match map.get(&(action, key.to_owned())) {
            Some(w) if now.duration_since(w.started) < per => w.count,
            _ => 0,
        }
    }

    /// Counters currently kept.
    pub fn len(&self) -> usize {
        self.windows.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_limit_and_reset() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        let per = Duration::from_secs(300);
        assert!(r.allow_at(Action::SignIn, "1.2.3.4", 2, per, t0));
        assert!(r.allow_at(Action::SignIn, "1.2.3.4", 2, per, t0));
        assert!(!r.allow_at(Action::SignIn, "1.2.3.4", 2, per, t0));
        assert!(r.allow_at(Action::SignIn, "5.6.7.8", 2, per, t0), "other keys are separate");
        assert!(r.allow_at(Action::Refresh, "1.2.3.4", 2, per, t0), "other actions are separate");
        assert!(r.allow_at(Action::SignIn, "1.2.3.4", 2, per, t0 + per), "a new window");
        assert!(r.allow_at(Action::SignIn, "x", 0, per, t0), "0 is unlimited");
    }

    #[test]
    fn memory_is_bounded() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            r.allow_at(Action::Email, &i.to_string(), 5, Duration::from_secs(60), t0 + Duration::from_nanos(i as u64));
        }
        assert!(r.len() <= MAX_KEYS);
    }
}
