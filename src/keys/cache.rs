//! [`JwtCache`]: verified JWT claims kept by token, so a token is verified
//! once however many requests carry it.
//!
//! Every service that acts as a caller (REST, storage, realtime, changes)
//! resolves it through [`crate::http::caller::Caller::resolve`], which asks
//! [`crate::keys::Keys::verify_cached`]; the cache lives in [`crate::keys::Keys`]
//! so a rebuilt key set (new secret, rotated signing keys) starts empty.
//!
//! Invariants:
//! - The key is the whole token, signature included: a token that differs
//!   in any byte from a verified one is verified on its own.
//! - Only successful verifications are kept, and a hit is refused once the
//!   token's `exp` (plus the verifier's leeway) has passed, so a cached
//!   token expires exactly when the verifier would have refused it. Tokens
//!   whose `exp` is present but not a number are never kept.
//! - Memory is bounded: at most [`MAX_ENTRIES`] tokens of at most
//!   [`MAX_TOKEN_LEN`] bytes. On reaching the limit, expired entries go
//!   first, then arbitrary ones, down to three quarters of the limit (one
//!   pass per quarter of the limit inserted, so eviction stays amortised O(1)).

use dashmap::DashMap;
use super::claims::Claims;

/// Most tokens kept.
pub const MAX_ENTRIES: usize = 10_000;
/// Longer tokens are verified every time rather than kept.
pub const MAX_TOKEN_LEN: usize = 4096;

/// One verified token.
#[derive(Debug)]
struct Entry {
    claims: Claims,
    /// Last second (Unix time) at which the token still verifies; `None`:
    /// it has no `exp`.
    valid_until: Option<i64>,
}

/// The cache; see the module documentation.
#[derive(Debug)]
pub struct JwtCache {
    map: DashMap<Box<str>, Entry>,
    max: usize,
    leeway: i64,
}

impl JwtCache {
    /// An empty cache of at most `max` tokens, for a verifier that accepts
    /// tokens up to `leeway` seconds after their `exp`.
    pub fn new(max: usize, leeway: i64) -> JwtCache {
        JwtCache {
            map: DashMap::new(),
            max: max.max(4),
            leeway,
        }
    }

    /// The claims of `token` if it was verified and is still unexpired at
    /// `now` (Unix seconds).
    pub fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let hit = self.map.get(token)?;
        if hit.valid_until.is_some_and(|t| now > t) {
            drop(hit);
            self.map.remove(token);
            return None;
        }
        Some(hit.claims.clone())
    }

    /// Keeps the claims of a token that just verified.
    pub fn insert(&self, token: &str, claims: &Claims, now: i64) {
        if token.len() > MAX_TOKEN_LEN {
            return;
        }
        let valid_until = match claims.get("exp") {
            None => None,
            Some(exp) => match exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64)) {
                Some(e) => Some(e.saturating_add(self.leeway)),
                None => return,
            },
        };
        if valid_until.is_some_and(|t| now > t) {
            return;
        }
        if self.map.len() >= self.max {
            self.evict(now);
        }
        self.map.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                valid_until,
            },
        );
    }

    /// Tokens currently kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops expired entries, then arbitrary ones, to 3/4 of the limit:
    /// each a pass of `retain`, the second only when still needed.
    fn evict(&self, now: i64) {
        self.map.retain(|_, e| e.valid_until.is_none_or(|t| now <= t));
        let mut over = self.map.len().saturating_sub(self.max / 4 * 3);
        if over > 0 {
            self.map.retain(|_, _| {
                let keep = over == 0;
                over = over.saturating_sub(1);
                keep
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hits_until_exp_plus_leeway() {
        let c = JwtCache::new(100, 30);
        c.insert("t1", &json!({"sub": "u", "exp": 1_000}).into(), 900);
        assert_eq!(c.get("t1", 1_000).expect("hit")["sub"], "u");
        assert!(c.get("t1", 1_030).is_some(), "inside the leeway");
        assert!(c.get("t1", 1_031).is_none(), "expired");
        assert!(c.is_empty(), "an expired hit is dropped");
        assert!(c.get("t2", 900).is_none());
    }

    #[test]
    fn whole_token_is_the_key() {
        let c = JwtCache::new(100, 0);
        c.insert("head.body.sig", &json!({"role": "authenticated"}).into(), 0);
        assert!(c.get("head.body.sig", 0).is_some());
        assert!(c.get("head.body.forged", 0).is_none());
        assert!(c.get("head.body.si", 0).is_none());
    }

    #[test]
    fn odd_exp_and_long_tokens_are_not_kept() {
        let c = JwtCache::new(100, 0);
        c.insert("a", &json!({"exp": "soon"}).into(), 0);
        c.insert("b", &json!({"exp": 10}).into(), 11);
        c.insert(&"x".repeat(MAX_TOKEN_LEN + 1), &json!({}).into(), 0);
        assert!(c.is_empty());
        c.insert("c", &json!({}).into(), 0);
        c.insert("d", &json!({"exp": 1e10}).into(), 0);
        assert_eq!(c.len(), 2, "no exp, and a float exp, are kept");
    }

    #[test]
    fn bounded_and_expired_go_first() {
        let c = JwtCache::new(100, 0);
        for i in 0..50 {
            c.insert(&format!("old{i}"), &json!({"exp": 5}).into(), 0);
        }
        for i in 0..50 {
            c.insert(&format!("new{i}"), &json!({"exp": 100}).into(), 0);
        }
        c.insert("one-more", &json!({"exp": 100}).into(), 10);
        assert_eq!(c.len(), 51, "the 50 expired went, nothing else");
        for i in 0..10_000 {
            c.insert(&format!("flood{i}"), &json!({}).into(), 10);
            assert!(c.len() <= 100);
        }
        assert!(c.get("flood9999", 10).is_some(), "the newest is kept");
    }
}
